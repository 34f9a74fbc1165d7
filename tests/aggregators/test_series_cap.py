"""SeriesCap: per-device and total caps on the series opened in a window of capture time."""

from __future__ import annotations

from gateway.aggregators.series_cap import SeriesCap

DAY = 86_400


def test_a_device_opens_at_most_its_cap_and_keeps_what_it_opened() -> None:
    cap = SeriesCap(per_device=3, total=100, window_s=DAY)
    cap.start(0)
    assert [cap.admit("a", k) for k in range(5)] == [True, True, True, False, False]
    assert cap.admit("a", 1)  # already one of its series
    assert not cap.admit("a", 7)  # full: no new one
    assert cap.admit("b", 4)  # other devices have their own room


def test_all_devices_together_stop_at_the_total() -> None:
    cap = SeriesCap(per_device=3, total=4, window_s=DAY)
    cap.start(0)
    assert [cap.admit(d, 1) for d in "abcde"] == [True, True, True, True, False]
    assert not cap.admit("e", 2)
    assert cap.admit("a", 1)  # a series already open stays open at the total
    assert not cap.admit("a", 2)


def test_a_new_window_starts_empty_and_late_rows_do_not_reset_it() -> None:
    cap = SeriesCap(per_device=1, total=10, window_s=DAY)
    cap.start(10)
    assert cap.admit("a", 1)
    assert not cap.admit("a", 2)
    cap.start(5)  # a late bin of the same window
    assert not cap.admit("a", 2)
    cap.start(DAY + 10)
    assert cap.admit("a", 2)
    assert not cap.admit("a", 1)  # the old window's series is not carried over
    cap.start(10)  # a row older than the window: the window stays
    assert cap.admit("a", 2)
    assert not cap.admit("a", 1)
