"""Real services for the suite: a private InfluxDB and Mosquitto on loopback, stopped by their pid."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _shared_folder() -> Path:
    """The shared data (real captures, reference data, Grafana's schemas): ``MOUCHARD_SHARED``, else
    ``shared/`` beside this checkout, else beside the local checkout this one was cloned from (a
    throwaway clone in a temporary folder still finds it)."""
    if os.environ.get("MOUCHARD_SHARED"):
        return Path(os.environ["MOUCHARD_SHARED"])
    beside = ROOT.parent / "shared"
    if beside.is_dir():
        return beside
    origin = subprocess.run(
        ["git", "-C", str(ROOT), "config", "--get", "remote.origin.url"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    origin = origin.removeprefix("file://")
    if origin.startswith("/"):
        cloned_from = Path(origin).resolve()
        candidate = (cloned_from.parent if cloned_from.name == ".git" else cloned_from).parent / "shared"
        if candidate.is_dir():
            return candidate
    return beside


SHARED = _shared_folder()
CAPTURES = SHARED / "captures"
SCRIPTS = ROOT / "scripts"


def free_port(span: int = 1) -> int:
    """A loopback port whose next ``span - 1`` ports are free too."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + span >= 65535:
            continue
        try:
            for extra in range(1, span):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + extra))
        except OSError:
            continue
        return port
    raise RuntimeError("no free loopback port")


@dataclass(frozen=True)
class Service:
    url: str
    port: int
    folder: Path


def _start(script: str, folder: Path, port: int) -> None:
    done = subprocess.run(
        [str(SCRIPTS / script), "start", str(folder), str(port)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{script} could not start: {done.stderr.strip()} (run `make deps` to install it)")


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Debian's InfluxDB 1.x, private to this test session."""
    folder = tmp_path_factory.mktemp("influxdb")
    port = free_port(2)
    _start("influxd-local", folder, port)
    yield Service(f"http://127.0.0.1:{port}", port, folder)
    subprocess.run([str(SCRIPTS / "influxd-local"), "stop", str(folder)], check=False)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Debian's Mosquitto, private to this test session."""
    folder = tmp_path_factory.mktemp("mosquitto")
    port = free_port()
    _start("mosquitto-local", folder, port)
    yield Service(f"mqtt://127.0.0.1:{port}", port, folder)
    subprocess.run([str(SCRIPTS / "mosquitto-local"), "stop", str(folder)], check=False)


@pytest.fixture(scope="session")
def captures() -> Path:
    if not CAPTURES.is_dir():
        pytest.skip(f"real captures not found at {CAPTURES} (they live beside the checkout in shared/)")
    return CAPTURES


def real_captures() -> list[Path]:
    if not CAPTURES.is_dir():
        return []
    return sorted(p for p in CAPTURES.glob("*/*") if p.suffix in (".pcap", ".pcapng"))


@pytest.fixture(scope="session")
def victoria_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Debian's VictoriaMetrics (it implements /api/v2/write), private to this test session."""
    folder = tmp_path_factory.mktemp("victoria-metrics")
    port = free_port()
    _start("victoria-metrics-local", folder, port)
    yield Service(f"http://127.0.0.1:{port}", port, folder)
    subprocess.run([str(SCRIPTS / "victoria-metrics-local"), "stop", str(folder)], check=False)
