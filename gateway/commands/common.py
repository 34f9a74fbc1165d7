"""What the subcommand modules share."""

from __future__ import annotations

import argparse
from typing import TypeAlias

from rich.console import Console

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def console(stderr: bool = False) -> Console:
    """A console that wraps on a terminal, and does not cut tables when piped or logged."""
    probe = Console(stderr=stderr)
    return Console(stderr=stderr, soft_wrap=True, width=None if probe.is_terminal else 200)
