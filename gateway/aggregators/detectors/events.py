"""The events detectors emit, and their two forms: a line of the ``event`` measurement and MQTT JSON.

DESIGN.md fixes the schema: tags ``device`` and ``type``; fields ``text``, ``bytes`` (integer),
``host``, ``duration_s`` (float) and, for heartbeats only, ``period_s`` (float). A field keeps the
type of its first write in InfluxDB, so these types must never change.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from gateway.sinks.lineproto import field_string, tag_set

NS = 1_000_000_000


class EventType(StrEnum):
    """The ``type`` tag of the ``event`` measurement, and the last level of its MQTT topic."""

    NEW_DEVICE = "new_device"
    NEW_DESTINATION = "new_destination"
    NEW_COUNTRY = "new_country"
    ACTIVATION = "activation"
    QUIET_HOURS = "quiet_hours"
    HEARTBEAT = "heartbeat"


@dataclass(frozen=True, slots=True)
class Event:
    """Something a device did that a lab should see: an annotation in Grafana, a message over MQTT."""

    device: str  # the device tag: a MAC, or ip:<address>
    type: EventType
    ts_ns: int  # when it happened (an activation's or a window's start), epoch nanoseconds
    text: str  # one human sentence
    bytes: int = 0
    host: str = ""  # destination(s), comma-separated when several
    duration_s: float = 0.0
    period_s: float | None = None  # heartbeats only
    device_name: str = ""  # the name people know it by; in the JSON and the text, not a tag


def event_line(event: Event) -> str:
    """The ``event`` line of one event, with a nanosecond timestamp."""
    tags = tag_set({"device": event.device, "type": str(event.type)})
    fields = [
        f"text={field_string(event.text)}",
        f"bytes={int(event.bytes)}i",
        f"host={field_string(event.host)}",
        f"duration_s={_float(event.duration_s)}",
    ]
    if event.period_s is not None:
        fields.append(f"period_s={_float(event.period_s)}")
    return f"event{tags} {','.join(fields)} {event.ts_ns}"


def event_lines(events: Iterable[Event]) -> list[str]:
    """Lines of several events; two events of one device, type and time stay two points."""
    return [event_line(e) for e in distinct_times(events)]


def distinct_times(events: Iterable[Event]) -> list[Event]:
    """The events, each (device, type, time) made unique by moving later ones on by 1 ns.

    InfluxDB keeps one point per series and timestamp: two new destinations found in the same bin
    would otherwise overwrite each other.
    """
    taken: set[tuple[str, str, int]] = set()
    out = []
    for event in events:
        ts = event.ts_ns
        while (event.device, event.type, ts) in taken:
            ts += 1
        taken.add((event.device, event.type, ts))
        out.append(event if ts == event.ts_ns else replace(event, ts_ns=ts))
    return out


def event_json(event: Event) -> str:
    """The MQTT payload of an event: a JSON object with the same fields, and the time in ISO 8601."""
    when = datetime.fromtimestamp(event.ts_ns / NS, UTC).isoformat(timespec="milliseconds")
    doc = {
        "device": event.device,
        "device_name": event.device_name,
        "type": str(event.type),
        "time": when.replace("+00:00", "Z"),
        "ts_ns": event.ts_ns,
        "text": event.text,
        "bytes": event.bytes,
        "host": event.host,
        "duration_s": event.duration_s,
        "period_s": event.period_s,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def _float(value: float) -> str:
    """A line-protocol float that always reads back as a float (``4.0``, not ``4``)."""
    return repr(round(float(value), 3))


def human_bytes(n: int) -> str:
    """``812 B``, ``12.3 kB``, ``4.1 MB``: decimal units, as network rates are quoted."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # not reached


def human_period(seconds: float) -> str:
    """``30 s``, ``2 min``, ``1 h 30 min``."""
    s = round(seconds)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{round(s / 60)} min"
    hours, minutes = divmod(round(s / 60), 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def join_hosts(hosts: Sequence[str], limit: int = 5) -> str:
    """At most ``limit`` names, comma-separated (a bounded ``host`` field)."""
    return ",".join(hosts[:limit])
