"""Per-device totals written to a real InfluxDB equal tshark's count for that device."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from gateway.cli import main
from tests.conftest import Service, real_captures
from tests.oracle import ip_totals, link_type, mac_totals, tshark_available

pytestmark = pytest.mark.skipif(not tshark_available(), reason="tshark is the oracle: apt-get install tshark")


def influx_query(svc: Service, db: str, q: str) -> list[dict[str, object]]:
    url = f"{svc.url}/query?" + urllib.parse.urlencode({"db": db, "q": q})
    with urllib.request.urlopen(url, timeout=10) as resp:
        series: list[dict[str, object]] = json.load(resp)["results"][0].get("series", [])
    return series


def device_totals_in_influx(svc: Service, db: str) -> dict[str, int]:
    rows = influx_query(svc, db, "SELECT sum(bytes_out), sum(bytes_in) FROM traffic GROUP BY device")
    out = {}
    for s in rows:
        tags = s["tags"]
        values = s["values"]
        assert isinstance(tags, dict)
        assert isinstance(values, list)
        out[tags["device"]] = int(values[0][1]) + int(values[0][2])
    return out


def oracle_for(capture: Path) -> dict[str, int]:
    if link_type(capture) == "ether":
        return mac_totals(capture)
    return {f"ip:{addr}": b for addr, b in ip_totals(capture).items()}


def write_config(tmp: Path, svc: Service, db: str) -> Path:
    cfg = tmp / "mouchard.yaml"
    cfg.write_text(f"state_dir: {tmp}/state\ninfluxdb:\n  url: {svc.url}\n  database: {db}\n")
    return cfg


@pytest.mark.parametrize("capture", real_captures(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_device_totals_equal_tshark(capture: Path, influxdb: Service, tmp_path: Path) -> None:
    db = "t_" + re.sub(r"\W", "_", capture.stem.lower())[:40]
    cfg = write_config(tmp_path, influxdb, db)
    assert main(["replay", str(capture), "--config", str(cfg), "--quiet"]) == 0
    ours = device_totals_in_influx(influxdb, db)
    oracle = oracle_for(capture)
    for device, total in ours.items():
        assert device in oracle, f"{device} is not an endpoint tshark knows"
        assert total == oracle[device], f"{device}: InfluxDB has {total} bytes, tshark {oracle[device]}"
    # Every endpoint that sent IP frames from the LAN must be found: the largest LAN sender at least.
    if ours:
        assert max(oracle.values()) >= max(ours.values())


def test_captures_present() -> None:
    """The corpus is beside the checkout in CI; an outside clone skips the oracle tests instead."""
    caps = real_captures()
    if not caps:
        pytest.skip("shared/captures absent")
    assert len(caps) >= 30
