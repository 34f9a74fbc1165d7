"""`mouchard profiles check [DIR]` and `mouchard profiles build`: device profiles (docs/profiles.md).

``check`` validates a folder of profile files and prints ``FILE:LINE: where: problem — fix`` for each
problem (exit 2), or how many profiles are valid (exit 0). ``build`` validates ``device_profiles/``
and writes the compiled index the gateway loads, ``gateway/data/profile_index.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from gateway.commands.common import Subparsers
from gateway.config import Config
from gateway.enrichers.orgs import OrgDataError
from gateway.profiles.index import BUILD_COMMAND, DEFAULT_INDEX, DEFAULT_SOURCE, index_text
from gateway.profiles.loader import Problem, check_profiles, profile_files
from gateway.profiles.model import Profile

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    profiles = sub.add_parser("profiles", help="device profile commands")
    actions = profiles.add_subparsers(dest="profiles_command", required=True, metavar="ACTION")
    check = actions.add_parser("check", parents=[common], help="validate a folder of device profiles")
    check.add_argument(
        "directory", nargs="?", metavar="DIR", help="folder of *.yaml profiles (default: device_profiles/)"
    )
    check.set_defaults(handler=cmd_profiles_check)
    build = actions.add_parser("build", parents=[common], help="compile the profiles into the index")
    build.add_argument("--source", metavar="DIR", help="profiles folder (default: device_profiles/)")
    build.add_argument("--output", metavar="FILE", help=f"index to write (default: {DEFAULT_INDEX})")
    build.set_defaults(handler=cmd_profiles_build)


def cmd_profiles_check(args: argparse.Namespace, cfg: Config, err: Console) -> int:
    folder = _shown(Path(args.directory) if args.directory else DEFAULT_SOURCE)
    profiles = _valid_profiles(folder, err)
    if profiles is None:
        return EXIT_BAD_INPUT
    print(f"{folder}: {len(profiles)} profiles in {len(profile_files(folder))} files, all valid")
    if args.directory is None and not _index_matches(profiles, DEFAULT_INDEX):
        err.print(f"note: {_shown(DEFAULT_INDEX)} is out of date — run `{BUILD_COMMAND}`", highlight=False)
    return EXIT_OK


def cmd_profiles_build(args: argparse.Namespace, cfg: Config, err: Console) -> int:
    folder = _shown(Path(args.source) if args.source else DEFAULT_SOURCE)
    output = _shown(Path(args.output) if args.output else DEFAULT_INDEX)
    profiles = _valid_profiles(folder, err)
    if profiles is None:
        return EXIT_BAD_INPUT
    if _index_matches(profiles, output):
        print(f"{output}: up to date ({len(profiles)} profiles)")
        return EXIT_OK
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(index_text(profiles), encoding="utf-8")
    except OSError as exc:
        return _fail(err, [f"{output}: cannot write the index: {exc.strerror or exc}"])
    print(f"{output}: written ({len(profiles)} profiles from {folder})")
    return EXIT_OK


def _valid_profiles(folder: Path, err: Console) -> tuple[Profile, ...] | None:
    """The folder's profiles when all are valid; None after printing every problem."""
    try:
        profiles, problems = check_profiles(folder)
    except OrgDataError as exc:
        _fail(err, [str(exc)])
        return None
    if problems:
        _fail(err, [*map(str, problems), _count(problems)])
        return None
    return profiles


def _index_matches(profiles: tuple[Profile, ...], index: Path) -> bool:
    try:
        return index.read_text(encoding="utf-8") == index_text(profiles)
    except (OSError, UnicodeDecodeError):
        return False


def _shown(path: Path) -> Path:
    """``path`` relative to the working folder when it is inside it: shorter messages."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def _count(problems: tuple[Problem, ...]) -> str:
    files = len({p.file for p in problems})
    noun = "problem" if len(problems) == 1 else "problems"
    return f"{len(problems)} {noun} in {files} file{'s' if files != 1 else ''}"


def _fail(err: Console, lines: list[str]) -> int:
    err.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)
    return EXIT_BAD_INPUT
