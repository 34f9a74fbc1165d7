"""The `mouchard` command line (also `python -m gateway`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.markup import escape

from gateway.commands import COMMANDS, register_of
from gateway.commands.common import console
from gateway.config import ConfigError, load_config

EXIT_BAD_INPUT = 2


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or only ``only``'s subcommand (its module alone is imported)."""
    parser = argparse.ArgumentParser(
        prog="mouchard",
        description="Mouchard: what a lab's connected objects say, and to whom.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="configuration file (default: built-in defaults)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in [only] if only in COMMANDS else COMMANDS:
        register_of(name)(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    # the usual `mouchard COMMAND ...` builds only that command's parser; anything else, all of them
    only = words[0] if words and words[0] in COMMANDS else None
    args = build_parser(only).parse_args(words)
    err = console(stderr=True)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        err.print(f"[bold red]configuration error[/]\n{escape(str(exc))}", highlight=False)
        return EXIT_BAD_INPUT
    code: int = args.handler(args, cfg, err)
    return code


if __name__ == "__main__":
    sys.exit(main())
