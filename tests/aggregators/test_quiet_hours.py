"""Quiet-hours windows in local time (past midnight, over a DST change), and one event per device and
window once the window is over."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.aggregators.detectors.events import EventType
from gateway.aggregators.detectors.quiet_hours import QuietHoursDetector, occurrences
from gateway.config import QuietWindow
from tests.aggregators.synthetic import ECHO, NS, PLUG, T0, rows

PARIS = ZoneInfo("Europe/Paris")


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=PARIS).timestamp())


def test_a_window_past_midnight_began_the_evening_before() -> None:
    night = QuietWindow.parse("22:00-07:00")
    [occ] = occurrences([night], PARIS, epoch("2024-11-06T03:00"))
    assert (occ.start_s, occ.end_s) == (epoch("2024-11-05T22:00"), epoch("2024-11-06T07:00"))
    [evening] = occurrences([night], PARIS, epoch("2024-11-05T23:00"))
    assert evening == occ
    assert occurrences([night], PARIS, epoch("2024-11-06T12:00")) == []


def test_a_window_over_the_autumn_clock_change_lasts_an_hour_more() -> None:
    [occ] = occurrences([QuietWindow.parse("01:00-04:00")], PARIS, epoch("2024-10-27T01:30"))
    assert occ.end_s - occ.start_s == 4 * 3600


def test_one_event_per_device_when_the_window_is_over() -> None:
    window = QuietWindow.parse("02:55-03:05")  # T0 is 02:50 in Paris
    d = QuietHoursDetector([window], PARIS)
    before = rows([(290, PLUG, "n-devs.tplinkcloud.com", "US", 999, 999)])
    inside = rows(
        [
            (300, PLUG, "n-devs.tplinkcloud.com", "US", 180, 120),
            (360, PLUG, "pool.ntp.org", "US", 90, 90),
            (360, PLUG, "192.168.1.1", "", 500, 500),  # the router: stays home, not counted
            (420, ECHO, "avs-alexa-4-na.amazon.com", "US", 1000, 2000),
            (420, PLUG, "n-devs.tplinkcloud.com", "US", 180, 120),
        ],
        local=["192.168.1.1"],
    )
    assert d.observe_rows(before) == []
    assert d.observe_rows(inside) == []
    assert d.observe_rows(rows([(880, PLUG, "n-devs.tplinkcloud.com", "US", 1, 1)])) == []  # last bin
    events = d.observe_rows(rows([(900, PLUG, "n-devs.tplinkcloud.com", "US", 1, 1)]))
    by_device = {e.device: e for e in events}
    assert set(by_device) == {ECHO.device, PLUG.device}
    plug = by_device[PLUG.device]
    assert plug.type == EventType.QUIET_HOURS
    assert plug.ts_ns == (T0 + 300) * NS
    assert plug.duration_s == 600.0
    assert plug.bytes == 300 + 180 + 300 + 2
    assert plug.host == "n-devs.tplinkcloud.com,pool.ntp.org"
    assert plug.text == (
        "Desk Plug during quiet hours 02:55-03:05: sent 451 B, received 331 B, "
        "2 destinations (n-devs.tplinkcloud.com, pool.ntp.org)"
    )
    assert d.finish() == []


def test_a_capture_that_ends_inside_a_window_still_reports_it() -> None:
    d = QuietHoursDetector([QuietWindow.parse("02:55-03:05")], PARIS)
    d.observe_rows(rows([(300, ECHO, "avs-alexa-4-na.amazon.com", "US", 10, 10)]))
    [event] = d.finish()
    assert "the capture ended before the window did" in event.text


def test_silent_devices_and_no_windows_give_nothing() -> None:
    d = QuietHoursDetector([], PARIS)
    assert d.observe_rows(rows([(300, ECHO, "avs-alexa-4-na.amazon.com", "US", 10, 10)])) == []
    d = QuietHoursDetector([QuietWindow.parse("02:55-03:05")], PARIS)
    d.observe_rows(rows([(300, ECHO, "192.168.1.1", "", 10, 10)], local=["192.168.1.1"]))
    assert d.finish() == []
