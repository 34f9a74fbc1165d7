"""The sample lab capture is what it claims, by tshark's independent reading.

Every variant (pcap, pcapng with two interfaces and custom blocks, Linux cooked v1/v2, raw IP, 802.1Q and
QinQ) dissects without a malformed packet or an error (checksums validated); the names the summary lists
are the ones tshark finds; per-device and per-address byte and packet totals equal tshark's endpoints.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.samples import frames as fr
from gateway.samples.frames import LinkType
from gateway.samples.lab import CaptureFormat, LabSummary, VlanMode, write_lab_capture
from gateway.samples.pcapwriter import PcapngWriter, PcapWriter

pytestmark = pytest.mark.skipif(
    shutil.which("tshark") is None, reason="tshark is the oracle: apt-get install tshark"
)

CHECKSUMS = ["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"]
PROBLEMS = "_ws.malformed or _ws.expert.severity == error"
_ROW = re.compile(r"^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$")
VARIANT_SECONDS = 60


def tshark(capture: Path, *args: str) -> str:
    """tshark's standard output (it warns on stderr when run as root: ignored)."""
    done = subprocess.run(
        ["tshark", "-n", "-r", str(capture), *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def endpoints(capture: Path, *tables: str) -> dict[str, tuple[int, int, int, int]]:
    """{address: (tx bytes, rx bytes, tx packets, rx packets)} of `-z endpoints,TABLE` for each table."""
    stats = [arg for table in tables for arg in ("-z", f"endpoints,{table}")]
    rows = {}
    for line in tshark(capture, "-q", *stats).splitlines():
        match = _ROW.match(line)
        if match:
            _, _, tx_packets, tx_bytes, rx_packets, rx_bytes = (int(group) for group in match.groups()[1:])
            rows[match.group(1).lower()] = (tx_bytes, rx_bytes, tx_packets, rx_packets)
    return rows


def device_rows(summary: LabSummary) -> dict[str, tuple[int, int, int, int]]:
    return {
        d.mac: (d.bytes_sent, d.bytes_received, d.packets_sent, d.packets_received) for d in summary.devices
    }


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> LabSummary:
    return write_lab_capture(tmp_path_factory.mktemp("lab") / "lab.pcap", seconds=600, seed=1)


PCAP, PCAPNG, ETHERNET = CaptureFormat.PCAP, CaptureFormat.PCAPNG, LinkType.ETHERNET
VARIANTS = {  # name: (format, link type, VLAN tagging)
    "pcapng": (PCAPNG, ETHERNET, VlanMode.NONE),
    "sll": (PCAP, LinkType.LINUX_SLL, VlanMode.NONE),
    "sll2": (PCAP, LinkType.LINUX_SLL2, VlanMode.NONE),
    "raw": (PCAP, LinkType.RAW, VlanMode.NONE),
    "trunk": (PCAP, ETHERNET, VlanMode.TRUNK),
}


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LabSummary]:
    folder = tmp_path_factory.mktemp("variants")
    return {
        name: write_lab_capture(
            folder / f"{name}.cap", VARIANT_SECONDS, 1, fmt=fmt, linktype=link, vlans=vlans
        )
        for name, (fmt, link, vlans) in VARIANTS.items()
    }


def test_lab_dissects_without_problems(lab: LabSummary) -> None:
    assert tshark(lab.path, *CHECKSUMS, "-Y", PROBLEMS) == ""


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_dissects_without_problems(variants: dict[str, LabSummary], name: str) -> None:
    assert tshark(variants[name].path, *CHECKSUMS, "-Y", PROBLEMS) == ""


def test_names_are_the_ones_on_the_wire(lab: LabSummary) -> None:
    fields = ["-e", "tls.handshake.extensions_server_name", "-e", "dns.qry.name"]
    out = tshark(
        lab.path, "-Y", "tls.handshake.type == 1 or dns.flags.response == 0", "-T", "fields", *fields
    )
    sni: set[str] = set()
    queried: set[str] = set()
    for line in out.splitlines():
        server_name, _, query = line.partition("\t")
        sni.update(filter(None, server_name.split(",")))
        queried.update(filter(None, query.split(",")))
    assert sni == set(lab.server_names)
    assert queried - {"_googlecast._tcp.local"} == set(lab.dns_names)
    assert {"avs-alexa-4-na.amazon.com", "device-metrics-us.amazon.com"} <= sni


def test_device_totals_equal_tshark(lab: LabSummary) -> None:
    rows = endpoints(lab.path, "eth,ip or ipv6")
    assert {mac: rows[mac] for mac in device_rows(lab)} == device_rows(lab)
    router_tx = rows[lab.router_mac][0]
    device_tx = sum(device.bytes_sent for device in lab.devices)
    assert router_tx + device_tx == sum(tx for tx, _, _, _ in rows.values())  # nobody else sends


def test_trunk_and_pcapng_totals_equal_tshark(variants: dict[str, LabSummary]) -> None:
    for name in ("trunk", "pcapng"):
        summary = variants[name]
        rows = endpoints(summary.path, "eth,ip or ipv6")
        assert {mac: rows[mac] for mac in device_rows(summary)} == device_rows(summary), name
    fields = ["-T", "fields", "-e", "ieee8021ad.id", "-e", "vlan.id"]
    tags = {line.strip() for line in tshark(variants["trunk"].path, "-Y", "vlan", *fields).splitlines()}
    assert tags == {"10", "20", "100\t20"}  # 802.1Q 10 and 20, and QinQ S-tag 100 over C-tag 20


@pytest.mark.parametrize("name", ["raw", "sll", "sll2"])
def test_address_totals_equal_tshark(variants: dict[str, LabSummary], name: str) -> None:
    summary = variants[name]
    rows = endpoints(summary.path, "ip", "ipv6")
    expected = {
        address: (t.bytes_sent, t.bytes_received, t.packets_sent, t.packets_received)
        for address, t in summary.addresses.items()
    }
    assert {address: rows[address] for address in expected} == expected
    assert "192.168.1.23" in expected
    assert any(address.startswith("2a01:e0a:2b4:1d30:") for address in expected)


def test_pcapng_has_two_interfaces_and_skips_custom_blocks(variants: dict[str, LabSummary]) -> None:
    summary = variants["pcapng"]
    out = tshark(summary.path, "-Y", "frame.interface_id >= 0", "-T", "fields", "-e", "frame.interface_id")
    interfaces = out.split()
    assert set(interfaces) == {"0", "1"}
    assert len(interfaces) == summary.packets  # custom blocks are not packets


def test_summary_tells_the_story(lab: LabSummary) -> None:
    echo = lab.device("68:db:f5:90:19:64")
    assert echo.name == "Kitchen Echo"
    assert echo.vendor == "Amazon"
    assert lab.router_mac not in {device.mac for device in lab.devices}
    assert len(lab.activations) == 2
    for burst in lab.activations:
        assert 15_000 <= burst.bytes_sent / burst.duration_s <= 60_000
    tv = lab.device("8c:79:f5:2e:4a:07")
    assert tv.bytes_received > 2_000_000  # the Netflix download
    assert 3000 < lab.packets < 10_000


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    def digest(seed: int, name: str) -> str:
        summary = write_lab_capture(tmp_path / name, VARIANT_SECONDS, seed)
        return hashlib.sha256(summary.path.read_bytes()).hexdigest()

    assert digest(7, "a.pcap") == digest(7, "b.pcap")
    assert digest(7, "a.pcap") != digest(8, "c.pcap")


def test_edge_frames_dissect_cleanly(tmp_path: Path) -> None:
    """Fragments, QinQ, IPv6 extension headers, big-endian nanosecond pcap, SPBs and unknown blocks."""
    a, b = "02:00:00:00:00:01", "02:00:00:00:00:02"
    names = [f"n{i}.example.net" for i in range(2)]
    dns = fr.dns_response(
        7,
        "big.example.com",
        fr.DNS_A,
        fr.dns_answer_chain("big.example.com", names, [f"198.51.100.{i}" for i in range(1, 250)]),
    )
    datagram = fr.ipv4(
        "192.168.1.23",
        "192.168.1.1",
        fr.IPPROTO_UDP,
        fr.udp("192.168.1.23", "192.168.1.1", 40000, 53, dns),
        ident=99,
    )
    frames = [
        fr.ethernet(b, a, fr.ETH_P_IPV4, piece, vlans=[100, 20], qinq=True)
        for piece in fr.ipv4_fragments(datagram, 1500)
    ]
    src, dst = "2a01:e0a::5", "2001:db8::1"
    segment = fr.udp(src, dst, 5353, 5353, bytes(3000))
    frames += [
        fr.ethernet(b, a, fr.ETH_P_IPV6, piece, vlans=[10])
        for piece in fr.ipv6_fragments(
            src, dst, fr.IPPROTO_UDP, segment, 1280, ident=5, unfragmentable=[fr.hop_by_hop()]
        )
    ]
    hello = fr.tcp(src, dst, 50000, 443, fr.tls_client_hello("edge.example.org"), seq=1, ack=1)
    frames.append(
        fr.ethernet(
            b,
            a,
            fr.ETH_P_IPV6,
            fr.ipv6(src, dst, fr.IPPROTO_TCP, hello, extensions=[fr.hop_by_hop(), fr.destination_options()]),
        )
    )
    frames.append(
        fr.ethernet(
            b,
            a,
            fr.ETH_P_IPV4,
            fr.ipv4("192.168.1.23", "1.1.1.1", fr.IPPROTO_ICMP, fr.icmp_echo(1, 1, b"ping")),
        )
    )
    pcap, pcapng = tmp_path / "edge.pcap", tmp_path / "edge.pcapng"
    with PcapWriter(pcap, nanosecond=True, big_endian=True) as writer:
        for index, frame in enumerate(frames):
            writer.write(1_700_000_000_123_456_789 + index, frame)
    with PcapngWriter(pcapng, big_endian=True) as writer:
        writer.add_interface(LinkType.ETHERNET, snaplen=0, tsresol=9)
        writer.write_custom_block(b"skip me")
        for frame in frames:
            writer.write_simple(frame)
        writer.write_block(0x0BAD0BAD, b"an unknown block type")
        writer.write(1_700_000_001_000_000_000, frames[-1], comment="last")
    for capture in (pcap, pcapng):
        assert tshark(capture, *CHECKSUMS, "-Y", PROBLEMS) == ""
        out = tshark(capture, "-T", "fields", "-e", "tls.handshake.extensions_server_name", "-e", "dns.a")
        assert "edge.example.org" in out
        assert "198.51.100.249" in out  # reassembled from three QinQ-tagged fragments
    stamps = tshark(pcap, "-T", "fields", "-e", "frame.time_epoch").split()
    assert stamps[0] == "1700000000.123456789"
