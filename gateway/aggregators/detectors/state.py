"""Each device's live state for MQTT: who it is, whether it is being activated, its upload of the last hour.

``upload_last_hour`` is the bytes the device sent to outside destinations in the bins of the last hour
of capture time; it is what Home Assistant's "upload, last hour" sensor shows.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from gateway.aggregators.detectors.inputs import DeviceRows, Subject
from gateway.aggregators.grouping import group_rows

HOUR_S = 3600
# Devices whose state is kept; a lab has tens. The least recently seen go first beyond this.
MAX_DEVICES = 4096


@dataclass(frozen=True, slots=True)
class DeviceState:
    """The retained MQTT state of one device."""

    device: str
    name: str
    kind: str
    vendor: str
    model: str
    ip: str
    activation: bool  # in the middle of a voice activation now
    upload_last_hour: int  # bytes sent outside in the last hour of capture time
    last_seen_s: int  # start of the last bin with traffic, epoch seconds


def state_json(state: DeviceState) -> str:
    doc = {
        "device": state.device,
        "name": state.name,
        "kind": state.kind,
        "vendor": state.vendor,
        "model": state.model,
        "ip": state.ip,
        "activation": state.activation,
        "upload_last_hour": state.upload_last_hour,
        "last_seen": state.last_seen_s,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


@dataclass(slots=True)
class _Device:
    subject: Subject
    # (bin start, bytes sent outside) of the last hour; at most one entry per bin, so at most
    # 3600 / interval_s entries.
    bins: deque[tuple[int, int]] = field(default_factory=deque)
    total: int = 0
    last_seen_s: int = 0
    active: bool = False
    published: DeviceState | None = None


class DeviceStates:
    def __init__(self) -> None:
        self.devices: dict[str, _Device] = {}

    def observe_rows(self, rows: DeviceRows) -> None:
        if not len(rows):
            return
        outside = ~np.array([d.local for d in rows.destinations], dtype=np.bool_)[rows.dest]
        first, inverse = group_rows([rows.device, rows.bin_s])
        sent = np.bincount(inverse, weights=np.where(outside, rows.bytes_out, 0), minlength=len(first))
        for g in np.argsort(rows.bin_s[first], kind="stable").tolist():
            i = int(first[g])
            dev = self._device(rows.subjects[int(rows.device[i])])
            b = int(rows.bin_s[i])
            dev.last_seen_s = max(dev.last_seen_s, b)
            if sent[g]:
                dev.bins.append((b, int(sent[g])))
                dev.total += int(sent[g])
        now = int(rows.bin_s.max())
        for dev in self.devices.values():
            while dev.bins and dev.bins[0][0] <= now - HOUR_S:
                dev.total -= dev.bins.popleft()[1]

    def set_active(self, active: set[str]) -> None:
        """The devices now in an activation (from the activation detector)."""
        for name, dev in self.devices.items():
            dev.active = name in active

    def changed(self) -> list[DeviceState]:
        """States that differ from the ones last returned (to publish, retained)."""
        out = []
        for dev in self.devices.values():
            s = dev.subject
            state = DeviceState(
                s.device, s.name, s.kind, s.vendor, s.model, s.ip, dev.active, dev.total, dev.last_seen_s
            )
            if state != dev.published:
                dev.published = state
                out.append(state)
        return out

    def _device(self, subject: Subject) -> _Device:
        dev = self.devices.pop(subject.device, None)
        if dev is None:
            dev = _Device(subject)
            if len(self.devices) >= MAX_DEVICES:
                del self.devices[next(iter(self.devices))]
        dev.subject = subject
        self.devices[subject.device] = dev  # most recently seen last
        return dev
