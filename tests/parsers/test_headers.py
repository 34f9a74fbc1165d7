"""Vectorised header decoding against tshark, packet by packet, over every link type and odd header."""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

import numpy as np
import pytest

from gateway.enrichers.lan import address_text
from gateway.parsers.headers import decode
from gateway.samples import frames as fr
from gateway.samples.lab import write_lab_capture
from gateway.samples.pcapwriter import PcapWriter
from gateway.sources.capfile import open_capture
from tests.conftest import real_captures
from tests.oracle import tshark_available

pytestmark = pytest.mark.skipif(not tshark_available(), reason="tshark is the oracle: apt-get install tshark")
FIELDS = (
    "frame.protocols",
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "tcp.srcport",
    "tcp.dstport",
    "udp.srcport",
    "udp.dstport",
)
A, B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


def tshark_rows(path: Path) -> list[tuple[str, str, int, int]]:
    cmd = [
        "tshark",
        "-r",
        str(path),
        "-o",
        "ip.defragment:FALSE",
        "-o",
        "ipv6.defragment:FALSE",
        "-T",
        "fields",
    ]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        layers, *rest = line.split("\t")
        v = [x.split(",")[0] for x in rest]  # outer header first (ICMP errors carry another)
        src, dst = (v[0], v[1]) if v[0] else (v[2], v[3])
        if _outer_transport(layers):
            sport, dport = int(v[4] or v[6] or 0), int(v[5] or v[7] or 0)
        else:
            sport = dport = 0
        rows.append((_norm(src), _norm(dst), sport, dport))
    return rows


def _outer_transport(layers: str) -> bool:
    """Whether TCP/UDP follows the first IP header directly (not inside an ICMP error)."""
    names = layers.split(":")
    ip_at = next((i for i, n in enumerate(names) if n in ("ip", "ipv6")), None)
    if ip_at is None:
        return False
    after = [n for n in names[ip_at + 1 :] if not n.startswith("ipv6.")]
    return bool(after) and after[0] in ("tcp", "udp")


def _norm(text: str) -> str:
    return str(ipaddress.ip_address(text)) if text else ""


def our_rows(path: Path) -> list[tuple[str, str, int, int]]:
    rows = []
    for batch in open_capture(path):
        h = decode(batch)
        for i in range(len(batch)):
            if not h.is_ip[i] or h.malformed[i]:
                rows.append(("", "", 0, 0))
                continue
            src = address_text(int(h.src_hi[i]), int(h.src_lo[i]))
            dst = address_text(int(h.dst_hi[i]), int(h.dst_lo[i]))
            rows.append((src, dst, int(h.sport[i]), int(h.dport[i])))
    return rows


def odd_frames() -> list[bytes]:
    v4 = fr.ipv4("192.168.1.10", "52.94.1.1", 6, fr.tcp("192.168.1.10", "52.94.1.1", 40001, 443, b"x" * 10))
    udp6 = fr.udp("2001:db8::10", "2600:1f18::1", 5353, 53, b"y" * 20)
    out = [
        fr.ethernet(B, A, 0x0800, v4),
        fr.ethernet(B, A, 0x0800, v4, vlans=[10]),
        fr.ethernet(B, A, 0x0800, v4, vlans=[100, 20], qinq=True),
        fr.ethernet(B, A, 0x86DD, fr.ipv6("2001:db8::10", "2600:1f18::1", 17, udp6)),
        fr.ethernet(
            B,
            A,
            0x86DD,
            fr.ipv6(
                "2001:db8::10",
                "2600:1f18::1",
                17,
                udp6,
                extensions=[fr.hop_by_hop(), fr.destination_options()],
            ),
        ),
        fr.ethernet(B, A, 0x0806, fr.arp(1, A, "192.168.1.10", "00:00:00:00:00:00", "192.168.1.1")),
        fr.ethernet(B, A, 0x0800, fr.ipv4("192.168.1.10", "8.8.8.8", 1, fr.icmp_echo(1, 1, b"ping"))),
    ]
    big = fr.ipv4(
        "192.168.1.10", "52.94.1.1", 17, fr.udp("192.168.1.10", "52.94.1.1", 40002, 443, b"z" * 3000)
    )
    out += [fr.ethernet(B, A, 0x0800, frag) for frag in fr.ipv4_fragments(big, 1500)]
    out += [
        fr.ethernet(B, A, 0x86DD, frag)
        for frag in fr.ipv6_fragments(
            "2001:db8::10",
            "2600:1f18::1",
            17,
            fr.udp("2001:db8::10", "2600:1f18::1", 4000, 443, b"q" * 3000),
            1280,
            ident=7,
        )
    ]
    return out


def test_odd_headers_match_tshark(tmp_path: Path) -> None:
    path = tmp_path / "odd.pcap"
    with PcapWriter(path) as w:
        for i, frame in enumerate(odd_frames()):
            w.write(1_700_000_000 + i, frame)
        for cut in (14, 34, 40, 54):  # the same TCP frame snapped ever shorter
            w.write(1_700_000_100 + cut, odd_frames()[0][:cut], orig_len=len(odd_frames()[0]))
    assert our_rows(path) == tshark_rows(path)


def test_cut_ip_header_is_counted_but_malformed(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    frame = odd_frames()[0]
    with PcapWriter(path) as w:
        w.write(1_700_000_000, frame[:30], orig_len=len(frame))
    h = decode(next(iter(open_capture(path))))
    assert h.is_ip[0]
    assert h.malformed[0]


def test_fragments_are_flagged(tmp_path: Path) -> None:
    path = tmp_path / "frag.pcap"
    with PcapWriter(path) as w:
        for i, frame in enumerate(odd_frames()):
            w.write(1_700_000_000 + i, frame)
    h = decode(next(iter(open_capture(path))))
    assert int(np.count_nonzero(h.fragment)) >= 4
    assert int(np.count_nonzero(h.later_fragment)) >= 2
    assert not np.any(h.sport[h.later_fragment])


@pytest.mark.parametrize("link", ["sll", "sll2", "raw"])
def test_link_types_without_ethernet_match_tshark(tmp_path: Path, link: str) -> None:

    path = tmp_path / f"{link}.pcap"
    write_lab_capture(path, seconds=60, linktype=_link(link))
    assert our_rows(path) == tshark_rows(path)


def _link(name: str) -> int:
    return {"sll": fr.LinkType.LINUX_SLL, "sll2": fr.LinkType.LINUX_SLL2, "raw": fr.LinkType.RAW}[name]


@pytest.mark.parametrize("capture", real_captures()[:40], ids=lambda p: p.name)
def test_real_captures_match_tshark(capture: Path) -> None:
    assert our_rows(capture) == tshark_rows(capture)
