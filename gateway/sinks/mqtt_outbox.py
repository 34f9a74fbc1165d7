"""The MQTT outbox: messages waiting for the broker's acknowledgement, on disk, bounded, oldest first.

A message stays in ``<state_dir>/mqtt/outbox.sqlite3`` from the moment it is put until the broker
has acknowledged it (QoS 1 PUBACK), so neither a broker restart nor a gateway restart loses it; a
message sent just before a crash may be sent twice, as QoS 1 allows. SQLite in WAL mode makes every
put a small transaction that survives the process being killed.

Bounds: beyond ``max_messages`` the oldest waiting messages are dropped (never one already handed to
the client) and counted. A retained message (a device's state) replaces a waiting one of the same
topic, since only the newest state matters. One process uses an outbox at a time (an flock beside it).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from gateway.sinks.private import private_file

# About 300 bytes an event: 50,000 messages are ~15 MB, a week of a busy lab's events while the
# broker is away, and small enough for a Raspberry Pi's SD card.
OUTBOX_MAX = 50_000
OUTBOX_DIR = "mqtt"
OUTBOX_FILE = "outbox.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL
)
"""


class OutboxError(Exception):
    """The outbox cannot be used (permissions, disk, another process); says which file."""

    retryable = False  # a person must fix the folder, or stop the other process


@dataclass(frozen=True, slots=True)
class Message:
    seq: int
    topic: str
    payload: bytes
    retain: bool


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to put in the outbox."""

    topic: str
    payload: bytes
    retain: bool = False


class Outbox:
    def __init__(self, path: Path, max_messages: int = OUTBOX_MAX) -> None:
        self.path = path
        self.max_messages = max_messages
        self.dropped = 0
        self._lock = threading.Lock()
        self._lockfile = _exclusive(path.with_name(path.name + ".lock"))
        try:
            private_file(path)  # events name the lab's devices: 0600 (SQLite's WAL and shm files follow)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            self._lockfile.close()
            raise OutboxError(f"{path}: cannot open the MQTT outbox: {exc}") from exc

    def put(self, messages: Sequence[Outgoing], in_flight: Collection[int] = ()) -> int:
        """Add ``messages``; returns how many waiting messages were dropped to stay in bounds."""
        if not messages:
            return 0
        with self._lock, self._db:
            self._db.execute("BEGIN")
            # the statement holds only placeholders; values are bound
            replace = (
                f"DELETE FROM outbox WHERE topic = ? AND retain = 1 AND seq NOT IN ({_marks(in_flight)})"  # noqa: S608
            )
            for m in messages:
                if m.retain:
                    self._db.execute(replace, (m.topic, *in_flight))
                self._db.execute(
                    "INSERT INTO outbox (topic, payload, retain) VALUES (?, ?, ?)",
                    (m.topic, m.payload, m.retain),
                )
            return self._trim(in_flight)

    def after(self, seq: int, limit: int) -> list[Message]:
        """Up to ``limit`` messages put after ``seq``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, topic, payload, retain FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [Message(int(s), str(t), bytes(p), bool(r)) for s, t, p, r in rows]

    def ack(self, seqs: Collection[int]) -> None:
        """The broker has these: forget them."""
        if seqs:
            with self._lock:
                self._delete(seqs)

    def remove(self, topics: Collection[str], device: str, *, dry_run: bool = False) -> int:
        """Take out the messages waiting for ``topics``, and the events whose ``device`` is ``device``."""
        with self._lock:
            rows = self._db.execute("SELECT seq, topic, payload FROM outbox").fetchall()
            seqs = [int(s) for s, t, p in rows if t in topics or _event_of(bytes(p), t, device)]
            if seqs and not dry_run:
                self._delete(seqs)
        return len(seqs)

    def _delete(self, seqs: Collection[int]) -> None:
        """Delete the messages ``seqs`` in one transaction (the caller holds the lock)."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._lockfile.close()  # releases the flock

    def _trim(self, in_flight: Collection[int]) -> int:
        count = int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])
        excess = count - self.max_messages
        if excess <= 0:
            return 0
        self._db.execute(
            f"DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE seq NOT IN ({_marks(in_flight)}) "  # noqa: S608 placeholders only
            "ORDER BY seq LIMIT ?)",
            (*in_flight, excess),
        )
        self.dropped += excess
        return excess


def _event_of(payload: bytes, topic: str, device: str) -> bool:
    """True when the message is an event (JSON with a ``device`` key) about ``device``."""
    if "/event/" not in topic:
        return False
    try:
        doc = json.loads(payload)
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("device") == device


def _marks(values: Collection[int]) -> str:
    """SQL placeholders for ``values``; for none, -1, a sequence number SQLite never gives."""
    return ",".join("?" * len(values)) or "-1"


def _exclusive(lock_path: Path) -> IO[str]:
    """Hold an exclusive flock on ``lock_path`` for as long as the returned file stays open."""
    try:
        private_file(lock_path)
        fh = lock_path.open("a+", encoding="utf-8")
    except OSError as exc:
        raise OutboxError(f"{lock_path.parent}: cannot create the MQTT outbox: {exc.strerror}") from exc
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        owner = fh.read().strip() or "another process"
        fh.close()
        raise OutboxError(
            f"{lock_path}: the MQTT outbox is in use by {owner}; run one gateway per state_dir, "
            "or give this one its own state_dir"
        ) from None
    fh.truncate(0)
    fh.write(f"pid {os.getpid()}\n")
    fh.flush()
    return fh
