"""Events as `event` points and as MQTT JSON; tag sets read back; thresholds by strength."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from gateway.aggregators.detectors.events import (
    Event,
    EventType,
    distinct_times,
    event_json,
    event_line,
    event_lines,
)
from gateway.aggregators.detectors.inputs import parse_tag_set
from gateway.aggregators.detectors.thresholds import activation_threshold, paper_threshold
from gateway.enrichers.identity import Identity
from gateway.sinks.lineproto import tag_set

BEAT = Event(
    "50:c7:bf:a1:3c:5e",
    EventType.HEARTBEAT,
    1_730_857_822_000_000_000,
    'Desk Plug calls "n-devs" every 60 s',
    host="n-devs.tplinkcloud.com",
    period_s=60.2,
    device_name="Desk Plug",
)


def test_a_heartbeat_line_has_the_schema_fields_and_float_types() -> None:
    assert event_line(BEAT) == (
        "event,device=50:c7:bf:a1:3c:5e,type=heartbeat "
        'text="Desk Plug calls \\"n-devs\\" every 60 s",bytes=0i,host="n-devs.tplinkcloud.com",'
        "duration_s=0.0,period_s=60.2 1730857822000000000"
    )
    activation = Event("68:db:f5:90:19:64", EventType.ACTIVATION, 5, "x", bytes=135_000, duration_s=4)
    line = event_line(activation)
    assert "bytes=135000i" in line
    assert "duration_s=4.0" in line
    assert "period_s" not in line


def test_events_of_one_device_type_and_time_stay_distinct_points() -> None:
    same = [BEAT, BEAT, BEAT]
    moved = distinct_times(same)
    assert [e.ts_ns - BEAT.ts_ns for e in moved] == [0, 1, 2]
    assert len({line.rsplit(" ", 1)[1] for line in event_lines(same)}) == 3


def test_the_json_carries_every_field() -> None:
    doc = json.loads(event_json(BEAT))
    assert doc == {
        "device": "50:c7:bf:a1:3c:5e",
        "device_name": "Desk Plug",
        "type": "heartbeat",
        "time": "2024-11-06T01:50:22.000Z",
        "ts_ns": 1_730_857_822_000_000_000,
        "text": 'Desk Plug calls "n-devs" every 60 s',
        "bytes": 0,
        "host": "n-devs.tplinkcloud.com",
        "duration_s": 0.0,
        "period_s": 60.2,
    }


@given(st.dictionaries(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=30), max_size=6))
def test_tag_sets_read_back(tags: dict[str, str]) -> None:
    clean = {
        k.replace("\n", " ").replace("\r", " "): v.replace("\n", " ").replace("\r", " ")
        for k, v in tags.items()
    }
    assert parse_tag_set(tag_set(clean)) == clean


def identity(kind: str, vendor: str, model: str = "", profile: str = "") -> Identity:
    return Identity("x", kind, vendor, model, profile, None, (), "")


def test_thresholds_lab_value_first_then_profile_then_the_paper() -> None:
    echo = identity("voice_assistant", "Amazon", "Echo Dot", "amazon_echo")
    assert activation_threshold("d", echo) == 12_172
    assert activation_threshold("d", echo, lambda p: 13_000 if p == "amazon_echo" else None) == 13_000
    assert activation_threshold("d", echo, lambda p: 13_000, {"d": 9_900}) == 9_900
    assert activation_threshold("d", identity("tv", "Samsung")) is None
    assert activation_threshold("d", identity("tv", "Samsung"), overrides={"d": 50_000}) == 50_000
    assert activation_threshold("d", identity("voice_assistant", "Unknown maker")) is None
    assert paper_threshold("Harman Kardon", "Invoke") == 13_568
    assert paper_threshold("Apple", "HomePod mini") == 76_366
    assert paper_threshold("Google Nest", "Nest Mini") == 46_086
