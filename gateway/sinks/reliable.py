"""The sink the Gateway writes to: batches, retries, a disk spool, self-metrics; it never loses a count.

Lines go to a *live writer* (v1: `gateway.sinks.batcher.Batcher`; v2: influxdb-client's batching write
API) that cuts batches by size and time and retries each with backoff and jitter. A batch that still
cannot be written is appended to the `Spool`; from then on, new lines go to the spool too (they are
cut into batches there), so delivery stays in order, until a background thread has delivered the
whole spool, oldest first. `close()` sends what is buffered and keeps trying to deliver the spool
for a bounded time; what is left stays on disk for the next run or `mouchard spool flush`.

`write` never raises because InfluxDB is unreachable or slow. It raises `InfluxSetupError` only when
the user must act (credentials, permissions, a database that cannot be created); the points of that
call and everything after are spooled first, so fixing the problem and flushing loses nothing.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from gateway.sinks.batch import Backlog, Backoff, Batch, Delivered, LineBuffer
from gateway.sinks.influxdb import InfluxError, InfluxSetupError, InfluxUnavailable
from gateway.sinks.lineproto import escape_tag
from gateway.sinks.spool import Spool, SpoolBusyError, SpoolDepth, SpoolError

log = logging.getLogger(__name__)

# Points handed to the live writer and not yet written: past this, new lines go to the spool instead
# of memory (InfluxDB is slower than the lab, or retrying). At ~250 bytes a line, about 25 MB.
MAX_BACKLOG_POINTS = 100_000
# When the backlog is full but InfluxDB answers, write() waits this long for room before spooling:
# a replay keeps pace with InfluxDB without going through the disk, a live capture never stalls long.
BACKPRESSURE_WAIT_S = 1.0
# Distinct bad-point messages logged at WARNING; repeats and any beyond go to DEBUG.
MAX_QUIET_KEYS = 100
SELF_MEASUREMENT = "mouchard"


@dataclass(frozen=True, slots=True)
class Timing:
    """How long to insist. The defaults suit a gateway; tests and replays may shorten them."""

    backoff: Backoff = field(default_factory=Backoff)
    retry_budget_s: float = 30.0  # one batch is retried this long before it goes to the spool
    close_budget_s: float = 30.0  # close() keeps trying to deliver the spool this long
    metrics_interval_s: float = 60.0  # a `mouchard` self-metrics point this often


class Outcomes(Protocol):
    """What a live writer reports about each batch it was given (from its own thread)."""

    def written(self, batch: Batch, result: Delivered) -> None: ...
    def failed(self, batch: Batch, error: InfluxError) -> None: ...
    def retried(self, points: int) -> None: ...
    def give_up(self) -> bool: ...


class LiveWriter(Protocol):
    """Sends lines in batches from a thread of its own; ``finish`` returns what it could not resolve."""

    backlog: Backlog

    def write(self, lines: list[str]) -> None: ...
    def finish(self, timeout_s: float) -> list[Batch]: ...


class LiveWriterFactory(Protocol):
    def __call__(self, outcomes: Outcomes, batch_size: int, flush_interval_s: float) -> LiveWriter: ...


class Transport(Protocol):
    """One InfluxDB write API: set-up, single writes of a batch (for the spool), a reachability probe."""

    def prepare(self) -> None: ...
    def send(self, batch: Batch) -> Delivered: ...
    def probe(self) -> bool: ...
    def describe(self) -> str: ...
    def close(self) -> None: ...


@dataclass(slots=True)
class Counters:
    """Points since this sink started; the fields of the `mouchard` measurement."""

    written: int = 0
    retried: int = 0
    spooled: int = 0
    dropped: int = 0  # refused by InfluxDB (bad points); spool losses are added from the spool


@dataclass(frozen=True, slots=True)
class SinkReport:
    """What a sink did, for the end of a replay or a flush."""

    written: int
    retried: int
    spooled: int
    dropped: int
    spool: SpoolDepth
    spool_folder: str
    problem: str | None  # a set-up error that stopped delivery


class QuietLog:
    """Logs a kind of message once at WARNING, then at DEBUG (a bounded set of kinds)."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._seen: set[str] = set()

    def warn(self, key: str, msg: str, *args: object) -> None:
        kind = re.sub(r"\d+", "N", key)[:200]
        if kind in self._seen or len(self._seen) >= MAX_QUIET_KEYS:
            self._logger.debug(msg, *args)
            return
        self._seen.add(kind)
        self._logger.warning(msg + " (further ones are logged at DEBUG level)", *args)


