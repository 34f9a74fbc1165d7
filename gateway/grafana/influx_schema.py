"""The InfluxDB schema of DESIGN.md, as data: the only measurement, tag and field names dashboards read.

The dashboards' tests hold every InfluxQL query to these names, so a dashboard cannot read a name the
gateway does not write (or stops writing). Change a name here only together with DESIGN.md and every
writer and reader.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Measurement:
    """One measurement of the contract: its tags (indexed) and fields (values)."""

    name: str
    tags: frozenset[str]
    fields: frozenset[str]

    @property
    def names(self) -> frozenset[str]:
        """Every tag and field name of the measurement."""
        return self.tags | self.fields


TRAFFIC = Measurement(
    "traffic",
    tags=frozenset(
        {
            "device",
            "device_name",
            "kind",
            "vendor",
            "host",
            "domain",
            "org",
            "org_country",
            "country",
            "party",
            "name_source",
        }
    ),
    fields=frozenset({"bytes_out", "bytes_in", "packets_out", "packets_in", "flows"}),
)
DNS = Measurement("dns", tags=frozenset({"device", "host", "domain", "org"}), fields=frozenset({"queries"}))
DEVICE = Measurement(
    "device",
    tags=frozenset({"device"}),
    fields=frozenset({"name", "kind", "vendor", "model", "ip", "services", "first_seen", "last_seen"}),
)
EVENT = Measurement(
    "event",
    tags=frozenset({"device", "type"}),
    fields=frozenset({"text", "bytes", "host", "duration_s", "period_s"}),
)
SELF = Measurement(
    "mouchard",
    tags=frozenset({"gateway"}),
    fields=frozenset(
        {
            "points_written",
            "points_retried",
            "points_spooled",
            "points_dropped",
            "spool_depth",
            "packets",
            "kernel_drops",
        }
    ),
)

MEASUREMENTS: dict[str, Measurement] = {m.name: m for m in (TRAFFIC, DNS, DEVICE, EVENT, SELF)}

# Values of the `event` measurement's `type` tag, and of the `traffic` measurement's `party` tag.
EVENT_TYPES = ("new_device", "new_destination", "new_country", "activation", "quiet_hours", "heartbeat")
PARTIES = ("first", "support", "third", "local")
