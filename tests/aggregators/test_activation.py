"""Voice activations from upload seconds: threshold, 20-s window, what does not count, bounds."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gateway.aggregators.detectors.activation import MAX_ACTIVATION_S, ActivationDetector
from gateway.aggregators.detectors.events import EventType
from gateway.aggregators.detectors.inputs import SentPackets
from tests.aggregators.synthetic import ECHO, NS, PLUG, T0, sent, stream


def detector() -> ActivationDetector:
    return ActivationDetector(lambda flows: ["avs-alexa-4-na.amazon.com"] * len(flows))


def at(seconds: float) -> int:
    return (T0 + int(seconds)) * NS


def concat(*parts: SentPackets) -> SentPackets:
    first = parts[0]
    cols = {f: np.concatenate([getattr(p, f) for p in parts]) for f in first.__slots__ if f != "subjects"}
    order = np.argsort(cols["ts_ns"], kind="stable")
    return SentPackets(subjects=first.subjects, **{k: v[order] for k, v in cols.items()})


def test_a_burst_above_the_threshold_is_one_activation_reported_after_the_window() -> None:
    d = detector()
    assert d.observe(stream(ECHO, 100, 5, 30_000), at(106)) == []
    assert d.active() == {ECHO.device}
    assert d.observe(None, at(124)) == []  # 20 s after the last loud second (104): not yet over
    [event] = d.observe(None, at(125))
    assert event.type == EventType.ACTIVATION
    assert event.device == ECHO.device
    assert event.ts_ns == at(100)
    assert event.duration_s == pytest.approx(5.0, abs=0.1)
    assert event.bytes == 150_000
    assert event.host == "avs-alexa-4-na.amazon.com"
    assert event.text.startswith("Kitchen Echo: voice activation, 5 s, 150.0 kB uploaded")
    assert d.active() == set()


@pytest.mark.parametrize(("gap_s", "count"), [(15, 1), (25, 2)])
def test_loud_seconds_within_twenty_seconds_belong_to_one_activation(gap_s: int, count: int) -> None:
    d = detector()
    burst = concat(stream(ECHO, 100, 2, 30_000), stream(ECHO, 102 + gap_s, 2, 30_000))
    events = d.observe(burst, at(200))
    assert len(events) == count
    if count == 1:
        assert events[0].duration_s == pytest.approx(2 + gap_s + 2, abs=0.1)


def test_the_quiet_seconds_inside_an_activation_count_in_its_bytes() -> None:
    d = detector()
    burst = concat(stream(ECHO, 100, 1, 30_000), stream(ECHO, 101, 3, 2_000), stream(ECHO, 104, 1, 30_000))
    [event] = d.observe(burst, at(200))
    assert event.bytes == 30_000 + 6_000 + 30_000


def test_idle_uploads_acks_other_ports_and_other_devices_are_no_activation() -> None:
    d = detector()
    quiet = stream(ECHO, 0, 60, 10_000)  # below the Echo's 12,172 B/s
    acks = sent(ECHO, [100 + i / 100 for i in range(500)], 100, data=False)  # 50 kB/s of pure ACKs
    http = sent(ECHO, [200 + i / 100 for i in range(500)], 1000, port=80)
    plug = replace(stream(ECHO, 300, 5, 50_000), subjects=(PLUG,))  # no threshold: not watched
    for part in (quiet, acks, http, plug):
        assert d.observe(part, at(400)) == []
    assert d.finish() == []


def test_batches_cutting_a_second_in_two_change_nothing() -> None:
    whole, cut = detector(), detector()
    burst = stream(ECHO, 100, 3, 20_000)
    expected = whole.observe(burst, at(200))
    half = len(burst) // 2 + 3
    first = burst.select(np.arange(len(burst)) < half)
    rest = burst.select(np.arange(len(burst)) >= half)
    events = cut.observe(first, int(first.ts_ns.max())) + cut.observe(rest, at(200))
    assert events == expected


def test_finish_reports_an_activation_still_open() -> None:
    d = detector()
    assert d.observe(stream(ECHO, 100, 3, 20_000), at(103)) == []
    [event] = d.finish()
    assert event.duration_s == pytest.approx(3, abs=0.1)


def test_an_endless_upload_is_cut_into_bounded_activations() -> None:
    d = detector()
    events = d.observe(
        stream(ECHO, 0, MAX_ACTIVATION_S + 100, 20_000, packet=5000), at(MAX_ACTIVATION_S + 200)
    )
    assert len(events) == 2
    assert events[0].duration_s == pytest.approx(MAX_ACTIVATION_S, abs=1)


def test_a_lower_threshold_from_calibration_applies_at_once() -> None:
    d = detector()
    lowered = replace(stream(ECHO, 100, 3, 8_000), subjects=(replace(ECHO, threshold_bps=6_000),))
    assert len(d.observe(lowered, at(200))) == 1
