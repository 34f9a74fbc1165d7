"""`mouchard run` in a lab of three network namespaces: a device, the gateway routing, a cloud.

The cloud runs dnsmasq (names to its own address), an HTTPS server (self-signed), an HTTP server;
the device resolves names through it, talks HTTPS (SNI), HTTP (Host), UDP, and announces itself over
mDNS. Mouchard captures the gateway's LAN side and writes to an InfluxDB inside the gateway's
namespace; tcpdump on the same interface is the oracle for bytes. Only addresses inside the
namespaces are used.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, SCRIPTS
from tests.netns import Namespace, NetnsLab, is_root
from tests.oracle import mac_totals

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not is_root(), reason="network namespaces need root (CI is root)"),
]

LAN_GW, LAN_DEV = "192.168.77.1", "192.168.77.2"
WAN_GW, CLOUD = "198.51.100.1", "198.51.100.2"  # TEST-NET-2, only inside the lab's namespaces
INFLUX_PORT = 18186
SERVER = """
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"x" * 20000
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
port = int(sys.argv[1])
srv = http.server.ThreadingHTTPServer((sys.argv[2], port), H)
if port == 443:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"""


def _wait_for(predicate: object, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _quiet(ns: Namespace, *ifaces: str) -> None:
    """No IPv6 chatter, no offloads: the capture sees exactly the frames the test makes."""
    ns.run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
    ns.ip("link", "set", "lo", "up")
    for iface in ifaces:
        ns.run("ethtool", "-K", iface, "gro", "off", "gso", "off", "tso", "off", check=False)


def _build(lab: NetnsLab) -> tuple[Namespace, Namespace, Namespace]:
    dev, gw, cloud = lab.namespace("dev"), lab.namespace("gw"), lab.namespace("cloud")
    lab.veth(dev, "dev0", gw, "gwlan")
    lab.veth(gw, "gwwan", cloud, "cloud0")
    _quiet(dev, "dev0")
    _quiet(gw, "gwlan", "gwwan")
    _quiet(cloud, "cloud0")
    dev.ip("addr", "add", f"{LAN_DEV}/24", "dev", "dev0")
    gw.ip("addr", "add", f"{LAN_GW}/24", "dev", "gwlan")
    gw.ip("addr", "add", f"{WAN_GW}/24", "dev", "gwwan")
    cloud.ip("addr", "add", f"{CLOUD}/24", "dev", "cloud0")
    for ns, iface in ((dev, "dev0"), (gw, "gwlan"), (gw, "gwwan"), (cloud, "cloud0")):
        ns.ip("link", "set", iface, "up")
    dev.ip("route", "add", "default", "via", LAN_GW)
    dev.ip("route", "add", "224.0.0.0/4", "dev", "dev0")
    cloud.ip("route", "add", "192.168.77.0/24", "via", WAN_GW)
    gw.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
    return dev, gw, cloud


def _cloud_services(cloud: Namespace, tmp: Path) -> None:
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=secure.lab.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    cloud.popen(
        "dnsmasq",
        "--no-daemon",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        f"--listen-address={CLOUD}",
        f"--pid-file={tmp}/dnsmasq.pid",
        "--address=/lab.test/" + CLOUD,
        "--log-facility=-",
    )
    (tmp / "server.py").write_text(SERVER)
    cloud.popen(sys.executable, str(tmp / "server.py"), "443", CLOUD, str(cert), str(key))
    cloud.popen(sys.executable, str(tmp / "server.py"), "80", CLOUD)
    _wait_for(lambda: cloud.run("ss", "-ltn", check=False).stdout.count(CLOUD) >= 2, "cloud servers")


def _influx(gw: Namespace, q: str) -> list[dict[str, object]]:
    url = f"http://127.0.0.1:{INFLUX_PORT}/query?" + urllib.parse.urlencode({"db": "mouchard", "q": q})
    out = gw.run("curl", "-sf", url).stdout
    series: list[dict[str, object]] = json.loads(out)["results"][0].get("series", [])
    return series


@dataclass(frozen=True)
class LabRun:
    """What one run of the lab left: the device's MAC, tcpdump's bytes for it, and InfluxDB's rows."""

    mac: str
    expected: int  # bytes of the device's IPv4/IPv6 frames on the gateway's LAN side (tcpdump)
    totals: dict[str, int]  # bytes_out + bytes_in per device tag
    named: dict[str, str]  # host -> name_source, for the device
    names: dict[str, str]  # device -> name (device measurement)
    stderr: str


