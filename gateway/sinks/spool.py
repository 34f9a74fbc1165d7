"""The disk spool: batches InfluxDB could not take, kept durably, bounded, delivered oldest first.

Layout of ``<state_dir>/spool/``: one file per batch, named ``<stamp_ns>-<pid>-<n>.<points>.lp`` so
that names sort in the order the batches were cut. A file holds a header line
``#mouchard-spool 1 points=N crc32=XXXXXXXX`` and the line protocol. It is written as ``.tmp-<name>``,
fsync'd, renamed, and the folder fsync'd: after a crash of Mouchard (or of the machine) a batch is
there whole or not at all. Leftover ``.tmp-`` files of a killed writer are removed on the next scan.

Several processes may share the folder (`mouchard run`, a replay, `mouchard spool flush`): every change
happens under an flock on ``.lock``, which also holds a generation number so each process knows when
to rescan; delivering holds ``.drain`` so that two processes never send the same batch.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from gateway.sinks.batch import Batch
from gateway.sinks.private import fsync_dir, private_folder

log = logging.getLogger(__name__)

# Default bound of the spool: at ~250 bytes a point, about two million points; a lab of a dozen
# objects writes a few hundred points a minute, so this holds weeks of an unreachable InfluxDB
# while leaving most of a small SD card free. Configurable per sink.
SPOOL_MAX_BYTES = 512 * 1024 * 1024
SPOOL_DIR = "spool"
CORRUPT_DIR = "corrupt"
_SUFFIX = ".lp"
_TMP = ".tmp-"
_HEADER = re.compile(rb"#mouchard-spool 1 points=(\d+) crc32=([0-9a-f]{8})\n")
_NAME = re.compile(r"(\d{20})-(\d+)-(\d+)\.(\d+)\.lp")
_T = TypeVar("_T")
# With the pid, makes names unique even for equal stamps from two spools of one process.
_SERIAL = itertools.count(1)


class SpoolError(Exception):
    """The spool folder cannot be used (permissions, disk); says which folder."""


class SpoolBusyError(Exception):
    """Another process is delivering this spool right now."""


@dataclass(frozen=True, slots=True)
class SpooledBatch:
    """One batch file of the spool (its content is read only to deliver it)."""

    name: str
    points: int
    size: int
    stamp_ns: int


@dataclass(frozen=True, slots=True)
class SpoolDepth:
    """What waits in the spool; ``oldest_age_s`` is None when it is empty."""

    batches: int
    points: int
    bytes: int
    oldest_age_s: float | None


@dataclass(frozen=True, slots=True)
class Dropped:
    """Batches given up to keep the spool within its bound (or found damaged)."""

    batches: int = 0
    points: int = 0

    def __add__(self, other: Dropped) -> Dropped:
        return Dropped(self.batches + other.batches, self.points + other.points)


@dataclass(frozen=True, slots=True)
class Removed:
    """Lines taken out of spooled batches (`mouchard forget`), and how many batch files held them."""

    batches: int = 0
    lines: int = 0


@dataclass(frozen=True, slots=True)
class Taken:
    """The oldest batches merged into one for a single write, and the files they came from."""

    batch: Batch
    entries: tuple[SpooledBatch, ...]


class Spool:
    """A bounded, durable FIFO of batches in a folder (see the module docstring for the layout)."""

    def __init__(self, folder: Path, max_bytes: int = SPOOL_MAX_BYTES) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.dropped = Dropped()  # by this process, since it opened the spool
        self._mutex = threading.Lock()  # flock excludes processes, not the threads of one
        self._drain_mutex = threading.Lock()
        self._entries: dict[str, SpooledBatch] = {}  # by name, kept sorted: oldest first
        self._bytes = 0
        self._points = 0
        self._generation = -1
        self._closed = False
        try:
            private_folder(folder, durable=True)  # line protocol names the lab's devices
            self._lock_fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._drain_fd = os.open(folder / ".drain", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise SpoolError(f"cannot use the spool folder {folder}: {exc.strerror}") from None
        with self._locked():
            pass  # the first scan: it also clears what a killed writer left half-written

    def __repr__(self) -> str:
        return f"Spool({str(self.folder)!r}, max_bytes={self.max_bytes})"

    def close(self) -> None:
        with self._mutex, self._drain_mutex:
            if self._closed:
                return
            self._closed = True
            os.close(self._lock_fd)
            os.close(self._drain_fd)

    # ------------------------------------------------------------------ reading the state

    def depth(self) -> SpoolDepth:
        with self._locked():
            oldest = next(iter(self._entries.values())).stamp_ns if self._entries else None
            age = None if oldest is None else max(0.0, (time.time_ns() - oldest) / 1e9)
            return SpoolDepth(len(self._entries), self._points, self._bytes, age)

    def is_empty(self) -> bool:
        with self._locked():
            return not self._entries

    # ------------------------------------------------------------------ adding

    def append(self, batch: Batch) -> Dropped:
        """Store ``batch`` durably; returns the oldest batches dropped to stay within ``max_bytes``."""
        if batch.points == 0:
            return Dropped()
        data = _encode(batch)
        with self._locked():
            if len(data) > self.max_bytes:
                log.warning(
                    "spool %s: a batch of %d points (%d bytes) is larger than the whole spool (%d bytes); "
                    "it is DROPPED — raise the spool size",
                    self.folder,
                    batch.points,
                    len(data),
                    self.max_bytes,
                )
                return self._count_dropped(Dropped(1, batch.points))
            dropped = self._make_room(len(data))
            try:
                self._store(batch, data, "cannot write to the spool")
            finally:
                self._bump()  # other processes rescan (batches may have been dropped for room)
            return dropped

    def _store(self, batch: Batch, data: bytes, failing: str) -> None:
        """Write ``data`` (``batch`` encoded) durably as a new batch file and index it (lock held)."""
        name = f"{batch.stamp_ns:020d}-{os.getpid()}-{next(_SERIAL)}.{batch.points}{_SUFFIX}"
        try:
            _write_durably(self.folder, name, data)
        except OSError as exc:
            (self.folder / f"{_TMP}{name}").unlink(missing_ok=True)
            raise SpoolError(f"{failing} {self.folder}: {exc.strerror}") from None
        self._add(SpooledBatch(name, batch.points, len(data), batch.stamp_ns))

    def _make_room(self, size: int) -> Dropped:
        """Drop the oldest batches until ``size`` more bytes fit, loudly."""
        dropped = Dropped()
        while self._entries and self._bytes + size > self.max_bytes:
            oldest = next(iter(self._entries.values()))
            _unlink(self.folder / oldest.name)
            self._remove_entry(oldest)
            dropped += Dropped(1, oldest.points)
        if dropped.batches:
            fsync_dir(self.folder)
            log.warning(
                "spool %s is full (%.1f MiB): DROPPED its %d oldest batches (%d points) to make room; "
                "InfluxDB has been unreachable too long — deliver with `mouchard spool flush` or raise "
                "the spool size",
                self.folder,
                self.max_bytes / 2**20,
                dropped.batches,
                dropped.points,
            )
        return self._count_dropped(dropped)

    def _count_dropped(self, dropped: Dropped) -> Dropped:
        self.dropped += dropped
        return dropped

    # ------------------------------------------------------------------ delivering

    def deliver_oldest(self, send: Callable[[Batch], _T], max_points: int) -> tuple[Taken, _T] | None:
        """Send the oldest batches (merged up to ``max_points``) and remove them once ``send`` returns.

        Returns None when the spool is empty. If ``send`` raises, nothing is removed. Raises SpoolBusyError
        when another process is delivering.
        """
        with self._draining():
            taken = self._take(max_points)
            if taken is None:
                return None
            result = send(taken.batch)
            self._remove(taken.entries)
            return taken, result

    def _take(self, max_points: int) -> Taken | None:
        """Read the oldest run of batches totalling at most ``max_points`` (at least one batch);
        damaged files met on the way are set aside and counted in ``dropped``."""
        with self._locked():
            while self._entries:
                bodies, good = self._read_all(self._oldest_run(max_points))
                if good:
                    batch = Batch(b"".join(bodies), sum(e.points for e in good), good[0].stamp_ns)
                    return Taken(batch, tuple(good))
            return None

    def _oldest_run(self, max_points: int) -> list[SpooledBatch]:
        chosen: list[SpooledBatch] = []
        total = 0
        for entry in self._entries.values():
            if chosen and total + entry.points > max_points:
                break
            chosen.append(entry)
            total += entry.points
        return chosen

    def _read_all(self, chosen: list[SpooledBatch]) -> tuple[list[bytes], list[SpooledBatch]]:
        bodies: list[bytes] = []
        good: list[SpooledBatch] = []
        for entry in chosen:
            body = _read_body(self.folder / entry.name)
            if body is None:
                self._set_aside(entry)
            else:
                bodies.append(body)
                good.append(entry)
        if len(good) < len(chosen):
            self._bump()
        return bodies, good

    def _set_aside(self, entry: SpooledBatch) -> None:
        corrupt = self.folder / CORRUPT_DIR
        log.warning(
            "spool %s: batch file %s is damaged (bad header or checksum); moved to %s, %d points lost",
            self.folder,
            entry.name,
            corrupt,
            entry.points,
        )
        corrupt.mkdir(mode=0o700, exist_ok=True)
        (self.folder / entry.name).replace(corrupt / entry.name)
        self._remove_entry(entry)
        self._count_dropped(Dropped(1, entry.points))

    def _remove(self, entries: tuple[SpooledBatch, ...]) -> None:
        with self._locked():
            for entry in entries:
                _unlink(self.folder / entry.name)  # may already be gone: dropped at the bound meanwhile
                if entry.name in self._entries:
                    self._remove_entry(entry)
            fsync_dir(self.folder)  # a removal that survives a crash: nothing is sent twice
            self._bump()

    # ------------------------------------------------------------------ forgetting

    def remove_lines(self, unwanted: Callable[[bytes], bool], *, dry_run: bool = False) -> Removed:
        """Take every line for which ``unwanted`` is true out of the spooled batches.

        Each affected batch is written anew (same stamp, so the same place in the order) under a
        temporary name, fsync'd and renamed, before the old file is removed; a batch left empty is
        removed. A crash between the two steps leaves the old file as well, never a partial one:
        running this again finishes the job. Holds the delivery lock, so no batch is rewritten while
        it is being sent; raises SpoolBusyError when another process is delivering.
        """
        removed = Removed()
        with self._draining(), self._locked():
            for entry in list(self._entries.values()):
                body = _read_body(self.folder / entry.name)
                if body is None:
                    continue  # damaged: set aside by the next delivery
                lines = body.splitlines(keepends=True)
                kept = [line for line in lines if not unwanted(line)]
                if len(kept) == len(lines):
                    continue
                removed = Removed(removed.batches + 1, removed.lines + len(lines) - len(kept))
                if not dry_run:
                    self._rewrite(entry, kept)
            if removed.batches and not dry_run:
                self._bump()
        return removed

    def _rewrite(self, entry: SpooledBatch, lines: list[bytes]) -> None:
        if lines:
            batch = Batch(b"".join(lines), len(lines), entry.stamp_ns)
            self._store(batch, _encode(batch), "cannot rewrite a batch of the spool")
        _unlink(self.folder / entry.name)
        fsync_dir(self.folder)
        self._remove_entry(entry)

    # ------------------------------------------------------------------ locking and the index

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._mutex:
            if self._closed:
                raise SpoolError(f"the spool in {self.folder} is closed")
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                self._refresh()
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextmanager
    def _draining(self) -> Iterator[None]:
        with self._drain_mutex:
            if self._closed:
                raise SpoolError(f"the spool in {self.folder} is closed")
            try:
                fcntl.flock(self._drain_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SpoolBusyError(f"another process is delivering the spool in {self.folder}") from None
            try:
                yield
            finally:
                fcntl.flock(self._drain_fd, fcntl.LOCK_UN)

    def _refresh(self) -> None:
        """Rescan the folder when another process changed it (the generation number moved)."""
        generation = int.from_bytes(os.pread(self._lock_fd, 8, 0).ljust(8, b"\0"), "little")
        if generation != self._generation:
            self._scan()
            self._generation = generation

    def _bump(self) -> None:
        self._generation = (self._generation + 1) % (1 << 63)
        os.pwrite(self._lock_fd, self._generation.to_bytes(8, "little"), 0)

    def _scan(self) -> None:
        entries = []
        with os.scandir(self.folder) as it:
            for item in it:
                if item.name.startswith(_TMP):
                    _unlink(Path(item.path))  # a writer killed mid-write (writers hold the lock)
                    continue
                m = _NAME.fullmatch(item.name)
                if m is not None and item.is_file():
                    size = item.stat().st_size
                    entries.append(SpooledBatch(item.name, int(m.group(4)), size, int(m.group(1))))
        entries.sort(key=lambda e: e.name)
        self._entries = {e.name: e for e in entries}
        self._bytes = sum(e.size for e in entries)
        self._points = sum(e.points for e in entries)

    def _add(self, entry: SpooledBatch) -> None:
        newest = next(reversed(self._entries), "")
        self._entries[entry.name] = entry
        if entry.name < newest:  # an older batch spooled late: keep the order
            self._entries = dict(sorted(self._entries.items()))
        self._bytes += entry.size
        self._points += entry.points

    def _remove_entry(self, entry: SpooledBatch) -> None:
        del self._entries[entry.name]
        self._bytes -= entry.size
        self._points -= entry.points


# ---------------------------------------------------------------------- files


def _encode(batch: Batch) -> bytes:
    header = f"#mouchard-spool 1 points={batch.points} crc32={zlib.crc32(batch.body):08x}\n"
    return header.encode("ascii") + batch.body


def _read_body(path: Path) -> bytes | None:
    """The line protocol of a batch file, or None when it is damaged."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    m = _HEADER.match(data)
    if m is None:
        return None
    body = data[m.end() :]
    return body if f"{zlib.crc32(body):08x}".encode() == m.group(2) else None


def _write_durably(folder: Path, name: str, data: bytes) -> None:
    tmp = folder / f"{_TMP}{name}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(folder / name)
    fsync_dir(folder)


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)
