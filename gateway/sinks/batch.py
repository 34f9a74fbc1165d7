"""The records the InfluxDB sinks pass around: a batch of line protocol, what a write did, a backoff."""

from __future__ import annotations

import email.utils
import random
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
