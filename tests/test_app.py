"""The Gateway's promise to InfluxDB: one point per series and time, so nothing is overwritten."""

from __future__ import annotations

from collections import Counter

import pytest

from gateway.app import Gateway
from gateway.config import default_config
from gateway.enrichers.destinations import DestinationTagger
from gateway.replay import replay_files
from gateway.sinks.lineproto import MemorySink
from tests.conftest import CAPTURES
from tests.oracle import mac_totals

IPHONE = CAPTURES / "ndpi" / "iphone.pcap"
pytestmark = pytest.mark.skipif(not CAPTURES.is_dir(), reason="shared/captures absent")


class OneName(DestinationTagger):
    """Every outside server gets one name, as when a CDN answers from many addresses."""

    def tags(
        self, hi: int, lo: int, local: bool, name_id: int, source: int, maker: str | None
    ) -> dict[str, str]:
        if local:
            return super().tags(hi, lo, local, name_id, source, maker)
        return {"host": "cdn.example", "name_source": "dns"}


def series_and_bytes(lines: list[str]) -> tuple[Counter[str], dict[str, int]]:
    keys: Counter[str] = Counter()
    per_device: dict[str, int] = {}
    for line in lines:
        if not line.startswith("traffic,"):
            continue
        tags, fields, ts = line.rsplit(" ", 2)
        keys[tags + " " + ts] += 1
        device = tags.split(",device=")[1].split(",")[0]
        values = dict(kv.split("=") for kv in fields.split(","))
        per_device[device] = (
            per_device.get(device, 0) + int(values["bytes_out"][:-1]) + int(values["bytes_in"][:-1])
        )
    return keys, per_device


def test_servers_sharing_a_name_become_one_point_with_all_bytes() -> None:
    sink = MemorySink()
    gw = Gateway(default_config(), sink)
    gw.destinations = OneName(gw.namer.table, gw.orgs)
    replay_files(gw, [IPHONE])
    keys, per_device = series_and_bytes(sink.lines)
    assert max(keys.values()) == 1, "two points with the same series and time: InfluxDB would keep one"
    oracle = mac_totals(IPHONE)
    assert per_device == {d: oracle[d] for d in per_device}
    assert any("host=cdn.example" in line for line in sink.lines)
