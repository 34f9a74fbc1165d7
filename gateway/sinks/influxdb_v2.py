"""InfluxDB ``/api/v2/write`` through influxdb-client (InfluxDB 1.8+, 2.x, 3.x; VictoriaMetrics).

The live path is influxdb-client's batching write API: our line-protocol strings are its records
(building ``Point`` objects would serialise ten times slower), it cuts batches by size and time and
retries them with backoff and jitter; its callbacks report each batch to the sink, which spools the
failed ones. Spooled batches are delivered with the synchronous write API, one request each, so a
batch leaves the spool only once InfluxDB has answered. Errors get the types of
`gateway.sinks.influxdb`, decided by exception type and HTTP status.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS, WriteOptions, WriteType
from influxdb_client.rest import ApiException
from reactivex.scheduler import ThreadPoolScheduler

from gateway.config import InfluxConfig
from gateway.sinks.batch import Backlog, Batch, Delivered, parse_retry_after
from gateway.sinks.influxdb import (
    InfluxError,
    InfluxSetupError,
    InfluxUnavailable,
    quote_answer,
    rejected_points,
    safe_url,
)
from gateway.sinks.reliable import Outcomes, Timing

log = logging.getLogger(__name__)

# Attempts of one batch in the batching API; the time budget (Timing.retry_budget_s) usually ends first.
MAX_RETRIES = 10
_BAD_POINTS = frozenset({400, 422})  # 422: InfluxDB 2.x's answer to a field type conflict
_TOO_LARGE = 413


class GiveUpError(Exception):
    """Raised from the retry callback to stop retrying a batch (InfluxDB down, or closing)."""


def _token(cfg: InfluxConfig) -> str:
    """The v2 token; InfluxDB 1.8's /api/v2/write takes ``user:password`` instead."""
    if cfg.token is not None:
        return cfg.token.get_secret_value()
    if cfg.username:
        password = cfg.password.get_secret_value() if cfg.password else ""
        return f"{cfg.username}:{password}"
    return ""


class InfluxV2Client:
    """The `Transport` for ``api: v2``; `live_writer` builds the batching live path on the same client."""

    def __init__(self, cfg: InfluxConfig, timing: Timing) -> None:
        self.cfg = cfg
        self.timing = timing
        self._where = safe_url(cfg.url)
        self._client = InfluxDBClient(
            url=cfg.url,
            token=_token(cfg),
            org=cfg.org,
            timeout=int(cfg.timeout_s * 1000),
            verify_ssl=cfg.verify_tls,
        )
        self._sync = self._client.write_api(write_options=SYNCHRONOUS)

    def __repr__(self) -> str:
        return f"InfluxV2Client(url={self._where!r}, bucket={self.cfg.database!r}, org={self.cfg.org!r})"

    def describe(self) -> str:
        org = f" org {self.cfg.org}" if self.cfg.org else ""
        return f"InfluxDB {self._where} bucket {self.cfg.database}{org} (/api/v2/write)"

    def prepare(self) -> None:
        """Nothing to create: buckets are made by the user (see docs/influxdb.md)."""

    def probe(self) -> bool:
        return bool(self._client.ping())

    def send(self, batch: Batch) -> Delivered:
        """Write one batch synchronously (the spool's path)."""
        try:
            self._sync.write(bucket=self.cfg.database, org=self.cfg.org, record=batch.body)
        except Exception as exc:  # influxdb-client raises urllib3's errors and its own
            status = getattr(exc, "status", None)
            if isinstance(exc, ApiException) and status == _TOO_LARGE and batch.points > 1:
                first, second = (self.send(half) for half in batch.halves())
                return Delivered(first.dropped + second.dropped, first.reason or second.reason)
            outcome = classify(exc, batch.points, self._where)
            if isinstance(outcome, InfluxError):
                raise outcome from None
            return outcome
        return Delivered()

    def live_writer(self, outcomes: Outcomes, batch_size: int, flush_interval_s: float) -> V2Live:
        return V2Live(self._client, self.cfg, outcomes, batch_size, flush_interval_s, self.timing)

    def close(self) -> None:
        api_client = self._client.api_client
        self._sync.close()  # type: ignore[no-untyped-call]
        self._client.close()  # type: ignore[no-untyped-call]
        # Its __del__ clears the pool again when collected, which at interpreter exit fails noisily
        # under urllib3-future ("sys.meta_path is None"); the pool is closed already.
        api_client.rest_client.pool_manager = None  # type: ignore[assignment]


def classify(exc: BaseException, points: int, where: str) -> Delivered | InfluxError:
    """What an influxdb-client failure means: bad points (Delivered), or a typed InfluxError."""
    if isinstance(exc, GiveUpError):
        return InfluxUnavailable(f"InfluxDB at {where} is unavailable; retries stopped")
    if isinstance(exc, ApiException):
        return _classify_status(exc, points, where)
    if isinstance(exc, urllib3.exceptions.MaxRetryError):
        reason = exc.reason
        if isinstance(reason, urllib3.exceptions.SSLError):
            return _tls_error(where, reason)
        return InfluxUnavailable(f"InfluxDB at {where} still failing after retries: {type(reason).__name__}")
    if isinstance(exc, urllib3.exceptions.SSLError):
        return _tls_error(where, exc)
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return InfluxUnavailable(f"cannot reach InfluxDB at {where}: {type(exc).__name__}")
    log.error("unexpected error from influxdb-client: %s; the batch is spooled", type(exc).__name__)
    return InfluxUnavailable(f"InfluxDB at {where}: unexpected {type(exc).__name__}")


