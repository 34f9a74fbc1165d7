"""Files that hold a record of the lab's life (inventory, spool, MQTT outbox, secrets): private to the
gateway's user, whatever the umask. Folders Mouchard creates are 0700, its files 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(folder: Path, durable: bool = False) -> None:
    """Create ``folder`` and its missing parents as 0700 (existing folders are left as they are).

    ``durable``: each new folder's entry is fsync'd into its parent, so it survives a crash.
    """
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for path in reversed(missing):
        path.mkdir(mode=FOLDER_MODE, exist_ok=True)
        path.chmod(FOLDER_MODE)  # mkdir's mode is filtered by the umask
        if durable:
            fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make the entries of ``folder`` (files created, renamed or removed in it) durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_file(path: Path) -> None:
    """Create ``path`` empty as 0600 if missing; take group and other rights off an existing one."""
    private_folder(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            os.fchmod(fd, mode & ~0o077)
    finally:
        os.close(fd)
