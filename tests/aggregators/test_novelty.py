"""New destinations and countries: silent while learning, once each after, kept across restarts."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gateway.aggregators.detectors import novelty
from gateway.aggregators.detectors.events import EventType
from gateway.aggregators.detectors.novelty import NoveltyDetector
from gateway.aggregators.series_cap import OVERFLOW_HOST
from tests.aggregators.synthetic import ECHO, NS, PLUG, T0, rows

LEARN = rows(
    [
        (0, PLUG, "192.168.1.1", "", 80, 80),
        (20, PLUG, "n-devs.tplinkcloud.com", "US", 400, 300),
        (250, PLUG, "pool.ntp.org", "US", 90, 90),
    ],
    local=["192.168.1.1"],
)
LATER = rows(
    [
        (400, PLUG, "n-devs.tplinkcloud.com", "US", 180, 120),
        (780, PLUG, "fw-cn.tplinkcloud.com", "CN", 700, 5200),
        (790, PLUG, "fw-cn.tplinkcloud.com", "CN", 50, 50),
        (790, PLUG, "ota.tplinkcloud.com", "US", 50, 50),
    ]
)


def test_new_destinations_and_countries_once_learning_is_over() -> None:
    d = NoveltyDetector(learning_s=300)
    assert d.observe_rows(LEARN) == []
    events = d.observe_rows(LATER)
    assert [(e.type, e.host, e.ts_ns) for e in events] == [
        (EventType.NEW_DESTINATION, "fw-cn.tplinkcloud.com", (T0 + 780) * NS),
        (EventType.NEW_COUNTRY, "fw-cn.tplinkcloud.com", (T0 + 780) * NS),
        (EventType.NEW_DESTINATION, "ota.tplinkcloud.com", (T0 + 790) * NS),
    ]
    assert events[0].bytes == 700 + 5200 + 50 + 50
    assert events[0].text == "Desk Plug contacted a new destination: fw-cn.tplinkcloud.com (CN), 6.0 kB"
    assert events[1].text == "Desk Plug sent traffic to a new country: CN (fw-cn.tplinkcloud.com)"
    assert d.observe_rows(LATER) == []


def test_each_device_learns_from_its_own_first_row() -> None:
    d = NoveltyDetector(learning_s=300)
    d.observe_rows(LEARN)
    late_joiner = rows([(600, ECHO, "avs-alexa-4-na.amazon.com", "US", 1, 1)])
    assert d.observe_rows(late_joiner) == []


def test_what_was_learned_survives_a_restart_and_a_damaged_file_means_learning_again(tmp_path: Path) -> None:
    state = tmp_path / "novelty.json"
    first = NoveltyDetector(300, state)
    first.observe_rows(LEARN)
    first.finish()
    again = NoveltyDetector(300, state)
    assert [e.host for e in again.observe_rows(LATER)] == ["fw-cn.tplinkcloud.com"] * 2 + [
        "ota.tplinkcloud.com"
    ]
    state.write_text("{not json", encoding="utf-8")
    assert NoveltyDetector(300, state).known == {}


def test_a_device_reaching_many_destinations_stops_at_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(novelty, "MAX_HOSTS", 3)
    d = NoveltyDetector(learning_s=0)
    many = rows([(i, PLUG, f"site{i}.example", "FR", 1, 1) for i in range(10)])
    events = d.observe_rows(many)
    assert len([e for e in events if e.type == EventType.NEW_DESTINATION]) == 3
    assert d.saturated == 7


def test_the_overflow_of_a_device_past_its_destination_cap_is_not_a_new_destination() -> None:
    d = NoveltyDetector(learning_s=300)
    d.observe_rows(LEARN)
    past_cap = rows(
        [(800, PLUG, OVERFLOW_HOST, "", 900, 100), (800, PLUG, "ota.tplinkcloud.com", "US", 5, 5)]
    )
    assert [e.host for e in d.observe_rows(past_cap)] == ["ota.tplinkcloud.com"]


def test_the_state_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    state = tmp_path / "novelty.json"
    old = os.umask(0)
    try:
        d = NoveltyDetector(300, state)
        d.observe_rows(LEARN)
        d.finish()
    finally:
        os.umask(old)
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert "n-devs.tplinkcloud.com" in state.read_text()
