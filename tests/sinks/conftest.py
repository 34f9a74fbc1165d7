"""Servers and data for the sink tests: private, restartable InfluxDB and VictoriaMetrics; a lab in parts.

The session's shared servers (tests/conftest.py) are never stopped here: tests that stop a server
mid-way get one of their own.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import Config, load_config
from gateway.samples.lab import LAB_START_NS, NS, write_lab_capture
from gateway.sinks.batch import Backoff
from gateway.sinks.reliable import Timing
from tests.conftest import SCRIPTS, free_port
from tests.oracle import mac_totals, tshark_available

# Short waits so that the failure paths run in a fraction of a second (the defaults suit a gateway).
FAST = Timing(
    backoff=Backoff(first_s=0.02, factor=2.0, max_s=0.2),
    retry_budget_s=0.3,
    close_budget_s=1.0,
    metrics_interval_s=3600.0,
)
LAB_PART_S = 120  # four parts make eight minutes of the lab: a few hundred points
LAB_PARTS = 4


@dataclass
class Server:
    """A private server started by a script of scripts/, that a test may stop and start again."""

    script: str
    folder: Path
    port: int
    args: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, env: dict[str, str] | None = None) -> None:
        done = subprocess.run(
            [str(SCRIPTS / self.script), "start", str(self.folder), str(self.port), *self.args],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        if done.returncode != 0:
            pytest.fail(f"{self.script} could not start: {done.stderr.strip()} (run `make deps`)")

    def stop(self) -> None:
        subprocess.run([str(SCRIPTS / self.script), "stop", str(self.folder)], check=False)


def _server(
    tmp_path_factory: pytest.TempPathFactory, script: str, *args: str, env: dict[str, str] | None = None
) -> Iterator[Server]:
    server = Server(script, tmp_path_factory.mktemp(script), free_port(2), args)
    server.start(env)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def own_influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An InfluxDB 1.x of this module's own, which its tests stop and start."""
    yield from _server(tmp_path_factory, "influxd-local")


@pytest.fixture(scope="module")
def auth_influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An InfluxDB 1.x with authentication on, and an admin user ``admin`` / ``adminpw``."""
    env = {**os.environ, "INFLUXDB_HTTP_AUTH_ENABLED": "true"}
    for server in _server(tmp_path_factory, "influxd-local", env=env):
        influx_query(server.url, "CREATE USER admin WITH PASSWORD 'adminpw' WITH ALL PRIVILEGES")
        yield server


@pytest.fixture(scope="module")
def own_victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A VictoriaMetrics of this module's own, which its tests stop and start."""
    yield from _server(tmp_path_factory, "victoria-metrics-local", "-dedup.minScrapeInterval=1ms")


@pytest.fixture(scope="session")
def lab_parts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The generated lab capture in consecutive parts, so a replay can be interrupted between them."""
    folder = tmp_path_factory.mktemp("lab")
    parts = []
    for i in range(LAB_PARTS):
        path = folder / f"lab-{i}.pcap"
        write_lab_capture(path, seconds=LAB_PART_S, start_ns=LAB_START_NS + i * LAB_PART_S * NS)
        parts.append(path)
    return parts


def oracle_totals(parts: list[Path]) -> dict[str, int] | None:
    """tshark's bytes per MAC over all parts (None when tshark is not installed)."""
    return _oracle_totals(tuple(parts)) if tshark_available() else None


@functools.cache
def _oracle_totals(parts: tuple[Path, ...]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in parts:
        for mac, n in mac_totals(part).items():
            total[mac] = total.get(mac, 0) + n
    return total


def gateway_totals(gateway: Gateway) -> dict[str, int]:
    return {dev: t.bytes_out + t.bytes_in for dev, t in gateway.totals.items()}


def assert_totals(found: dict[str, int], gateway: Gateway, parts: list[Path]) -> None:
    """What reached the server is what the gateway counted, and tshark agrees device by device."""
    assert found == gateway_totals(gateway)
    oracle = oracle_totals(parts)
    if oracle is not None:
        for device, n in found.items():
            assert n == oracle[device], f"{device}: server has {n} bytes, tshark {oracle[device]}"


def write_config(
    folder: Path, url: str, db: str, extra: str = "", api: str = "v1", retention_days: int = 0
) -> Path:
    """A configuration for the sink tests; ``retention_days: 0`` by default since the lab capture's
    points are from 2024 and a shorter default policy would refuse them."""
    path = folder / "mouchard.yaml"
    path.write_text(
        f"state_dir: {folder}/state\n"
        f"influxdb:\n  url: {url}\n  api: {api}\n  database: {db}\n  batch_size: 50\n"
        f"  flush_interval_s: 0.05\n  timeout_s: 2\n  retention_days: {retention_days}\n{extra}",
        encoding="utf-8",
    )
    return path


def config(
    folder: Path, url: str, db: str, extra: str = "", api: str = "v1", retention_days: int = 0
) -> Config:
    return load_config(write_config(folder, url, db, extra, api, retention_days), env={})


def influx_query(
    url: str, q: str, db: str = "", auth: tuple[str, str] | None = None
) -> list[dict[str, object]]:
    params = {"q": q, **({"db": db} if db else {})}
    req = urllib.request.Request(f"{url}/query", data=urllib.parse.urlencode(params).encode(), method="POST")
    if auth is not None:
        req.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    with urllib.request.urlopen(req, timeout=10) as resp:
        results: list[dict[str, object]] = json.load(resp)["results"]
    return results


def influx_write(url: str, db: str, body: str) -> None:
    req = urllib.request.Request(f"{url}/write?db={db}", data=body.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10):
        pass


def influx_device_totals(url: str, db: str) -> dict[str, int]:
    res = influx_query(url, "SELECT sum(bytes_out), sum(bytes_in) FROM traffic GROUP BY device", db)
    out = {}
    for series in res[0].get("series", []):  # type: ignore[attr-defined]
        values = series["values"][0]
        out[series["tags"]["device"]] = int(values[1]) + int(values[2])
    return out


def influx_count(url: str, db: str, q: str) -> int:
    series = influx_query(url, q, db)[0].get("series", [])
    return int(series[0]["values"][0][1]) if series else 0  # type: ignore[index]


@dataclass(frozen=True, slots=True)
class VmSeries:
    """One series as VictoriaMetrics exports it: ``<measurement>_<field>`` and the tags as labels."""

    labels: dict[str, str]
    values: list[float]


def vm_export(url: str, match: str) -> list[VmSeries]:
    """Every sample of the series ``match`` selects (VictoriaMetrics flushed first)."""
    urllib.request.urlopen(urllib.request.Request(f"{url}/internal/force_flush"), timeout=10).close()
    query = urllib.parse.urlencode({"match[]": match, "start": "0"})
    with urllib.request.urlopen(f"{url}/api/v1/export?{query}", timeout=10) as resp:
        rows = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    return [VmSeries(row["metric"], [float(v) for v in row["values"]]) for row in rows]


def vm_device_totals(url: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for series in vm_export(url, '{__name__=~"traffic_bytes_(out|in)"}'):
        device = series.labels["device"]
        out[device] = out.get(device, 0) + int(sum(series.values))
    return out


def wait_until(condition: Callable[[], bool], timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
