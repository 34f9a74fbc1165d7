"""`mouchard dashboards build [--output DIR] [--lang en|fr]` and `mouchard dashboards push`."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from gateway.commands.common import Subparsers, console
from gateway.config import Config
from gateway.grafana.language import Lang
from gateway.grafana.provisioning import datasource, secure_fields
from gateway.grafana.render import dashboards, render, write
from gateway.grafana.settings import SettingsError, settings_from, with_lab_settings

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_OUTPUT = Path("dashboards")


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    boards = sub.add_parser("dashboards", help="Grafana dashboards: write their files, or install them")
    actions = boards.add_subparsers(dest="dashboards_command", required=True, metavar="ACTION")
    build = actions.add_parser(
        "build", parents=[common], help="write the dashboards' JSON and Grafana's provisioning files"
    )
    build.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        metavar="DIR",
        help="output folder (default: dashboards)",
    )
    build.add_argument(
        "--lang", choices=[lang.value for lang in Lang], help="only this language (default: every language)"
    )
    build.set_defaults(handler=cmd_build)
    push = actions.add_parser(
        "push", parents=[common], help="create or update the folder, data source and dashboards in Grafana"
    )
    push.add_argument("--url", help="Grafana's URL (default: grafana.url, else http://127.0.0.1:3000)")
    push.add_argument(
        "--lang", choices=[lang.value for lang in Lang], help="default: grafana.language, else en"
    )
    push.set_defaults(handler=cmd_push)


def cmd_build(args: argparse.Namespace, cfg: Config, err: Console) -> int:
    langs = [Lang(args.lang)] if args.lang else list(Lang)
    out: Path = args.output
    try:
        changed = write(out, render(cfg, langs))
    except OSError as exc:
        err.print(f"cannot write to {out}: {exc.strerror or exc} — check the folder and its permissions")
        return EXIT_BAD_INPUT
    summary = f"{len(changed)} file(s) written" if changed else "already up to date"
    console().print(f"{out}: {summary} ({', '.join(lang.value for lang in langs)})", highlight=False)
    return EXIT_OK


def cmd_push(args: argparse.Namespace, cfg: Config, err: Console) -> int:
    try:
        settings = settings_from(cfg, url=args.url, lang=args.lang)
    except SettingsError as exc:
        err.print(f"[bold red]cannot push the dashboards[/]\n{exc}", highlight=False)
        return EXIT_BAD_INPUT
    # grafana-client pulls in an HTTP stack that costs 0.3 s to import: only `push` pays for it.
    from gateway.grafana.push import Pusher, PushError, connect  # noqa: PLC0415

    boards = {
        name: with_lab_settings(model, settings) for name, model in dashboards(settings.language).items()
    }
    try:
        report = Pusher(connect(settings), settings).push(
            datasource(cfg), secure_fields(cfg, resolved=True), boards
        )
    except PushError as exc:
        err.print(f"[bold red]push failed[/]: {exc}", highlight=False, markup=True)
        return EXIT_FAILED
    out = console()
    for what, change in report.changes:
        out.print(f"{change.value:>9}  {what}", highlight=False, markup=False)
    out.print(f"{settings.url}: {report.changed} change(s)", highlight=False, markup=False)
    return EXIT_OK
