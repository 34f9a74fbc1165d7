"""Subcommands of `mouchard`, each in its own module, listed here explicitly (no folder scanning).

A module provides ``register(sub, common)``: it adds its parser(s) to ``sub`` (with ``common`` as a
parent, for ``--config``) and sets ``handler=`` to a function ``(args, cfg, err) -> exit code``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from gateway.commands import (
    calibrate_cmd,
    config_cmd,
    dashboards_cmd,
    devices_cmd,
    discover_cmd,
    forget_cmd,
    profiles_cmd,
    replay_cmd,
    run_cmd,
    spool_cmd,
)
from gateway.commands.common import Subparsers

Register = Callable[[Subparsers, argparse.ArgumentParser], None]

COMMANDS: dict[str, Register] = {
    "run": run_cmd.register,
    "replay": replay_cmd.register,
    "config": config_cmd.register,
    "dashboards": dashboards_cmd.register,
    "profiles": profiles_cmd.register,
    "devices": devices_cmd.register,
    "discover": discover_cmd.register,
    "forget": forget_cmd.register,
    "spool": spool_cmd.register,
    "calibrate": calibrate_cmd.register,
}
