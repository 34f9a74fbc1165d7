"""Voice-assistant activations, after Dubois et al., "When Speakers Are All Ears" (PETS 2020).

Per voice assistant, the bytes of data packets it sends to TCP/443 and UDP/443 are summed in 1-s bins
of capture time. A second above the device's threshold starts an activation; further seconds above it
within ``window_s`` (20 s) of the last one belong to the same activation, and the seconds between count
in its bytes. The activation is reported once ``window_s`` has passed without another loud second.

Pure TCP ACKs are left out: a download (a firmware image, a music stream) makes the device send a
stream of ACKs that is not speech. A second is closed when capture time (the newest packet of any
device) has moved past it, so a quiet speaker's activation still ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gateway.aggregators.detectors.events import NS, Event, EventType, human_bytes, join_hosts
from gateway.aggregators.detectors.inputs import FlowKey, HostsOf, SentPackets, Subject
from gateway.aggregators.grouping import group_rows, key_hash

WINDOW_S = 20  # Dubois et al.: loud seconds this close belong to one activation
# Voice assistants followed at once; a lab has a handful, and state is a few numbers each.
MAX_SPEAKERS = 1024
# Flows remembered per activation to name its destinations; a speaker uploads on one or two.
MAX_FLOWS = 16
# An upload that never stops (a video call from a smart display) is cut into activations this long,
# so it is reported while it lasts and its state stays bounded.
MAX_ACTIVATION_S = 600


@dataclass(slots=True)
class _Open:
    start_ns: int
    end_ns: int
    last_loud_s: int
    bytes: int
    pending: int = 0  # bytes of quiet seconds since the last loud one (counted if another comes)
    flows: dict[FlowKey, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Speaker:
    subject: Subject
    second: int = -1  # the open 1-s bin
    bytes: int = 0
    first_ns: int = 0
    last_ns: int = 0
    flows: dict[FlowKey, int] = field(default_factory=dict)
    activation: _Open | None = None


class ActivationDetector:
    def __init__(self, hosts_of: HostsOf, window_s: int = WINDOW_S) -> None:
        self.hosts_of = hosts_of
        self.window_s = window_s
        self.speakers: dict[str, _Speaker] = {}
        self.untracked = 0  # voice assistants beyond MAX_SPEAKERS, counted and ignored

    def active(self) -> set[str]:
        """Devices in the middle of an activation."""
        return {d for d, s in self.speakers.items() if s.activation is not None}

    def observe(self, sent: SentPackets | None, now_ns: int) -> list[Event]:
        """Add a batch's packets (any device; only voice assistants' uploads count); ``now_ns`` is the
        newest capture time seen, which closes the seconds before it."""
        events: list[Event] = []
        if sent is not None and len(sent):
            watched = np.array([s.threshold_bps is not None for s in sent.subjects], dtype=np.bool_)
            mask = sent.uploads_443() & watched[sent.device]
            if mask.any():
                self._add(sent.select(mask), events)
        now_s = now_ns // NS
        for speaker in self.speakers.values():
            if speaker.second >= 0 and speaker.second < now_s:
                self._close_second(speaker, events)
            self._expire(speaker, now_s, events)
        return events

    def finish(self) -> list[Event]:
        events: list[Event] = []
        for speaker in self.speakers.values():
            if speaker.second >= 0:
                self._close_second(speaker, events)
            self._report(speaker, events)
        return events

    def _add(self, up: SentPackets, events: list[Event]) -> None:
        """Sum the uploads per (device, second, flow), then feed each device's seconds in order."""
        sec = up.ts_ns // NS
        flow = key_hash([up.kind, up.dhi, up.dlo, up.rhi, up.rlo, up.proto, up.lport, up.rport])
        first, inverse = group_rows([up.device, sec, flow])
        n = len(first)
        sums = np.bincount(inverse, weights=up.nbytes, minlength=n).astype(np.int64)
        t_min = np.full(n, np.iinfo(np.int64).max, np.int64)
        t_max = np.zeros(n, np.int64)
        np.minimum.at(t_min, inverse, up.ts_ns)
        np.maximum.at(t_max, inverse, up.ts_ns)
        for g in np.lexsort((up.device[first], sec[first])).tolist():
            i = int(first[g])
            speaker = self._speaker(up.subjects[int(up.device[i])])
            if speaker is None:
                continue
            s = int(sec[i])
            if s > speaker.second:
                if speaker.second >= 0:
                    self._close_second(speaker, events)
                speaker.second, speaker.first_ns = s, int(t_min[g])
            else:  # the open second (or a late packet, which joins it)
                speaker.first_ns = min(speaker.first_ns, int(t_min[g]))
            speaker.bytes += int(sums[g])
            speaker.last_ns = max(speaker.last_ns, int(t_max[g]))
            _add_flow(speaker.flows, up.flow(i), int(sums[g]))

    def _speaker(self, subject: Subject) -> _Speaker | None:
        speaker = self.speakers.get(subject.device)
        if speaker is None:
            if len(self.speakers) >= MAX_SPEAKERS:
                self.untracked += 1
                return None
            speaker = self.speakers[subject.device] = _Speaker(subject)
        else:
            speaker.subject = subject  # its name or threshold may have changed
        return speaker

    def _close_second(self, speaker: _Speaker, events: list[Event]) -> None:
        s, nbytes, flows = speaker.second, speaker.bytes, speaker.flows
        speaker.second, speaker.bytes, speaker.flows = -1, 0, {}
        threshold = speaker.subject.threshold_bps
        act = speaker.activation
        if act is not None and s - act.last_loud_s > self.window_s:
            self._report(speaker, events)
            act = None
        loud = threshold is not None and nbytes > threshold
        if act is None:
            if loud:
                speaker.activation = _Open(speaker.first_ns, speaker.last_ns, s, nbytes, flows=flows)
            return
        for key, value in flows.items():
            _add_flow(act.flows, key, value)
        if not loud:
            act.pending += nbytes
            return
        act.bytes += act.pending + nbytes
        act.pending = 0
        act.last_loud_s, act.end_ns = s, speaker.last_ns
        if (act.end_ns - act.start_ns) // NS >= MAX_ACTIVATION_S:
            self._report(speaker, events)

    def _expire(self, speaker: _Speaker, now_s: int, events: list[Event]) -> None:
        act = speaker.activation
        if act is not None and now_s - act.last_loud_s > self.window_s:
            self._report(speaker, events)

    def _report(self, speaker: _Speaker, events: list[Event]) -> None:
        """End the speaker's activation, if any, as an event."""
        act, speaker.activation = speaker.activation, None
        if act is not None:
            events.append(self._event(speaker.subject, act))

    def _event(self, subject: Subject, act: _Open) -> Event:
        top = sorted(act.flows.items(), key=lambda kv: -kv[1])[:3]
        hosts = list(dict.fromkeys(self.hosts_of([flow for flow, _ in top])))
        duration = round((act.end_ns - act.start_ns) / NS, 1)
        text = f"{subject.label}: voice activation, {duration:g} s, {human_bytes(act.bytes)} uploaded" + (
            f" to {', '.join(hosts)}" if hosts else ""
        )
        return Event(
            subject.device,
            EventType.ACTIVATION,
            act.start_ns,
            text,
            bytes=act.bytes,
            host=join_hosts(hosts),
            duration_s=duration,
            device_name=subject.name,
        )


def _add_flow(flows: dict[FlowKey, int], key: FlowKey, nbytes: int) -> None:
    if key in flows:
        flows[key] += nbytes
    elif len(flows) < MAX_FLOWS:
        flows[key] = nbytes
