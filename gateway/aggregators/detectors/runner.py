"""All detectors behind two calls: one per packet batch, one per flush of traffic rows.

The Gateway builds one `Detectors` and calls ``observe_packets`` in ``process()`` (after the namer and
the device tracker have seen the batch), ``observe_rows`` where it writes a flush's traffic lines, and
``finish`` at the end; each returns the events to write (`event_lines`) and to publish over MQTT.
``states()`` gives the device states that changed since its last call.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import numpy.typing as npt

from gateway.aggregators.detectors.activation import ActivationDetector
from gateway.aggregators.detectors.events import Event, EventType
from gateway.aggregators.detectors.heartbeat import HeartbeatDetector
from gateway.aggregators.detectors.inputs import (
    DeviceRows,
    SubjectOf,
    flow_hosts,
    packet_hosts,
    sent_outside,
)
from gateway.aggregators.detectors.novelty import DEFAULT_LEARNING_S, NoveltyDetector
from gateway.aggregators.detectors.quiet_hours import QuietHoursDetector
from gateway.aggregators.detectors.state import DeviceState, DeviceStates
from gateway.config import DetectorsConfig
from gateway.enrichers.lan import Lan
from gateway.enrichers.names import NameTable
from gateway.parsers.headers import Headers
from gateway.sources.capfile import PacketBatch

NOVELTY_FILE = "novelty.json"


class Detectors:
    def __init__(
        self,
        cfg: DetectorsConfig,
        lan: Lan,
        names: NameTable,
        subject_of: SubjectOf,
        *,
        learning_s: int = DEFAULT_LEARNING_S,
        state_dir: Path | None = None,
    ) -> None:
        """``subject_of`` maps a device key (kind, hi, lo) to a `Subject`, or None for non-devices;
        ``state_dir`` keeps what novelty learned across restarts."""
        self.lan = lan
        self.subject_of = subject_of
        hosts_of = partial(flow_hosts, names)
        self.activation = ActivationDetector(hosts_of)
        self.heartbeat = HeartbeatDetector(partial(packet_hosts, names))
        self.quiet_hours = QuietHoursDetector(cfg.windows, cfg.zone)
        novelty_file = state_dir / NOVELTY_FILE if state_dir is not None else None
        self.novelty = NoveltyDetector(learning_s, novelty_file)
        self.device_states = DeviceStates()
        self.now_ns = 0

    def observe_packets(self, batch: PacketBatch, h: Headers, src_lan: npt.NDArray[np.bool_]) -> list[Event]:
        """Activations and heartbeats, from the packets devices sent outside in this batch."""
        if not len(batch):
            return []
        self.now_ns = max(self.now_ns, int(batch.ts_ns.max()))
        sent = sent_outside(batch, h, src_lan, self.lan, self.subject_of)
        events = self.activation.observe(sent, self.now_ns)
        # A whole activation can start and end within one batch (a replay's batches span minutes):
        # its device still shows as activated once.
        ended = {e.device for e in events if e.type == EventType.ACTIVATION}
        self.device_states.set_active(self.activation.active() | ended)
        return events + self.heartbeat.observe(sent)

    def advance(self, now_ns: int) -> list[Event]:
        """Let capture time pass without packets (a live gateway's idle second): ends activations."""
        self.now_ns = max(self.now_ns, now_ns)
        events = self.activation.observe(None, self.now_ns)
        self.device_states.set_active(self.activation.active())
        return events

    def observe_rows(self, rows: DeviceRows) -> list[Event]:
        """Quiet hours and novelty, from a flush's rows of devices."""
        self.device_states.observe_rows(rows)
        return self.quiet_hours.observe_rows(rows) + self.novelty.observe_rows(rows)

    def finish(self) -> list[Event]:
        events = self.activation.finish() + self.quiet_hours.finish() + self.novelty.finish()
        self.device_states.set_active(self.activation.active())
        return events

    def states(self) -> list[DeviceState]:
        return self.device_states.changed()
