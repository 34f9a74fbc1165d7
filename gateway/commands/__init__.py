"""Subcommands of `mouchard`, each in its own module, listed here explicitly (no folder scanning).

A module provides ``register(sub, common)``: it adds its parser(s) to ``sub`` (with ``common`` as a
parent, for ``--config``) and sets ``handler=`` to a function ``(args, cfg, err) -> exit code``.
Modules are imported only when their command is used (or for the whole help): a replay does not pay
for Grafana's SDK, zeroconf or libpcap.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

from gateway.commands.common import Subparsers

Register = Callable[[Subparsers, argparse.ArgumentParser], None]

# command name -> module in this package
COMMANDS: dict[str, str] = {
    "run": "run_cmd",
    "replay": "replay_cmd",
    "config": "config_cmd",
    "dashboards": "dashboards_cmd",
    "profiles": "profiles_cmd",
    "devices": "devices_cmd",
    "discover": "discover_cmd",
    "forget": "forget_cmd",
    "spool": "spool_cmd",
    "calibrate": "calibrate_cmd",
}


def register_of(command: str) -> Register:
    """The ``register`` function of ``command``'s module (imported now)."""
    module = importlib.import_module(f"{__name__}.{COMMANDS[command]}")
    register: Register = module.register
    return register
