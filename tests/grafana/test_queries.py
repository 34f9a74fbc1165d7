"""Every panel's InfluxQL, filled in as Grafana fills it, runs on the real InfluxDB 1.6.7 after a replay.

The project's lab capture (ten minutes of an evening at home, Paris) is replayed by `mouchard replay`
into the suite's InfluxDB; then each query of each dashboard goes to InfluxDB's /query, as Grafana's
InfluxDB data source would send it, and the panels that tell the story must show data.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.cli import main
from gateway.grafana.language import Lang
from gateway.grafana.render import dashboards
from gateway.samples.lab import LabSummary, labels_yaml, write_lab_capture
from tests.conftest import Service
from tests.grafana.grafana_rules import Dashboard, Query, interpolate, queries

pytestmark = pytest.mark.services

DB = "t_grafana"
ECHO = "68:db:f5:90:19:64"  # the lab's Kitchen Echo
BOARDS = dashboards(Lang.EN)  # the French dashboards send the very same queries (test_dashboards)
PANEL_WIDTH_PX = 800  # a half-width panel on a laptop screen: Grafana's max data points


@dataclass(frozen=True)
class Lab:
    service: Service
    summary: LabSummary

    def state(self, **variables: str) -> Dashboard:
        """The dashboard opened on the capture's ten minutes, with a margin either side."""
        start_ms = int(self.summary.start * 1000)
        end_ms = start_ms + self.summary.seconds * 1000
        return Dashboard(start_ms - 300_000, end_ms + 300_000, variables=variables)