def send_with_retries(
    send: Callable[[Batch], Delivered], batch: Batch, outcomes: Outcomes, backoff: Backoff, budget_s: float
) -> Delivered:
    """``send(batch)``, retried with backoff while InfluxDB is unavailable, for at most ``budget_s``.

    Stops early when ``outcomes.give_up()`` (InfluxDB known down, or closing); raises the last error.
    """
    deadline = time.monotonic() + budget_s
    attempt = 0
    while True:
        try:
            return send(batch)
        except InfluxUnavailable as exc:
            delay = backoff.delay(attempt, exc.retry_after)
            if outcomes.give_up() or time.monotonic() + delay > deadline:
                raise
            outcomes.retried(batch.points)
            time.sleep(delay)
            attempt += 1


class ReliableSink:
    """The Gateway's InfluxDB sink: ``write(lines)``, ``close()``, ``describe()`` (see module doc)."""

    def __init__(
        self,
        transport: Transport,
        live: LiveWriterFactory,
        spool: Spool,
        *,
        gateway_id: str,
        batch_size: int,
        flush_interval_s: float,
        timing: Timing | None = None,
    ) -> None:
        self.transport = transport
        self.spool = spool
        self.timing = timing or Timing()
        self.batch_size = batch_size
        self.counters = Counters()
        self._gateway_tag = escape_tag(gateway_id)
        self._max_backlog = max(MAX_BACKLOG_POINTS, 2 * batch_size)
        self._lock = threading.Lock()  # counters, the held lines and the state flags
        self._held = LineBuffer(batch_size, flush_interval_s)  # lines bound for the spool
        self._down = False  # the last attempt failed: send nothing live until delivered again
        self._failures = 0
        self._next_try = 0.0
        self._fatal: InfluxSetupError | None = None
        self._closing_by: float | None = None
        self._final_report: SinkReport | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._quiet = QuietLog(log)
        self._next_metrics = time.monotonic() + self.timing.metrics_interval_s
        self._live = live(self, batch_size, flush_interval_s)
        self._thread = threading.Thread(target=self._run, name="mouchard-spool", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"ReliableSink({self.transport!r}, {self.spool!r})"

    def describe(self) -> str:
        return self.transport.describe()

    def start(self) -> None:
        """Check InfluxDB now: set it up and write a first `mouchard` point.

        Raises InfluxSetupError when the user must act; when InfluxDB is unreachable, says so and
        spools until it is back.
        """
        batch = Batch.of([self.metrics_line()])
        try:
            self.transport.prepare()
            result = self.transport.send(batch)
        except InfluxUnavailable as exc:
            self._to_spool(batch)
            self._note_failure(exc)
            return
        self.written(batch, result)

    def abort(self) -> None:
        """Stop without delivering (after a set-up error); buffered points go to the spool."""
        self._stop.set()
        self._wake.set()
        self._thread.join()
        for batch in self._live.finish(0.0):
            self._to_spool(batch)
        self._spool_held(everything=True)
        self.transport.close()
        self._final_report = self.report()
        self.spool.close()

    # ------------------------------------------------------------------ the Gateway's side

    def write(self, lines: list[str]) -> None:
        """Hand over points; never blocks on InfluxDB. Raises InfluxSetupError when the user must act."""
        if not lines:
            return
        fatal = self._fatal
        if fatal is not None:
            self._hold(lines)
            raise InfluxSetupError(
                f"{fatal} — the points are kept in the spool ({self.spool.folder}); "
                "deliver them with `mouchard spool flush` once this is fixed",
                status=fatal.status,
            )
        self._route(lines)

    def close(self) -> None:
        """Send what is buffered, deliver the spool for at most ``close_budget_s``, then stop."""
        if self._final_report is not None:
            return  # closed already
        deadline = time.monotonic() + self.timing.close_budget_s
        with self._lock:
            self._closing_by = deadline
        self._stop.set()
        self._wake.set()
        self._thread.join()
        for batch in self._live.finish(max(0.0, deadline - time.monotonic())):
            self._to_spool(batch)  # what the live writer could not resolve in time
        self._spool_held(everything=True)
        self._drain_until(deadline)
        self._final_metrics()
        self.transport.close()
        self._final_report = self.report()
        self.spool.close()

    def report(self) -> SinkReport:
        if self._final_report is not None:
            return self._final_report
        with self._lock:
            c = self.counters
            written, retried, spooled, dropped = c.written, c.retried, c.spooled, c.dropped
        return SinkReport(
            written=written,
            retried=retried,
            spooled=spooled,
            dropped=dropped + self.spool.dropped.points,
            spool=self.spool.depth(),
            spool_folder=str(self.spool.folder),
            problem=None if self._fatal is None else str(self._fatal),
        )

    # ------------------------------------------------------------------ Outcomes (live writer threads)

    def written(self, batch: Batch, result: Delivered) -> None:
        with self._lock:
            self.counters.written += batch.points - result.dropped
            was_down = self._down
            self._down, self._failures = False, 0
        if was_down:
            log.info("InfluxDB takes writes again; the spool in %s is being delivered", self.spool.folder)
        self._count_bad(result)

    def failed(self, batch: Batch, error: InfluxError) -> None:
        self._to_spool(batch)
        if self._down and error.retryable:
            self._wake.set()  # known down already: the spool thread's probes keep their backoff
        else:
            self._note_failure(error)

    def retried(self, points: int) -> None:
        with self._lock:
            self.counters.retried += points

    def give_up(self) -> bool:
        closing_by = self._closing_by
        late = closing_by is not None and time.monotonic() >= closing_by
        return self._down or self._fatal is not None or late

    # ------------------------------------------------------------------ routing

    def _route(self, lines: list[str]) -> None:
        """Live when all is well, else to the spool (keeping the order of delivery)."""
        room = max(0, self._max_backlog - len(lines))
        if (
            self._down
            or self._fatal is not None
            or self._closing_by is not None
            or not self.spool.is_empty()
            or not self._live.backlog.wait_below(room, BACKPRESSURE_WAIT_S)
        ):
            self._hold(lines)
        else:
            self._live.write(lines)

    def _hold(self, lines: list[str]) -> None:
        with self._lock:
            self._held.add(lines)
            batches = self._held.cut() if len(self._held) >= self.batch_size else []
        for batch in batches:
            self._to_spool(batch)
        self._wake.set()

    def _spool_held(self, everything: bool = False) -> None:
        with self._lock:
            batches = self._held.cut(everything) if everything or self._held.due() else []
        for batch in batches:
            self._to_spool(batch)

    def _to_spool(self, batch: Batch) -> None:
        try:
            self.spool.append(batch)
        except SpoolError as exc:  # a full disk: these points are lost, and counted
            with self._lock:
                self.counters.dropped += batch.points
            self._quiet.warn(str(exc), "%s: %d points LOST", exc, batch.points)
            return
        with self._lock:
            self.counters.spooled += batch.points

    def _note_failure(self, error: InfluxError) -> None:
        with self._lock:
            self._down = True
            self._failures += 1
            retry_after = error.retry_after if isinstance(error, InfluxUnavailable) else None
            self._next_try = time.monotonic() + self.timing.backoff.delay(self._failures - 1, retry_after)
        if isinstance(error, InfluxSetupError):
            self._set_fatal(error)
        elif self._failures == 1:
            log.warning("%s; spooling points in %s until it is back", error, self.spool.folder)
        self._wake.set()

    def _set_fatal(self, error: InfluxSetupError) -> None:
        if self._fatal is None:
            self._fatal = error
            log.error("%s — points are spooled in %s until this is fixed", error, self.spool.folder)

    def _count_bad(self, result: Delivered) -> None:
        if not result.dropped:
            return
        with self._lock:
            self.counters.dropped += result.dropped
        self._quiet.warn(
            result.reason, "InfluxDB refused %d bad points (not retried): %s", result.dropped, result.reason
        )

    # ------------------------------------------------------------------ the spool thread

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._sleep_s())
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._tick()
            except Exception:  # a bug must not stop delivery for good: say it, wait, go on
                log.exception("the spool thread failed; it tries again in %.0f s", self.timing.backoff.max_s)
                self._next_try = time.monotonic() + self.timing.backoff.max_s

    def _tick(self) -> None:
        self._spool_held()
        self._periodic_metrics()
        if time.monotonic() >= self._next_try and self._fatal is None:
            self._try_deliver()

    def _sleep_s(self) -> float:
        now = time.monotonic()
        with self._lock:
            held = self._held.wait_s()
        waits = [self._next_metrics - now, held if held is not None else 3600.0]
        if self._down or not self.spool.is_empty():
            waits.append(self._next_try - now)
        return max(0.01, min(waits))

    def _try_deliver(self) -> None:
        """Deliver the spool, oldest first, until it is empty or InfluxDB fails; probe when down."""
        while not self._stop.is_set() and self._deliver_one():
            pass
        if not (self._down and self._fatal is None and self.spool.is_empty()):
            return
        up = self.transport.probe()
        with self._lock:
            if up:
                self._down, self._failures = False, 0
            else:
                self._next_try = time.monotonic() + self.timing.backoff.delay(self._failures)
                self._failures += 1

    def _deliver_one(self) -> bool:
        """One spool write; True when it succeeded and more may follow."""
        try:
            got = self.spool.deliver_oldest(self.transport.send, self.batch_size)
        except SpoolBusyError:
            self._next_try = time.monotonic() + self.timing.backoff.max_s
            return False
        except InfluxError as exc:
            self._note_failure(exc)
            return False
        if got is None:
            return False
        taken, result = got
        self.written(taken.batch, result)
        return True

    def _drain_until(self, deadline: float) -> None:
        attempt = 0
        while self._fatal is None and not self.spool.is_empty():
            if self._deliver_one():
                attempt = 0
                continue
            delay = self.timing.backoff.delay(attempt)
            if time.monotonic() + delay > deadline:
                return
            time.sleep(delay)
            attempt += 1

    # ------------------------------------------------------------------ self-metrics

    def metrics_line(self) -> str:
        report = self.report()
        return (
            f"{SELF_MEASUREMENT},gateway={self._gateway_tag} points_written={report.written}i,"
            f"points_retried={report.retried}i,points_spooled={report.spooled}i,"
            f"points_dropped={report.dropped}i,spool_depth={report.spool.points}i {time.time_ns()}"
        )

    def _periodic_metrics(self) -> None:
        if time.monotonic() >= self._next_metrics:
            self._next_metrics = time.monotonic() + self.timing.metrics_interval_s
            self._route([self.metrics_line()])

    def _final_metrics(self) -> None:
        batch = Batch.of([self.metrics_line()])
        if self._fatal is None and not self._down and self.spool.is_empty():
            try:
                self.written(batch, self.transport.send(batch))
            except InfluxError:
                pass  # InfluxDB went away at the last moment: spooled below
            else:
                return
        self._to_spool(batch)


