"""The records the InfluxDB sinks pass around: a batch of line protocol, what a write did, a backoff."""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

# A server's Retry-After is honoured up to this; a longer one (or a clock gone wrong in an HTTP date)
# would stall delivery for hours, while the spool keeps the data safe meanwhile anyway.
MAX_RETRY_AFTER_S = 300.0


@dataclass(frozen=True, slots=True)
class Batch:
    """Line protocol ready to send: newline-terminated lines, how many, and when the batch was made.

    ``stamp_ns`` (wall clock) orders the spool, so batches are delivered in the order they were cut.
    """

    body: bytes
    points: int
    stamp_ns: int = field(default_factory=time.time_ns)

    @classmethod
    def of(cls, lines: Sequence[str], stamp_ns: int | None = None) -> Batch:
        body = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
        return cls(body, len(lines), time.time_ns() if stamp_ns is None else stamp_ns)

    def halves(self) -> tuple[Batch, Batch]:
        """The batch cut in two at a line boundary (for a server that finds it too large)."""
        lines = self.body.splitlines(keepends=True)
        mid = len(lines) // 2
        return (
            Batch(b"".join(lines[:mid]), mid, self.stamp_ns),
            Batch(b"".join(lines[mid:]), len(lines) - mid, self.stamp_ns),
        )


@dataclass(frozen=True, slots=True)
class Delivered:
    """A write InfluxDB answered: ``dropped`` of the batch's points were refused (bad points), the
    rest were written. ``reason`` is the server's word on the refused ones."""

    dropped: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: attempt n waits between half and all of ``first_s * factor**n``,
    at most ``max_s``, and never less than a server's Retry-After (itself capped)."""

    first_s: float = 0.5
    factor: float = 2.0
    max_s: float = 30.0  # a down InfluxDB is probed at least twice a minute

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        ceiling = min(self.max_s, self.first_s * self.factor ** min(attempt, 60))
        wait = ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not cryptography
        if retry_after is not None:
            wait = max(wait, min(retry_after, MAX_RETRY_AFTER_S))
        return wait


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date; None if absent."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class LineBuffer:
    """Lines waiting to be cut into batches by size (``batch_size``) and age (``flush_interval_s``).

    Not thread-safe: its owner locks. Each batch is stamped with the arrival time of its first line,
    so batches cut by different paths (sent, or spooled) still sort in the order the lines came.
    """

    def __init__(self, batch_size: int, flush_interval_s: float) -> None:
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._lines: list[str] = []
        self._since = 0.0  # monotonic arrival of the oldest line, for its age
        self._since_ns = 0  # wall-clock arrival of the oldest line, for the stamp

    def __len__(self) -> int:
        return len(self._lines)

    def add(self, lines: Sequence[str]) -> None:
        if not self._lines:
            self._since, self._since_ns = time.monotonic(), time.time_ns()
        self._lines.extend(lines)

    def due(self) -> bool:
        """A full batch is there, or the oldest line has waited ``flush_interval_s``."""
        return len(self._lines) >= self.batch_size or (bool(self._lines) and self.wait_s() == 0)

    def wait_s(self) -> float | None:
        """Seconds until the oldest line is due by age; None when empty."""
        if not self._lines:
            return None
        return max(0.0, self._since + self.flush_interval_s - time.monotonic())

    def cut(self, everything: bool = False) -> list[Batch]:
        """Full batches, plus the rest when ``everything`` or when it is due by age."""
        size, lines = self.batch_size, self._lines
        end = len(lines) if everything or self.wait_s() == 0 else len(lines) // size * size
        batches = [
            Batch.of(lines[i : min(i + size, end)], self._since_ns + n)
            for n, i in enumerate(range(0, end, size))
        ]
        self._lines = lines[end:]
        self._since_ns += len(batches)  # what is left arrived after the batches cut
        return batches


class Backlog:
    """Points handed to a live writer and not yet resolved (written, refused or failed)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.points = 0

    def add(self, points: int) -> None:
        with self._cond:
            self.points += points

    def done(self, points: int) -> None:
        with self._cond:
            self.points = max(0, self.points - points)
            self._cond.notify_all()

    def wait_below(self, limit: int, timeout_s: float) -> bool:
        """Wait until at most ``limit`` points are pending; False after ``timeout_s``."""
        with self._cond:
            return self._cond.wait_for(lambda: self.points <= limit, timeout_s)
