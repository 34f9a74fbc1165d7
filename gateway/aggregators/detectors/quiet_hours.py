"""Quiet hours: what each device exchanged with the outside while nobody was in the lab.

Windows are local times of the lab (``detectors.quiet_hours`` in ``detectors.timezone``); a window
that ends before it starts runs past midnight. A bin belongs to the window occurrence its start falls
in. When capture time passes the end of an occurrence, each device that exchanged bytes with outside
destinations during it gets one ``quiet_hours`` event (time: the window's start; duration: its
length); devices that stayed silent get none. Traffic that stays on the LAN is not counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from gateway.aggregators.detectors.events import NS, Event, EventType, human_bytes, join_hosts
from gateway.aggregators.detectors.inputs import DeviceRows, Subject
from gateway.config import QuietWindow

# Devices tallied per window occurrence; a lab has tens.
MAX_DEVICES = 4096
# Destinations tallied per device and occurrence; beyond this only bytes are added.
MAX_DESTINATIONS = 256
SHOWN = 5  # destinations named in the text and the host field


@dataclass(frozen=True, slots=True, order=True)
class Occurrence:
    """One night (or afternoon) of a window: its bounds in epoch seconds, and its text."""

    start_s: int
    end_s: int
    window: str


@dataclass(slots=True)
class _Tally:
    subject: Subject
    bytes_out: int = 0
    bytes_in: int = 0
    hosts: dict[str, int] = field(default_factory=dict)


def occurrences(windows: Sequence[QuietWindow], zone: ZoneInfo, t_s: int) -> list[Occurrence]:
    """The window occurrences that contain the instant ``t_s``."""
    local = datetime.fromtimestamp(t_s, zone)
    found = []
    for w in windows:
        if not w.contains(local.time()):
            continue
        day = local.date()
        wraps = w.end <= w.start
        if wraps and local.time() < w.start:
            day -= timedelta(days=1)  # after midnight: the window opened the evening before
        end_day = day + timedelta(days=int(wraps))
        found.append(Occurrence(_epoch(day, w.start, zone), _epoch(end_day, w.end, zone), str(w)))
    return found


def _epoch(day: date, moment: time, zone: ZoneInfo) -> int:
    return int(datetime.combine(day, moment, tzinfo=zone).timestamp())


class QuietHoursDetector:
    def __init__(self, windows: Sequence[QuietWindow], zone: ZoneInfo) -> None:
        self.windows = tuple(windows)
        self.zone = zone
        self.open: dict[Occurrence, dict[str, _Tally]] = {}
        self._bin_cache: tuple[int, list[Occurrence]] = (-1, [])
        self.untracked = 0

    def observe_rows(self, rows: DeviceRows) -> list[Event]:
        if not self.windows or not len(rows):
            return []
        outside = ~np.array([d.local for d in rows.destinations], dtype=np.bool_)[rows.dest]
        for i in np.flatnonzero(outside).tolist():
            for occ in self._occurrences(int(rows.bin_s[i])):
                self._add(occ, rows, i)
        return self._close(int(rows.bin_s.max()) + rows.interval_s)

    def finish(self) -> list[Event]:
        return self._close(None)

    def _occurrences(self, bin_s: int) -> list[Occurrence]:
        if self._bin_cache[0] != bin_s:
            self._bin_cache = (bin_s, occurrences(self.windows, self.zone, bin_s))
        return self._bin_cache[1]

    def _add(self, occ: Occurrence, rows: DeviceRows, i: int) -> None:
        subject = rows.subjects[int(rows.device[i])]
        tallies = self.open.setdefault(occ, {})
        tally = tallies.get(subject.device)
        if tally is None:
            if len(tallies) >= MAX_DEVICES:
                self.untracked += 1
                return
            tally = tallies[subject.device] = _Tally(subject)
        out, inb = int(rows.bytes_out[i]), int(rows.bytes_in[i])
        tally.bytes_out += out
        tally.bytes_in += inb
        host = rows.destinations[int(rows.dest[i])].host
        if host in tally.hosts or len(tally.hosts) < MAX_DESTINATIONS:
            tally.hosts[host] = tally.hosts.get(host, 0) + out + inb

    def _close(self, now_s: int | None) -> list[Event]:
        """Events of the occurrences that ended by ``now_s`` (all of them when None)."""
        events = []
        for occ in sorted(o for o in self.open if now_s is None or o.end_s <= now_s):
            ended = now_s is not None
            events += [_event(occ, t, ended) for t in self.open.pop(occ).values() if t.bytes_out + t.bytes_in]
        return events


def _event(occ: Occurrence, tally: _Tally, ended: bool) -> Event:
    hosts = [h for h, _ in sorted(tally.hosts.items(), key=lambda kv: (-kv[1], kv[0]))]
    shown = ", ".join(hosts[:SHOWN]) + (f" and {len(hosts) - SHOWN} more" if len(hosts) > SHOWN else "")
    partial = "" if ended else " (the capture ended before the window did)"
    text = (
        f"{tally.subject.label} during quiet hours {occ.window}: sent {human_bytes(tally.bytes_out)}, "
        f"received {human_bytes(tally.bytes_in)}, {len(hosts)} destination"
        f"{'' if len(hosts) == 1 else 's'} ({shown}){partial}"
    )
    return Event(
        tally.subject.device,
        EventType.QUIET_HOURS,
        occ.start_s * NS,
        text,
        bytes=tally.bytes_out + tally.bytes_in,
        host=join_hosts(hosts, SHOWN),
        duration_s=float(occ.end_s - occ.start_s),
        device_name=tally.subject.name,
    )
