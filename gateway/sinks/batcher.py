"""The v1 live writer: cuts lines into batches by size and age, sends them from a thread of its own.

Each batch is sent with retries (exponential backoff and jitter, a server's Retry-After honoured)
for at most ``Timing.retry_budget_s``; the outcome goes to the sink's `Outcomes`, which spools a
failed batch. The Gateway's thread only appends to a list: it never waits for InfluxDB.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from gateway.sinks.batch import Backlog, Batch, Delivered, LineBuffer
from gateway.sinks.influxdb import InfluxError, InfluxUnavailable
from gateway.sinks.reliable import Outcomes, Timing, send_with_retries

log = logging.getLogger(__name__)


class Batcher:
    """A `LiveWriter` over a synchronous ``send`` (one request per batch, one batch at a time)."""

    def __init__(
        self,
        send: Callable[[Batch], Delivered],
        outcomes: Outcomes,
        batch_size: int,
        flush_interval_s: float,
        timing: Timing,
        request_timeout_s: float,
    ) -> None:
        self._send = send
        self._request_timeout_s = request_timeout_s
        self._outcomes = outcomes
        self._timing = timing
        self._cond = threading.Condition()
        self._buffer = LineBuffer(batch_size, flush_interval_s)
        self._ready: list[Batch] = []  # cut, not yet taken by the thread
        self.backlog = Backlog()  # points written to us and not yet resolved
        self._finishing = False
        self._thread = threading.Thread(target=self._run, name="mouchard-influx-v1", daemon=True)
        self._thread.start()

    def write(self, lines: list[str]) -> None:
        self.backlog.add(len(lines))
        with self._cond:
            was_empty = not len(self._buffer)
            self._buffer.add(lines)
            if was_empty or len(self._buffer) >= self._buffer.batch_size:
                self._cond.notify()  # a new deadline (the age of these lines), or a full batch

    def finish(self, timeout_s: float) -> list[Batch]:
        """Send what is buffered; after ``timeout_s`` (and one request), return what was not tried."""
        with self._cond:
            self._finishing = True
            self._cond.notify()
        self._thread.join(timeout_s + self._request_timeout_s)
        with self._cond:
            left = self._ready + self._buffer.cut(everything=True)
            self._ready = []
            return left

    def _run(self) -> None:
        while (batch := self._next()) is not None:
            self._deliver(batch)
            self.backlog.done(batch.points)

    def _deliver(self, batch: Batch) -> None:
        if self._outcomes.give_up():  # InfluxDB is down: earlier batches wait in the spool
            self._outcomes.failed(batch, InfluxUnavailable("InfluxDB is unavailable; batch not tried"))
            return
        try:
            result = send_with_retries(
                self._send, batch, self._outcomes, self._timing.backoff, self._timing.retry_budget_s
            )
        except InfluxError as exc:
            self._outcomes.failed(batch, exc)
        except Exception as exc:  # a bug must not lose the batch nor stop the thread
            log.exception("sending a batch failed unexpectedly; it goes to the spool")
            self._outcomes.failed(batch, InfluxUnavailable(f"unexpected {type(exc).__name__}"))
        else:
            self._outcomes.written(batch, result)

    def _next(self) -> Batch | None:
        """The next batch to send, waiting until one is due; None once finished and empty."""
        with self._cond:
            while not self._ready:
                if self._buffer.due() or (self._finishing and len(self._buffer)):
                    self._ready = self._buffer.cut(everything=self._finishing)
                    continue
                if self._finishing:
                    return None
                self._cond.wait(self._buffer.wait_s())
            return self._ready.pop(0)
