"""`mouchard run` as a service: SIGHUP reloads, an interface that is down or goes away, SIGTERM.

The lab of tests/test_run_lab.py (a device, the gateway routing, a cloud; only addresses inside
the namespaces), with an InfluxDB inside the gateway's namespace. The device has a fixed MAC (of a
prefix no profile and no registry entry names) and sends a few UDP datagrams to one cloud address
per phase of a test, so the `host` tag of the points tells the phases apart and their other tags
say what the gateway knew of the device when it wrote them.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import ROOT, SCRIPTS
from tests.netns import Namespace, NetnsLab, is_root
from tests.test_run_lab import INFLUX_PORT, LAN_DEV, LAN_GW, _build, _influx, _quiet, _wait_for

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not is_root(), reason="network namespaces need root (CI is root)"),
]

DEV_MAC = "00:1b:c5:4d:43:02"  # no vendor in the registry, no profile: the profile test adds one
PHASES = [f"198.51.100.{n}" for n in range(11, 17)]  # cloud addresses, one per phase of a test
SEND = """
import socket, sys
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    for i in range(10):
        s.sendto(bytes([i]) * 400, (sys.argv[1], 9))
"""
LAB_PROFILE = """
profiles:
  - id: mouchard_lab_camera
    vendor: Mouchard Lab
    maker: null
    model_family: the test lab's camera
    kind: camera
    match:
      mac_prefixes: ['00:1B:C5']
    first_party_domains: []
    notes: A device of Mouchard's own test lab, matched by its MAC prefix.
