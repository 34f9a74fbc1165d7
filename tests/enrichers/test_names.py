"""Naming checked against tshark's own dissection: per (device, host) bytes, on real captures.

The oracle names a frame by its stream's server name (TLS/QUIC SNI, HTTP Host, as tshark decodes
them), else by the name the device resolved to the server's address (tshark's DNS answers), else by
the address. At least 97% of the named bytes must agree.
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import default_config
from gateway.replay import replay_files
from gateway.samples import frames as fr
from gateway.samples.lab import write_lab_capture
from gateway.samples.pcapwriter import PcapWriter
from gateway.sinks.lineproto import MemorySink
from tests.conftest import real_captures
from tests.oracle import link_type, tshark_available

pytestmark = pytest.mark.skipif(not tshark_available(), reason="tshark is the oracle: apt-get install tshark")
FIELDS = (
    "frame.len",
    "eth.src",
    "eth.dst",
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "tcp.stream",
    "udp.stream",
    "tls.handshake.extensions_server_name",
    "http.host",
    "dns.flags.response",
    "dns.qry.name",
    "dns.a",
    "dns.aaaa",
    "udp.srcport",
    "tcp.srcport",
)


def replay(path: Path) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], str]]:
    sink = MemorySink()
    gw = Gateway(default_config(), sink)
    replay_files(gw, [path])
    ours: dict[tuple[str, str], int] = defaultdict(int)
    sources: dict[tuple[str, str], str] = {}
    for line in sink.lines:
        if not line.startswith("traffic,"):
            continue
        tags_text, fields, _ = line.rsplit(" ", 2)
        tags = dict(kv.split("=", 1) for kv in tags_text.split(",")[1:])
        values = dict(kv.split("=") for kv in fields.split(","))
        key = (tags["device"], tags["host"])
        ours[key] += int(values["bytes_out"][:-1]) + int(values["bytes_in"][:-1])
        sources[key] = tags["name_source"]
    return dict(ours), sources


def _first(text: str) -> str:
    return text.split(",", maxsplit=1)[0]


def _addr(text: str) -> str:
    return str(ipaddress.ip_address(text)) if text else ""


def oracle(path: Path, devices: set[str]) -> dict[tuple[str, str], int]:
    cmd = ["tshark", "-2", "-r", str(path), "-T", "fields", "-E", "occurrence=f"]
    for f in FIELDS:
        cmd += ["-e", f]
    rows = [
        line.split("\t")
        for line in subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()
    ]
    stream_name: dict[tuple[str, str], str] = {}
    dns: dict[tuple[str, str], str] = {}
    for r in rows:
        length, esrc, edst, s4, d4, s6, d6, tcp, udp, sni, host, resp, qname, a, aaaa, usport, tsport = r
        stream = ("t", tcp) if tcp else ("u", udp)
        name = sni.lower() or (
            host.lower().rsplit(":", 1)[0] if tcp and host and not host.startswith("[") else ""
        )
        if name and stream not in stream_name:
            stream_name[stream] = name
        if resp == "1" and qname and (usport == "53" or tsport == "53"):
            for addr in [x for x in (a + "," + aaaa).split(",") if x]:
                dns[(edst, _addr(addr))] = qname.lower()
    out: dict[tuple[str, str], int] = defaultdict(int)
    for r in rows:
        length, esrc, edst, s4, d4, s6, d6, tcp, udp = r[:9]
        src, dst = _addr(s4 or s6), _addr(d4 or d6)
        if not src:
            continue
        stream = ("t", tcp) if tcp else ("u", udp)
        for device, remote in ((esrc, dst), (edst, src)):
            if device not in devices:
                continue
            name = stream_name.get(stream) if (tcp or udp) else None
            name = name or dns.get((device, remote)) or remote
            out[(device, name)] += int(length)
    return dict(out)


def agreement(ours: dict[tuple[str, str], int], truth: dict[tuple[str, str], int]) -> tuple[float, int]:
    named = {k: v for k, v in truth.items() if not _is_address(k[1])}
    total = sum(named.values())
    same = sum(min(v, ours.get(k, 0)) for k, v in named.items())
    return (same / total if total else 1.0), total


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def named_captures() -> list[Path]:
    return [p for p in real_captures() if p.parent.name in ("zeek", "ndpi", "iot_sentinel", "monitr")]


@pytest.mark.parametrize("capture", named_captures(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_named_bytes_agree_with_tshark(capture: Path) -> None:
    if link_type(capture) != "ether":
        pytest.skip("the oracle keys devices by MAC")
    ours, _ = replay(capture)
    devices = {d for d, _ in ours}
    rate, named = agreement(ours, oracle(capture, devices))
    assert rate >= 0.97, f"{rate:.1%} of {named} named bytes agree"


def test_the_lab_capture_agrees_with_tshark(tmp_path: Path) -> None:
    path = tmp_path / "lab.pcap"
    write_lab_capture(path, seconds=300)
    ours, sources = replay(path)
    rate, named = agreement(ours, oracle(path, {d for d, _ in ours}))
    assert named > 1_000_000
    assert rate >= 0.97, f"{rate:.1%} of {named} named bytes agree"
    assert {"dns", "sni", "http"} <= set(sources.values())


def test_quic_flow_carries_its_server_name(captures: Path) -> None:
    ours, sources = replay(captures / "zeek" / "quic_curl-8.1.2-dev-http3-www-google-de.pcap")
    assert sources[("02:42:ac:11:00:02", "www.google.de")] == "quic"
    assert ours[("02:42:ac:11:00:02", "www.google.de")] == 32040  # every byte, handshake included


def test_encrypted_client_hello_is_marked_hidden(tmp_path: Path) -> None:
    """A device resolves a name, then connects with ECH: only the outer, public name is visible."""
    phone, router = "02:00:00:00:00:01", "02:00:00:00:00:fe"
    lan, server = "192.168.1.20", "104.18.10.118"
    frames = [
        fr.ethernet(
            router,
            phone,
            0x0800,
            fr.ipv4(
                lan,
                "192.168.1.1",
                17,
                fr.udp(lan, "192.168.1.1", 5000, 53, fr.dns_query(7, "secret.example")),
            ),
        ),
        fr.ethernet(
            phone,
            router,
            0x0800,
            fr.ipv4(
                "192.168.1.1",
                lan,
                17,
                fr.udp(
                    "192.168.1.1",
                    lan,
                    53,
                    5000,
                    fr.dns_response(7, "secret.example", 1, [fr.address_record("secret.example", server)]),
                ),
            ),
        ),
        fr.ethernet(
            router, phone, 0x0800, fr.ipv4(lan, server, 6, fr.tcp(lan, server, 40000, 443, flags=fr.SYN))
        ),
        fr.ethernet(
            router,
            phone,
            0x0800,
            fr.ipv4(
                lan,
                server,
                6,
                fr.tcp(lan, server, 40000, 443, fr.tls_client_hello("cloudflare-ech.com", ech=b"\x00" * 40)),
            ),
        ),
        fr.ethernet(
            phone,
            router,
            0x0800,
            fr.ipv4(server, lan, 6, fr.tcp(server, lan, 443, 40000, b"\x17\x03\x03\x00\x10" + bytes(16))),
        ),
    ]
    path = tmp_path / "ech.pcap"
    with PcapWriter(path) as w:
        for i, frame in enumerate(frames):
            w.write(1_700_000_000 + i, frame)
    ours, sources = replay(path)
    assert sources[(phone, "cloudflare-ech.com")] == "ech"
    assert ours[(phone, "cloudflare-ech.com")] == sum(len(f) for f in frames[2:])


def test_device_resolving_on_its_own_is_flagged(tmp_path: Path) -> None:
    tv, phone, router = "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:fe"
    frames = [
        fr.ethernet(
            router,
            tv,
            0x0800,
            fr.ipv4(
                "192.168.1.20",
                "8.8.8.8",
                6,
                fr.tcp("192.168.1.20", "8.8.8.8", 40000, 443, fr.tls_client_hello("dns.google")),
            ),
        ),
        fr.ethernet(
            router,
            phone,
            0x0800,
            fr.ipv4(
                "192.168.1.21", "9.9.9.9", 6, fr.tcp("192.168.1.21", "9.9.9.9", 40001, 853, flags=fr.SYN)
            ),
        ),
        fr.ethernet(
            router,
            "02:00:00:00:00:03",
            0x0800,
            fr.ipv4(
                "192.168.1.22",
                "1.1.1.1",
                6,
                fr.tcp("192.168.1.22", "1.1.1.1", 40002, 443, fr.tls_client_hello("example.org")),
            ),
        ),
    ]
    path = tmp_path / "doh.pcap"
    with PcapWriter(path) as w:
        for i, frame in enumerate(frames):
            w.write(1_700_000_000 + i, frame)
    gw = Gateway(default_config(), MemorySink())
    replay_files(gw, [path])
    assert gw.encrypted_dns_devices() == {tv, phone}
