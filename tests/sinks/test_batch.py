"""Batches, backoff, and reading InfluxDB's answers (the texts are those of Debian's InfluxDB 1.6.7)."""

from __future__ import annotations

import time
from email.utils import formatdate

from gateway.sinks.batch import MAX_RETRY_AFTER_S, Backoff, Batch, LineBuffer, parse_retry_after
from gateway.sinks.influxdb import quote_answer, rejected_points, safe_url


def test_backoff_grows_with_jitter_up_to_its_cap() -> None:
    backoff = Backoff(first_s=1.0, factor=2.0, max_s=8.0)
    for attempt, ceiling in enumerate([1, 2, 4, 8, 8, 8]):
        delays = [backoff.delay(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 100  # jitter: clients do not retry in lockstep
    assert backoff.delay(10_000) <= 8.0


def test_retry_after_is_a_floor_and_is_capped() -> None:
    backoff = Backoff(first_s=0.1, max_s=1.0)
    assert backoff.delay(0, retry_after=7.0) == 7.0
    assert backoff.delay(0, retry_after=10_000.0) == MAX_RETRY_AFTER_S


def test_retry_after_header_in_seconds_or_as_a_date() -> None:
    now = time.time()
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    in_a_minute = parse_retry_after(formatdate(now + 60, usegmt=True), now=now)
    assert in_a_minute is not None
    assert 59 <= in_a_minute <= 61


def test_line_buffer_cuts_by_size_then_by_age() -> None:
    buf = LineBuffer(batch_size=3, flush_interval_s=0.05)
    buf.add([f"m v={i}i {i}" for i in range(7)])
    assert buf.due()
    full = buf.cut()
    assert [b.points for b in full] == [3, 3]
    assert len(buf) == 1
    assert not buf.due()
    time.sleep(0.06)
    assert buf.due()
    (rest,) = buf.cut()
    assert rest.body == b"m v=6i 6\n"
    stamps = [b.stamp_ns for b in [*full, rest]]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 3  # distinct: the spool keeps their order


def test_halves_split_at_line_boundaries() -> None:
    batch = Batch.of(["a v=1i 1", "b v=2i 2", "c v=3i 3"])
    first, second = batch.halves()
    assert (first.points, second.points) == (1, 2)
    assert first.body + second.body == batch.body


def test_rejected_points_are_counted_from_the_answer() -> None:
    conflict = (
        b'{"error":"partial write: field type conflict: input field \\"bytes_out\\" on measurement '
        b'\\"traffic\\" is type integer, already exists as type string dropped=2"}'
    )
    assert rejected_points(conflict, 3) == 2
    unparsable = (
        b'{"error":"partial write: unable to parse \'garbage line here\': invalid field format\\n'
        b"unable to parse 'bad,,x f=1 5': missing tag key dropped=0\"}"
    )
    assert rejected_points(unparsable, 4) == 2
    assert rejected_points(b'{"error":"something else"}', 5) == 5  # unknown: the whole batch
    assert quote_answer(conflict).startswith("partial write: field type conflict")


def test_urls_lose_their_credentials_in_messages() -> None:
    assert safe_url("http://admin:S3cret@db.lab:8086/x") == "http://db.lab:8086/x"
    assert safe_url("https://[::1]:8086") == "https://[::1]:8086"
    assert safe_url("http://u:p@[fd00::1]:8086") == "http://[fd00::1]:8086"
