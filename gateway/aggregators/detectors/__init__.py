"""Detectors: the moments when an object phones home, as events (see docs/detectors.md).

Members, listed explicitly: each reads per-batch packets or per-bin rows and returns `Event` records.
`Detectors` (runner.py) runs them all for the Gateway.
"""

from __future__ import annotations

from gateway.aggregators.detectors.activation import ActivationDetector
from gateway.aggregators.detectors.events import Event, EventType, event_json, event_line, event_lines
from gateway.aggregators.detectors.heartbeat import HeartbeatDetector
from gateway.aggregators.detectors.inputs import DeviceRows, SentPackets, Subject
from gateway.aggregators.detectors.novelty import NoveltyDetector
from gateway.aggregators.detectors.quiet_hours import QuietHoursDetector
from gateway.aggregators.detectors.runner import Detectors
from gateway.aggregators.detectors.state import DeviceState, state_json
from gateway.aggregators.detectors.thresholds import activation_threshold, subject_of_identity

DETECTORS: dict[str, type] = {
    "activation": ActivationDetector,  # packets: voice-assistant upload bursts
    "heartbeat": HeartbeatDetector,  # packets: periodic contacts
    "quiet_hours": QuietHoursDetector,  # rows: traffic in configured windows
    "novelty": NoveltyDetector,  # rows: new destinations and countries
}

__all__ = [
    "DETECTORS",
    "Detectors",
    "DeviceRows",
    "DeviceState",
    "Event",
    "EventType",
    "SentPackets",
    "Subject",
    "activation_threshold",
    "event_json",
    "event_line",
    "event_lines",
    "state_json",
    "subject_of_identity",
]