def _classify_status(exc: ApiException, points: int, where: str) -> Delivered | InfluxError:
    status = int(exc.status or 0)
    raw = exc.body if isinstance(exc.body, bytes) else str(exc.body or "").encode()
    said = quote_answer(raw) or str(exc.reason or "")
    if status == 0:  # influxdb-client's wrapping of a TLS failure
        return InfluxSetupError(f"TLS with InfluxDB at {where} failed: check its certificate or verify_tls")
    if status in _BAD_POINTS:
        return Delivered(rejected_points(raw, points), said)
    if status == 429 or status >= 500 or status == _TOO_LARGE:  # too large: the spool sends it in halves
        retry_after = parse_retry_after(getattr(exc, "retry_after", None))
        return InfluxUnavailable(
            f"InfluxDB at {where} answered {status}: {said}", status=status, retry_after=retry_after
        )
    return InfluxSetupError(f"InfluxDB at {where} answered {status}: {said}. {_hint(status)}", status=status)


def _hint(status: int) -> str:
    if status == 401:
        return "Check the token (MOUCHARD_INFLUXDB_TOKEN or influxdb.token_file)"
    if status == 403:
        return "Give the token write access to the bucket"
    if status == 404:
        return "Create the bucket (influxdb.database) in the organisation (influxdb.org), or fix their names"
    return "Check influxdb.url, influxdb.org and influxdb.database"


def _tls_error(where: str, exc: BaseException) -> InfluxSetupError:
    return InfluxSetupError(
        f"TLS with InfluxDB at {where} failed ({type(exc).__name__}): check its certificate, or set "
        "influxdb.verify_tls: false for a self-signed one on a trusted network"
    )


class V2Live:
    """The live path over influxdb-client's batching write API (a `LiveWriter`).

    The API sends its batches one at a time, in order, from one thread; so the lines handed over and
    not yet reported are a FIFO, and each callback's batch is its head. That gives every batch the
    arrival time of its first line (the spool's order), and lets `finish` spool whatever the API
    could not report before its close deadline.
    """

    def __init__(
        self,
        client: InfluxDBClient,
        cfg: InfluxConfig,
        outcomes: Outcomes,
        batch_size: int,
        flush_interval_s: float,
        timing: Timing,
    ) -> None:
        self._bucket, self._org = cfg.database, cfg.org
        self._where = safe_url(cfg.url)
        self._outcomes = outcomes
        self._lock = threading.Lock()
        self._inflight: deque[tuple[int, list[str]]] = deque()  # (arrival ns, lines), oldest first
        self._front = 0  # lines of the oldest entry already reported
        self.backlog = Backlog()
        backoff = timing.backoff
        options = WriteOptions(
            write_type=WriteType.batching,
            batch_size=batch_size,
            flush_interval=max(1, int(flush_interval_s * 1000)),
            jitter_interval=0,
            retry_interval=max(1, int(backoff.first_s * 1000)),
            max_retries=MAX_RETRIES,
            max_retry_delay=max(1, int(backoff.max_s * 1000)),
            max_retry_time=max(1, int(timing.retry_budget_s * 1000)),
            exponential_base=backoff.factor,
            max_close_wait=max(1, int((timing.close_budget_s + cfg.timeout_s) * 1000)),
            write_scheduler=ThreadPoolScheduler(max_workers=1),  # its own, not the shared default
        )
        self._api = client.write_api(
            write_options=options,
            success_callback=self._on_success,
            error_callback=self._on_error,
            retry_callback=self._on_retry,
        )

    def write(self, lines: list[str]) -> None:
        self.backlog.add(len(lines))
        with self._lock:
            self._inflight.append((time.time_ns(), lines))
        self._api.write(bucket=self._bucket, org=self._org, record=lines)

    def finish(self, timeout_s: float) -> list[Batch]:
        """Flush and stop the batching API (it waits up to its max_close_wait); return the unreported."""
        self._api.close()  # type: ignore[no-untyped-call]
        with self._lock:
            left = [
                Batch.of(lines[self._front if i == 0 else 0 :], stamp)
                for i, (stamp, lines) in enumerate(self._inflight)
            ]
            self._inflight.clear()
            self._front = 0
        self.backlog.done(self.backlog.points)
        return [b for b in left if b.points]

    # ------------------------------------------------------------------ callbacks (the API's thread)

    def _batch(self, data: bytes) -> Batch:
        """The reported batch, stamped with the arrival of its first line; it leaves the FIFO."""
        body = data if isinstance(data, bytes) else str(data).encode()
        points = body.count(b"\n") + 1
        self.backlog.done(points)
        with self._lock:
            stamp = self._inflight[0][0] + self._front if self._inflight else time.time_ns()
            todo = points
            while todo and self._inflight:
                size = len(self._inflight[0][1])
                step = min(todo, size - self._front)
                self._front += step
                todo -= step
                if self._front == size:
                    self._inflight.popleft()
                    self._front = 0
        return Batch(body + b"\n", points, stamp)

    def _on_success(self, _conf: object, data: bytes) -> None:
        self._outcomes.written(self._batch(data), Delivered())

    def _on_error(self, _conf: object, data: bytes, exc: BaseException) -> None:
        batch = self._batch(data)
        outcome = classify(exc, batch.points, self._where)
        if isinstance(outcome, Delivered):
            self._outcomes.written(batch, outcome)
        else:
            self._outcomes.failed(batch, outcome)

    def _on_retry(self, _conf: object, data: bytes, _exc: BaseException) -> None:
        self._outcomes.retried(data.count(b"\n") + 1)
        if self._outcomes.give_up():
            raise GiveUpError
