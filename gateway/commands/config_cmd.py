"""`mouchard config check [--config FILE]`: validate a configuration and show it, secrets hidden."""

from __future__ import annotations

import argparse

from rich.console import Console

from gateway.config import Config, redacted_dump

EXIT_OK = 0


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    config = sub.add_parser("config", help="configuration commands")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_sub.add_parser("check", parents=[common], help="validate a configuration file")
    check.set_defaults(handler=cmd_config_check)


def cmd_config_check(args: argparse.Namespace, cfg: Config, err: Console) -> int:
    source = args.config or "built-in defaults"
    print(f"# {source}: valid\n{redacted_dump(cfg)}")
    return EXIT_OK
