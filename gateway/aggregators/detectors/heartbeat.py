"""Heartbeats: a device that contacts a destination at a regular period ("calls home every 30 s").

A *contact* is a packet a device sends to an outside address after at least ``GAP_S`` of silence
towards that address: a heartbeat on a kept-open connection, or a new connection. Contacts are then
grouped by the destination's name, so a host answering from several addresses is one destination.
Per (device, host) the last contact times are kept; the period is the typical time between
consecutive contacts, confirmed when most contacts come one period after an earlier one (extra
contacts in between, such as a voice request on the same connection, and the odd missed beat do not
break it). An event is emitted when a period is first found, and when it changes by more than 15 %.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from gateway.aggregators.detectors.events import NS, Event, EventType, human_period
from gateway.aggregators.detectors.inputs import PacketHostsOf, SentPackets, Subject
from gateway.aggregators.grouping import key_hash

K = TypeVar("K")
V = TypeVar("V")

GAP_S = 2.0  # silence that makes the next packet a new contact; a heartbeat exchange lasts < 1 s
MIN_PERIOD_S = 5.0  # below this a "period" is a busy connection, not a heartbeat
MAX_PERIOD_S = 6 * 3600.0
MIN_CONTACTS = 6  # five intervals before a period is believed
TOLERANCE = 0.10  # an interval within 10 % of the period is on the beat
ON_BEAT_SHARE = 0.6  # share of contacts that must be on the beat
CHANGE = 0.15  # a new period this far from the reported one is reported again
# Contact times kept per (device, host): enough for the estimate, bounded for a chatty device.
CONTACTS_KEPT = 16
# (device, address) pairs whose last packet time is kept to find contacts; a device scanning the
# internet would add one per address, so the oldest go first beyond this.
MAX_PAIRS = 100_000
# (device, host) beats followed; the least recently contacted go first beyond this.
MAX_BEATS = 20_000


@dataclass(slots=True)
class _Beat:
    last_ns: int = -(1 << 62)  # the latest contact
    seconds: deque[float] = field(default_factory=lambda: deque(maxlen=CONTACTS_KEPT))  # contact times
    reported: float | None = None


def estimate_period(times_s: Sequence[float]) -> float | None:
    """The period of contact times (seconds, ascending), or None when they are not periodic.

    Runs once per contact (about 170,000 times for a busy replay): plain loops over at most
    CONTACTS_KEPT floats, with every bound computed once.
    """
    n = len(times_s)
    if n < MIN_CONTACTS:
        return None
    times_s = list(times_s)  # a deque indexes in O(n)
    gaps = sorted([b - a for a, b in itertools.pairwise(times_s)])
    mid = len(gaps) // 2  # the median, without the statistics module's overhead
    candidate = gaps[mid] if len(gaps) % 2 else (gaps[mid - 1] + gaps[mid]) / 2
    if not MIN_PERIOD_S <= candidate <= MAX_PERIOD_S:
        return None
    slack, beyond = TOLERANCE * candidate, (1 + TOLERANCE) * candidate
    on_beat = []
    for i in range(1, n):
        now = times_s[i]
        for j in range(i - 1, -1, -1):  # the latest earlier contact one period back, if any
            gap = now - times_s[j]
            if abs(gap - candidate) <= slack:
                on_beat.append(gap)
                break
            if gap > beyond:
                break
    if len(on_beat) < max(MIN_CONTACTS - 1, ON_BEAT_SHARE * (n - 1)):
        return None
    return sum(on_beat) / len(on_beat)


class HeartbeatDetector:
    def __init__(self, hosts_of: PacketHostsOf, gap_s: float = GAP_S) -> None:
        self.hosts_of = hosts_of
        self.gap_ns = int(gap_s * NS)
        self.last_seen: dict[int, int] = {}  # hash(device, address) -> last packet time
        self.beats: dict[tuple[str, str], _Beat] = {}

    def observe(self, sent: SentPackets | None) -> list[Event]:
        if sent is None or not len(sent):
            return []
        pair = key_hash([sent.kind, sent.dhi, sent.dlo, sent.rhi, sent.rlo])
        order = np.lexsort((sent.ts_ns, pair))
        p, t = pair[order], sent.ts_ns[order]
        new_pair = np.ones(len(p), np.bool_)
        new_pair[1:] = p[1:] != p[:-1]
        gap = np.zeros(len(p), np.int64)
        gap[1:] = t[1:] - t[:-1]
        contact = ~new_pair & (gap > self.gap_ns)
        firsts = np.flatnonzero(new_pair)
        lasts = np.append(firsts[1:] - 1, len(p) - 1)
        seen = self.last_seen
        for f, last, key in zip(firsts.tolist(), lasts.tolist(), p[firsts].tolist(), strict=True):
            before = seen.pop(key, None)
            contact[f] = before is None or int(t[f]) - before > self.gap_ns
            seen[key] = int(t[last])  # re-inserted: the dict's order is least recently seen first
        _trim(seen, MAX_PAIRS)
        at = order[contact]
        at = at[np.argsort(sent.ts_ns[at], kind="stable")]
        hosts = self.hosts_of(sent, at)
        subjects = sent.subjects
        events: list[Event] = []
        for d, host, ts in zip(sent.device[at].tolist(), hosts, sent.ts_ns[at].tolist(), strict=True):
            event = self._contact(subjects[d], host, ts)
            if event is not None:
                events.append(event)
        return events

    def _contact(self, subject: Subject, host: str, ts_ns: int) -> Event | None:
        key = (subject.device, host)
        beats = self.beats
        beat = beats.pop(key, None) or _Beat()
        beats[key] = beat  # most recently contacted last
        if len(beats) > MAX_BEATS:
            _trim(beats, MAX_BEATS)
        if ts_ns - beat.last_ns <= self.gap_ns:
            return None  # the same contact, seen on a second address of the host
        beat.last_ns = ts_ns
        beat.seconds.append(ts_ns / NS)
        period = estimate_period(beat.seconds)
        if period is None or (beat.reported is not None and abs(period / beat.reported - 1) <= CHANGE):
            return None
        changed = beat.reported is not None
        beat.reported = period
        verb = "now calls" if changed else "calls"
        return Event(
            subject.device,
            EventType.HEARTBEAT,
            ts_ns,
            f"{subject.label} {verb} {host} every {human_period(period)}",
            host=host,
            period_s=round(period, 1),
            device_name=subject.name,
        )


def _trim(table: dict[K, V], limit: int) -> None:
    """Drop the oldest tenth of ``table`` once it holds more than ``limit`` entries."""
    if len(table) > limit:
        for key in list(table)[: max(1, limit // 10)]:
            del table[key]