def influxql(service: Service, text: str) -> dict[str, Any]:
    """One statement through /query as Grafana's data source sends it (POST, epoch ms)."""
    body = urllib.parse.urlencode({"db": DB, "q": text, "epoch": "ms"}).encode()
    request = urllib.request.Request(f"{service.url}/query", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.load(response)
    assert "error" not in answer, f"{answer['error']}\n{text}"
    (result,) = answer["results"]
    assert "error" not in result, f"{result['error']}\n{text}"
    return result


def rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row of every series, as {column: value} plus the series' tags."""
    return [
        {**series.get("tags", {}), **dict(zip(series["columns"], values, strict=True))}
        for series in result.get("series", [])
        for values in series["values"]
    ]


@pytest.fixture(scope="module")
def lab(influxdb: Service, tmp_path_factory: pytest.TempPathFactory) -> Lab:
    folder = tmp_path_factory.mktemp("grafana-lab")
    summary = write_lab_capture(folder / "lab.pcap", seconds=600, seed=1)
    config = folder / "mouchard.yaml"
    config.write_text(
        f"state_dir: {folder}/state\ninfluxdb:\n  url: {influxdb.url}\n  database: {DB}\n"
        + labels_yaml(summary)
    )
    assert main(["replay", str(summary.path), "--config", str(config), "--quiet"]) == 0
    return Lab(influxdb, summary)


def run_all(lab: Lab, name: str, state: Dashboard) -> dict[str, dict[str, Any]]:
    """Every query of one dashboard, by where it is used; each must run without error."""
    return {
        q.where: influxql(lab.service, interpolate(q, state)) for q in queries(BOARDS[name], PANEL_WIDTH_PX)
    }


def panel_rows(results: dict[str, dict[str, Any]], title: str) -> list[dict[str, Any]]:
    found = [rows(r) for where, r in results.items() if where.startswith(f"panel {title!r}")]
    assert found, f"no panel {title!r}"
    return [row for part in found for row in part]


def variable_values(lab: Lab, name: str, variable: str, state: Dashboard) -> list[str]:
    (query,) = [q for q in queries(BOARDS[name]) if q.where == f"variable {variable}"]
    return [row["value"] for row in rows(influxql(lab.service, interpolate(query, state)))]


def test_overview(lab: Lab) -> None:
    results = run_all(lab, "overview", lab.state(country="FR"))
    for title in (
        "Sent to the Internet",
        "Companies reached",
        "Share with third parties",
        "Share leaving ${country}",
        "Objects",
        "Bytes by company",
        "Bytes by server country",
        "Top destinations",
        "Upload to the Internet, by object",
    ):
        assert panel_rows(results, title), f"{title} shows nothing"
    devices = {row["device"]: row for row in panel_rows(results, "Objects") if "sent" in row}
    assert set(devices) == {d.mac for d in lab.summary.devices}
    assert devices[ECHO]["device_name"] == "Kitchen Echo"
    assert devices[ECHO]["kind"] == "voice_assistant"
    for device in lab.summary.devices:
        assert 0 < devices[device.mac]["sent"] <= device.bytes_sent  # Internet only: no LAN traffic
    (sent,) = panel_rows(results, "Sent to the Internet")
    assert sent["sum"] == sum(row["sent"] for row in devices.values())
    companies = {row["org"] for row in panel_rows(results, "Bytes by company")}
    assert {"Amazon", "Google", "Netflix", "Samsung"} <= companies


def test_shares_agree_with_plain_sums(lab: Lab) -> None:
    """The min/max trick of `bytes_share` gives what two plain sums give."""
    state = lab.state(country="FR")
    results = run_all(lab, "overview", state)
    plain = Query("check", "SELECT sum(\"bytes_out\") + sum(\"bytes_in\") AS \"b\" FROM \"traffic\" "
                  "WHERE \"party\" != 'local' AND $timeFilter GROUP BY \"party\", \"device\"")  # fmt: skip
    by_party: dict[tuple[str, str], float] = {
        (row["device"], row["party"]): row["b"]
        for row in rows(influxql(lab.service, interpolate(plain, state)))
    }
    total = sum(by_party.values())
    third = sum(b for (_, party), b in by_party.items() if party == "third")
    (share,) = panel_rows(results, "Share with third parties")
    assert share["share"] == pytest.approx(100 * third / total)
    per_device = {row["device"]: row["third"] for row in panel_rows(results, "Objects") if "third" in row}
    for device in {d for d, _ in by_party}:
        mine = sum(b for (d, _), b in by_party.items() if d == device)
        theirs = by_party.get((device, "third"), 0)
        assert per_device[device] == round(100 * theirs / mine)


def test_device_detail(lab: Lab) -> None:
    state = lab.state(timezone="Europe/Paris")
    assert ECHO in variable_values(lab, "device", "device", state)
    names = variable_values(lab, "device", "device_name", lab.state(device=ECHO))
    assert names == ["Kitchen Echo"]
    state = lab.state(device=ECHO, device_name="Kitchen Echo", timezone="Europe/Paris")
    results = run_all(lab, "device", state)
    for title in (
        "Sent to the Internet",
        "Destinations",
        "Upload and download of ${device_name}",
        "Destinations of ${device_name}",
        "When does it phone home? Upload by hour of day",
        "DNS queries",
        "Events",
    ):
        assert panel_rows(results, title), f"{title} shows nothing"
    hosts = {row["host"] for row in panel_rows(results, "Destinations of ${device_name}")}
    assert "avs-alexa-4-na.amazon.com" in hosts
    assert {row["type"] for row in panel_rows(results, "Events")} >= {"new_device"}
    annotations = [r for where, r in results.items() if where.startswith("annotation")]
    assert any(rows(r) for r in annotations)


def test_hour_of_day_heatmap_puts_the_upload_in_its_hour(lab: Lab) -> None:
    state = lab.state(device=ECHO, device_name="Kitchen Echo", timezone="Europe/Paris")
    results = run_all(lab, "device", state)
    heatmap = [w for w in results if w.startswith("panel 'When does it phone home?")]
    assert len(heatmap) == 24
    paris = ZoneInfo("Europe/Paris")
    start = datetime.fromtimestamp(lab.summary.start, paris)
    end = datetime.fromtimestamp(lab.summary.start + lab.summary.seconds, paris)
    cells: dict[tuple[str, int], float] = {}
    for hour, where in enumerate(heatmap):
        for row in rows(results[where]):
            day = datetime.fromtimestamp(row["time"] / 1000, paris)
            assert (day.hour, day.minute) == (0, 0), "cells are stamped at the lab's midnight"
            cells[(day.date().isoformat(), hour)] = row["first"]
    uploaded = {cell: value for cell, value in cells.items() if value}
    assert set(uploaded) <= {(start.date().isoformat(), h) for h in range(start.hour, end.hour + 1)}
    (sent,) = panel_rows(results, "Sent to the Internet")
    assert sum(uploaded.values()) == sent["sum"]


def test_phone_home(lab: Lab) -> None:
    results = run_all(lab, "phone-home", lab.state())
    speakers = {
        row["device_name"]
        for row in panel_rows(results, "Upload of the voice assistants")
        if "device_name" in row
    }
    assert speakers == {"Kitchen Echo", "Kitchen"}  # the Echo Dot and the Nest Mini


def test_gateway_health(lab: Lab) -> None:
    """The sink's self-metrics: the range runs from the capture to now, whichever clock stamps them."""
    now_ms = int(time.time() * 1000)
    start_ms = int(lab.summary.start * 1000)
    results = run_all(lab, "health", Dashboard(start_ms - 300_000, now_ms + 60_000))
    (written,) = panel_rows(results, "Points written")
    assert written["last"] > 0
    assert panel_rows(results, "Points waiting on disk")


def test_an_empty_database_answers_without_error(influxdb: Service) -> None:
    """A fresh install: no measurement yet, every query still runs (and shows nothing)."""
    state = Dashboard(
        0, 3_600_000, variables={"device": ECHO, "device_name": "x", "timezone": "UTC", "country": "FR"}
    )
    empty = "t_grafana_empty"
    urllib.request.urlopen(
        urllib.request.Request(
            f"{influxdb.url}/query", data=urllib.parse.urlencode({"q": f"CREATE DATABASE {empty}"}).encode()
        ),
        timeout=10,
    ).close()
    for board in BOARDS.values():
        for query in queries(board, PANEL_WIDTH_PX):
            body = urllib.parse.urlencode(
                {"db": empty, "q": interpolate(query, state), "epoch": "ms"}
            ).encode()
            with urllib.request.urlopen(
                urllib.request.Request(f"{influxdb.url}/query", data=body), timeout=30
            ) as r:
                answer = json.load(r)
            assert all("error" not in result for result in answer["results"]), (query.where, answer)


def test_interpolation_matches_grafana() -> None:
    """The emulation itself, on values Grafana's code gives (gtime's steps, backend $timeFilter)."""
    from tests.grafana.grafana_rules import format_interval, interval_ms

    assert interval_ms(0, 600_000, 800, 10_000) == 10_000  # ten minutes: the 10 s floor
    assert interval_ms(0, 86_400_000, 800, 10_000) == 120_000  # a day on 800 px: 108 s -> 2m
    assert format_interval(120_000) == "2m"
    assert format_interval(500) == "500ms"
    query = Query(
        "q", 'SELECT x FROM y WHERE "device" =~ /^$device$/ AND $timeFilter GROUP BY time($__interval)'
    )
    text = interpolate(query, Dashboard(1_000, 601_000, variables={"device": "ip:10.0.0.1"}))
    assert text == (
        'SELECT x FROM y WHERE "device" =~ /^ip:10\\.0\\.0\\.1$/ AND time >= 1000ms and time <= 601000ms '
        "GROUP BY time(10s)"
    )
    escaped = interpolate(
        Query("a", "/^$device$/", for_annotation=True), Dashboard(0, 1, variables={"device": "ip:10.0.0.1"})
    )
    assert escaped == r"/^ip:10\.0\.0\.1$/"