def _run_lab(tmp_path: Path, source: str, influx_outage: bool = False) -> LabRun:
    """The device script through the lab, with `mouchard run` (``capture.source``) on the gateway.

    ``influx_outage``: InfluxDB is stopped while the device talks and started again before the end.
    """
    with NetnsLab() as lab:
        dev, gw, cloud = _build(lab)
        _cloud_services(cloud, tmp_path)
        gw.run(
            str(SCRIPTS / "influxd-local"), "start", str(tmp_path / "influx"), str(INFLUX_PORT), timeout=30
        )
        try:
            cfg = tmp_path / "mouchard.yaml"
            cfg.write_text(
                f"state_dir: {tmp_path}/state\ncapture:\n  interface: gwlan\n  source: {source}\n"
                f"influxdb:\n  url: http://127.0.0.1:{INFLUX_PORT}\naggregation:\n  interval_s: 5\n"
            )
            run = gw.popen(sys.executable, "-m", "gateway", "run", "--config", str(cfg), cwd=ROOT)
            assert run.stderr is not None
            started = [run.stderr.readline()]  # set-up notes, then "... on gwlan → ..."
            while started[-1] and "on gwlan" not in started[-1] and len(started) < 20:
                started.append(run.stderr.readline())
            assert "on gwlan" in started[-1], "".join(started)
            oracle = tmp_path / "oracle.pcap"
            dump = gw.popen("tcpdump", "-i", "gwlan", "-w", str(oracle), "-U", "ip or ip6")
            assert dump.stderr is not None
            _wait_for(lambda: oracle.exists() and oracle.stat().st_size > 0, "tcpdump")
            time.sleep(0.5)
            if influx_outage:
                gw.run(str(SCRIPTS / "influxd-local"), "stop", str(tmp_path / "influx"))
            done = dev.run(
                sys.executable, str(ROOT / "tests" / "lab" / "device_script.py"), CLOUD, LAN_DEV, timeout=60
            )
            assert done.returncode == 0, done.stderr
            time.sleep(2)  # the last FIN/ACKs of the servers, then silence
            if influx_outage:
                time.sleep(8)  # bins closed while InfluxDB is away: written to the spool
                start = [str(SCRIPTS / "influxd-local"), "start", str(tmp_path / "influx"), str(INFLUX_PORT)]
                gw.run(*start, timeout=30)
            dump.send_signal(signal.SIGTERM)
            dump.wait(10)
            run.send_signal(signal.SIGTERM)
            code = run.wait(30)
            stderr = "".join(started) + run.stderr.read()
            assert code == 0, stderr
            mac = dev.mac("dev0")
            rows = _influx(gw, "SELECT sum(bytes_out) + sum(bytes_in) FROM traffic GROUP BY device")
            hosts = _influx(
                gw, f"SELECT sum(bytes_out) FROM traffic WHERE device = '{mac}' GROUP BY host, name_source"
            )
            names = _influx(gw, 'SELECT last("name") FROM device GROUP BY device')
            return LabRun(
                mac=mac,
                expected=mac_totals(oracle)[mac],
                totals={s["tags"]["device"]: s["values"][0][1] for s in rows},  # type: ignore[index]
                named={s["tags"]["host"]: s["tags"]["name_source"] for s in hosts},  # type: ignore[index]
                names={s["tags"]["device"]: s["values"][0][1] for s in names},  # type: ignore[index]
                stderr=stderr,
            )
        finally:
            gw.run(str(SCRIPTS / "influxd-local"), "stop", str(tmp_path / "influx"), check=False)


def _assert_named(run: LabRun) -> None:
    assert run.named["secure.lab.test"] == "sni"
    assert run.named["plain.lab.test"] == "http"
    assert run.named["udp.lab.test"] == "dns"
    assert run.names[run.mac] == "Lab Speaker"


def test_live_gateway_counts_and_names_a_device_exactly(tmp_path: Path) -> None:
    run = _run_lab(tmp_path, "pcap")
    assert run.totals[run.mac] == run.expected
    _assert_named(run)


def test_router_mode_counts_the_same_bytes_from_conntrack(tmp_path: Path) -> None:
    """conntrack's IP bytes plus 14 bytes of Ethernet header per packet equal tcpdump's frames."""
    run = _run_lab(tmp_path, "conntrack")
    assert "table inet mouchard" in run.stderr  # the set-up says it turned tracking on
    assert run.totals == {run.mac: run.expected}, run.stderr
    _assert_named(run)


def test_influxdb_restart_during_a_live_run_loses_nothing(tmp_path: Path) -> None:
    """InfluxDB is down while the device talks: the spool keeps the points, delivered once it is back."""
    run = _run_lab(tmp_path, "pcap", influx_outage=True)
    assert run.totals[run.mac] == run.expected, run.stderr
    _assert_named(run)