"""


def _config(tmp: Path, devices: str = "{}", interface: str = "gwlan") -> str:
    return (
        f"state_dir: {tmp}/state\ncapture:\n  interface: {interface}\n"
        f"influxdb:\n  url: http://127.0.0.1:{INFLUX_PORT}\n  flush_interval_s: 0.5\n"
        f"aggregation:\n  interval_s: 2\ndevices: {devices}\n"
    )


def _label(name: str, kind: str) -> str:
    return f'{{"{DEV_MAC}": {{name: {name}, kind: {kind}}}}}'


class Mouchard:
    """`mouchard run` in the gateway's namespace; a thread collects its stderr lines."""

    def __init__(self, gw: Namespace, config: Path, cwd: Path = ROOT) -> None:
        self.proc = gw.popen(sys.executable, "-m", "gateway", "run", "--config", str(config), cwd=cwd)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_log("on gwlan →")  # the start line: set-up is over

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    def wait_log(self, text: str, times: int = 1, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while self.count(text) < times:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._reader.join(2)
                raise AssertionError(f"no log line {text!r} (x{times}); stderr:\n{self.text}")
            time.sleep(0.1)

    def hup(self, text: str) -> None:
        """SIGHUP, then wait for one more log line with ``text``."""
        before = self.count(text)
        self.proc.send_signal(signal.SIGHUP)
        self.wait_log(text, before + 1)

    def stop(self) -> int:
        assert self.proc.poll() is None, f"mouchard run exited early:\n{self.text}"
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(30)
        self._reader.join(5)
        return code


@contextmanager
def _lab(tmp_path: Path) -> Iterator[tuple[NetnsLab, Namespace, Namespace]]:
    """The lab with InfluxDB running in the gateway's namespace; (lab, device, gateway)."""
    with NetnsLab() as lab:
        dev, gw, cloud = _build(lab)
        dev.ip("link", "set", "dev0", "address", DEV_MAC)
        for address in PHASES:
            cloud.ip("addr", "add", f"{address}/24", "dev", "cloud0")
        influx = str(tmp_path / "influx")
        gw.run(str(SCRIPTS / "influxd-local"), "start", influx, str(INFLUX_PORT), timeout=30)
        try:
            yield lab, dev, gw
        finally:
            gw.run(str(SCRIPTS / "influxd-local"), "stop", influx, check=False)


def _send(dev: Namespace, address: str) -> None:
    """Ten datagrams to ``address``, and a second for them (and the ARP before them) to be captured."""
    dev.run(sys.executable, "-c", SEND, address)
    time.sleep(1)


def _written(gw: Namespace, address: str, timeout: float = 20) -> dict[str, str]:
    """The tags of the device's points to ``address``, once its bin is written (one set of tags)."""
    query = (
        f"SELECT sum(bytes_out) FROM traffic WHERE host = '{address}' AND device = '{DEV_MAC}' "
        "GROUP BY device_name, kind, vendor"
    )
    found: list[dict[str, object]] = []

    def written() -> bool:
        found[:] = _influx(gw, query)
        return bool(found)

    _wait_for(written, f"points of {DEV_MAC} to {address}", timeout)
    assert len(found) == 1, found
    tags: dict[str, str] = found[0]["tags"]  # type: ignore[assignment]
    return tags


LAG_S = 45  # the aggregator keeps a bin open 30 s after newer packets (reordering): then it is written


def test_sighup_reloads_device_labels_and_keeps_them_when_the_config_is_broken(tmp_path: Path) -> None:
    """Tags are the device's identity when its bin is written: points written after a reload carry
    the new labels, and a broken configuration on SIGHUP changes nothing."""
    config = tmp_path / "mouchard.yaml"
    config.write_text(_config(tmp_path, _label("Bench Plug", "plug")))
    with _lab(tmp_path) as (_, dev, gw):
        run = Mouchard(gw, config)
        _send(dev, PHASES[0])
        first = _written(gw, PHASES[0], timeout=LAG_S)  # written before the reload

        config.write_text(_config(tmp_path, _label("Desk Lamp", "light")))
        run.hup(f"device labels reloaded from {config} (1 devices labelled)")
        _send(dev, PHASES[1])
        config.write_text(_config(tmp_path, f'{{"{DEV_MAC}": {{name: Broken, colour: red}}}}'))
        run.hup("configuration not reloaded, the running one stays")
        _send(dev, PHASES[2])
        longer_bins = _config(tmp_path, _label("Desk Lamp", "light")).replace(
            "interval_s: 2", "interval_s: 3"
        )
        config.write_text(longer_bins)
        run.hup("restart mouchard for the other changes")
        _send(dev, PHASES[3])
        assert run.stop() == 0, run.text  # writes the open bins
        after = [_written(gw, address, timeout=5) for address in PHASES[1:4]]
    assert (first["device_name"], first["kind"]) == ("Bench Plug", "plug")
    assert [(t["device_name"], t["kind"]) for t in after] == [("Desk Lamp", "light")] * 3
    broken = [line for line in run.lines if "configuration not reloaded" in line]
    assert len(broken) == 1
    assert str(config) in broken[0]
    assert "colour" in broken[0]  # what is wrong, on the same line
    assert run.count("device labels reloaded") == 2
    assert "stopped:" in run.text


def _package_copy(tmp_path: Path) -> Path:
    """The package and its profiles, copied: the test builds its own profile index there."""
    copy = tmp_path / "checkout"
    shutil.copytree(ROOT / "gateway", copy / "gateway", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "device_profiles", copy / "device_profiles")
    return copy


def test_sighup_reloads_device_profiles_and_keeps_them_when_the_index_is_broken(tmp_path: Path) -> None:
    copy = _package_copy(tmp_path)
    index = copy / "gateway" / "data" / "profile_index.json"
    config = tmp_path / "mouchard.yaml"
    config.write_text(_config(tmp_path))
    with _lab(tmp_path) as (_, dev, gw):
        run = Mouchard(gw, config, cwd=copy)
        _send(dev, PHASES[0])
        first = _written(gw, PHASES[0], timeout=LAG_S)  # written before the reload

        (copy / "device_profiles" / "mouchard_lab.yaml").write_text(LAB_PROFILE)
        build = [sys.executable, "-m", "gateway", "profiles", "build"]
        built = subprocess.run(build, cwd=copy, capture_output=True, text=True, check=False)
        assert built.returncode == 0, built.stderr
        run.hup(f"device profiles reloaded from {index}")
        _send(dev, PHASES[1])
        index.write_text(index.read_text()[:1000])  # a damaged index (a copy cut short, say)
        run.hup("device profiles not reloaded, the running ones stay")
        _send(dev, PHASES[2])
        assert run.stop() == 0, run.text  # writes the open bins
        after = [_written(gw, address, timeout=5) for address in PHASES[1:3]]
    assert (first["kind"], first["vendor"]) == ("unknown", "")
    assert [(t["kind"], t["vendor"]) for t in after] == [("camera", "Mouchard Lab")] * 2
    broken = [line for line in run.lines if "device profiles not reloaded" in line]
    assert len(broken) == 1
    assert "mouchard profiles build" in broken[0]  # what to do, on the same line
    assert run.count("device profiles reloaded") == 1


def test_a_mistyped_interface_stops_with_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "mouchard.yaml"
    config.write_text(_config(tmp_path, interface="gwlna"))
    with NetnsLab() as lab:
        _, gw, _ = _build(lab)
        done = gw.run(sys.executable, "-m", "gateway", "run", "--config", str(config), check=False)
    assert done.returncode == 2, done.stderr
    assert "no interface named gwlna" in done.stderr
    assert "gwlan" in done.stderr  # the names there are


def test_a_down_interface_is_waited_for_then_captured(tmp_path: Path) -> None:
    """At boot the gateway may start before its interface: it warns once, then captures when it is up.

    The interface also has no address at first: the active mDNS browser cannot start, says so
    once, and starts when the address comes.
    """
    config = tmp_path / "mouchard.yaml"
    config.write_text(_config(tmp_path))
    with _lab(tmp_path) as (_, dev, gw):
        gw.ip("link", "set", "gwlan", "down")
        gw.ip("addr", "flush", "dev", "gwlan")
        run = Mouchard(gw, config)
        waiting = "capture on gwlan is not running (gwlan is down: bring it up with `ip link set gwlan up`)"
        run.wait_log(waiting)
        time.sleep(5)  # attempts every 2 s meanwhile, at DEBUG
        assert run.proc.poll() is None, run.text
        assert run.count(waiting) == 1

        gw.ip("link", "set", "gwlan", "up")
        run.wait_log("capture on gwlan is running again")
        run.wait_log("active mDNS discovery on gwlan is not running")
        gw.ip("addr", "add", f"{LAN_GW}/24", "dev", "gwlan")
        dev.ip("route", "replace", "default", "via", LAN_GW)
        run.wait_log("active mDNS discovery on gwlan is running again")
        run.wait_log("active mDNS discovery on gwlan: browsing")
        _send(dev, PHASES[0])

        gw.ip("link", "set", "gwlan", "down")  # taken down while capturing: the handle dies
        went_down = "capture on gwlan is not running (The interface went down)"
        run.wait_log(went_down)
        gw.ip("link", "set", "gwlan", "up")
        run.wait_log("capture on gwlan is running again", times=2)
        run.wait_log("active mDNS discovery on gwlan: browsing", times=2)
        _send(dev, PHASES[1])
        assert run.stop() == 0, run.text
        _written(gw, PHASES[0], timeout=5)
        _written(gw, PHASES[1], timeout=5)
    assert run.count(waiting) == 1
    assert run.count(went_down) == 1
    assert run.count("active mDNS discovery on gwlan is not running") == 1
    assert not _failures(run), run.text


def _failures(run: Mouchard) -> list[str]:
    """Errors of Mouchard's own, and exceptions that escaped to asyncio (zeroconf may warn once,
    with its traceback, that a socket's interface went away: that is its own logging)."""
    escaped = ("Exception in callback", "exception was never retrieved", "Unhandled exception")
    return [line for line in run.lines if " ERROR gateway" in line or any(e in line for e in escaped)]


def _recreate_lan(dev: Namespace, gw: Namespace) -> None:
    """The veth pair again, configured before it comes up (so both capture and mDNS start at once)."""
    dev.ip(
        "link", "add", "dev0", "address", DEV_MAC, "type", "veth", "peer", "name", "gwlan", "netns", gw.name
    )
    _quiet(dev, "dev0")
    _quiet(gw, "gwlan")
    dev.ip("addr", "add", f"{LAN_DEV}/24", "dev", "dev0")
    gw.ip("addr", "add", f"{LAN_GW}/24", "dev", "gwlan")
    gw.ip("link", "set", "gwlan", "up")
    dev.ip("link", "set", "dev0", "up")
    dev.ip("route", "add", "default", "via", LAN_GW)


def test_capture_comes_back_when_its_interface_is_recreated(tmp_path: Path) -> None:
    config = tmp_path / "mouchard.yaml"
    config.write_text(_config(tmp_path, _label("Bench Plug", "plug")))
    with _lab(tmp_path) as (_, dev, gw):
        run = Mouchard(gw, config)
        run.wait_log("active mDNS discovery on gwlan: browsing")
        _send(dev, PHASES[0])

        gw.ip("link", "del", "gwlan")
        lost = "capture on gwlan is not running (The interface went down)"
        run.wait_log(lost)
        time.sleep(5)  # attempts every 2 s meanwhile, at DEBUG
        assert run.proc.poll() is None, run.text

        _recreate_lan(dev, gw)
        run.wait_log("capture on gwlan is running again")
        run.wait_log("active mDNS discovery on gwlan: browsing", times=2)  # new sockets, on the new gwlan
        _send(dev, PHASES[1])
        assert run.stop() == 0, run.text
        before, again = (_written(gw, address, timeout=5) for address in PHASES[:2])
    assert before["device_name"] == again["device_name"] == "Bench Plug"
    assert run.count(lost) == 1
    assert run.count("is not running") == 1  # the browser was stopped with the capture, not failed
    assert not _failures(run), run.text
    assert "stopped:" in run.text