@dataclass(frozen=True, slots=True)
class FlushResult:
    """What `flush_spool` delivered, and why it stopped early (if it did)."""

    batches: int
    written: int
    dropped: int
    error: InfluxError | None


def flush_spool(
    spool: Spool, send: Callable[[Batch], Delivered], batch_size: int, backoff: Backoff, timeout_s: float
) -> FlushResult:
    """Deliver the whole spool, oldest first, retrying while InfluxDB is unavailable for ``timeout_s``.

    Stops at a set-up error (returned in ``error``); raises SpoolBusyError when another process is
    delivering the same spool.
    """
    deadline = time.monotonic() + timeout_s
    batches = written = dropped = attempt = 0
    quiet = QuietLog(log)
    while True:
        try:
            got = spool.deliver_oldest(send, batch_size)
        except InfluxUnavailable as exc:
            delay = backoff.delay(attempt, exc.retry_after)
            if time.monotonic() + delay > deadline:
                return FlushResult(batches, written, dropped, exc)
            time.sleep(delay)
            attempt += 1
            continue
        except InfluxSetupError as exc:
            return FlushResult(batches, written, dropped, exc)
        if got is None:
            return FlushResult(batches, written, dropped, None)
        taken, result = got
        attempt = 0
        batches += len(taken.entries)
        written += taken.batch.points - result.dropped
        dropped += result.dropped
        if result.dropped:
            quiet.warn(
                result.reason,
                "InfluxDB refused %d bad points (not retried): %s",
                result.dropped,
                result.reason,
            )
