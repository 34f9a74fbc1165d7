#!/usr/bin/env python3
"""Pack Mouchard's checkout into a reproducible source archive that pip can install.

    pack_source.py CHECKOUT ARCHIVE

Only what the package build needs goes in (pyproject.toml, README.md and the gateway/ package,
without caches). Names are sorted and times, owners and modes fixed, so the same sources give the
same bytes: the role copies the archive to the host and reinstalls only when it changed. Prints a
JSON object: {"changed": bool, "sha256": str}. Runs on the Ansible controller, standard library only.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
from pathlib import Path

TOP_FILES = ("pyproject.toml", "README.md", "LICENSE", "COPYING")
PACKAGE = "gateway"
SKIP_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache"}
SKIP_SUFFIXES = (".pyc", ".pyo", ".so")
PREFIX = "mouchard-src"


def members(checkout: Path) -> list[Path]:
    found = [checkout / name for name in TOP_FILES if (checkout / name).is_file()]
    for folder, dirs, files in os.walk(checkout / PACKAGE):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        found += [Path(folder) / f for f in sorted(files) if not f.endswith(SKIP_SUFFIXES)]
    return sorted(found, key=lambda p: p.relative_to(checkout).as_posix())


def pack(checkout: Path) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in members(checkout):
            info = tarfile.TarInfo(f"{PREFIX}/{path.relative_to(checkout).as_posix()}")
            data = path.read_bytes()
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    checkout, archive = Path(argv[1]), Path(argv[2])
    if not (checkout / "pyproject.toml").is_file() or not (checkout / PACKAGE).is_dir():
        print(f"{checkout} is not a Mouchard checkout (no pyproject.toml or {PACKAGE}/)", file=sys.stderr)
        return 2
    data = pack(checkout)
    changed = not archive.is_file() or archive.read_bytes() != data
    if changed:
        archive.parent.mkdir(parents=True, exist_ok=True)
        tmp = archive.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(archive)
    print(json.dumps({"changed": changed, "sha256": hashlib.sha256(data).hexdigest()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
