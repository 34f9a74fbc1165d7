"""Capture reading checked against tshark: every pcap/pcapng flavour, and streaming across blocks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from gateway.samples import frames as fr
from gateway.samples.lab import CaptureFormat, VlanMode, write_lab_capture
from gateway.samples.pcapwriter import PcapngWriter, PcapWriter
from gateway.sources import capfile
from gateway.sources.capfile import CaptureError, ReadStats, open_capture
from tests.oracle import tshark_available

pytestmark = pytest.mark.skipif(not tshark_available(), reason="tshark is the oracle: apt-get install tshark")


def tshark_frames(path: Path) -> list[tuple[int, int, int]]:
    """(epoch ns, wire length, captured length) per frame, as tshark reads the file."""
    out = subprocess.run(
        [
            "tshark",
            "-r",
            str(path),
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.len",
            "-e",
            "frame.cap_len",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        epoch, length, cap = line.split("\t")
        sec, _, frac = epoch.partition(".")
        ts = int(sec) * 1_000_000_000 + int((frac + "000000000")[:9]) if sec else -1  # -1: no time
        rows.append((ts, int(length), int(cap)))
    return rows


def ours(path: Path) -> list[tuple[int, int, int]]:
    rows: list[tuple[int, int, int]] = []
    for batch in open_capture(path):
        rows.extend(zip(batch.ts_ns.tolist(), batch.wirelen.tolist(), batch.caplen.tolist(), strict=True))
    return rows


def sample_frames() -> list[bytes]:
    mac_a, mac_b = "02:00:00:00:00:01", "02:00:00:00:00:02"
    out = []
    for i in range(40):
        seg = fr.udp("192.168.1.10", "52.94.1.1", 40000 + i, 443, bytes(i * 30))
        out.append(fr.ethernet(mac_b, mac_a, 0x0800, fr.ipv4("192.168.1.10", "52.94.1.1", 17, seg)))
    return out


@pytest.mark.parametrize("nanosecond", [False, True])
@pytest.mark.parametrize("big_endian", [False, True])
def test_pcap_flavours(tmp_path: Path, nanosecond: bool, big_endian: bool) -> None:
    path = tmp_path / "f.pcap"
    with PcapWriter(path, nanosecond=nanosecond, big_endian=big_endian, snaplen=200) as w:
        for i, frame in enumerate(sample_frames()):
            w.write(1_700_000_000_123_456_789 + i * 1_000_001, frame[:200], orig_len=len(frame))
    assert ours(path) == tshark_frames(path)
    assert max(wire for _, wire, _ in ours(path)) > 200  # wire length, not the snapped length


def test_pcapng_interfaces_resolutions_simple_and_unknown_blocks(tmp_path: Path) -> None:
    path = tmp_path / "f.pcapng"
    frames = sample_frames()
    with PcapngWriter(path) as w:
        eth_us = w.add_interface(fr.LinkType.ETHERNET, 65535, 6)
        eth_ns = w.add_interface(fr.LinkType.ETHERNET, 65535, 9)
        for i, frame in enumerate(frames):
            w.write(1_700_000_000_000_000_000 + i * 1_234_567, frame, interface=eth_ns if i % 2 else eth_us)
            if i % 7 == 0:
                w.write_custom_block(b"not a packet")
                w.write_block(0x0BADBEEF & 0x7FFFFFFF, b"\x00" * 8)
        w.write_simple(frames[0])
    stats = ReadStats()
    got = [
        row
        for b in open_capture(path, stats)
        for row in zip(b.wirelen.tolist(), b.linktype.tolist(), strict=True)
    ]
    # tshark 4.0 lists custom blocks as records without a time: they are not packets.
    oracle = [row for row in tshark_frames(path) if not (row[0] == -1 and row[1] == len(b"not a packet"))]
    assert [w for w, _ in got] == [length for _, length, _ in oracle]
    timed = ours(path)[:-1]  # the simple packet block has no timestamp of its own
    assert timed == oracle[: len(timed)]
    assert stats.skipped_blocks >= 6


def test_blocks_stream_through_a_small_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file many times the read window gives the same packets as one read: nothing lost at the edges."""
    path = tmp_path / "lab.pcapng"
    write_lab_capture(path, seconds=60, fmt=CaptureFormat.PCAPNG, vlans=VlanMode.TRUNK)
    whole = ours(path)
    monkeypatch.setattr(capfile, "CHUNK_BYTES", 4096)
    assert ours(path) == whole
    pcap = tmp_path / "lab.pcap"
    write_lab_capture(pcap, seconds=60)
    whole = ours(pcap)
    assert ours(pcap) == tshark_frames(pcap)
    monkeypatch.setattr(capfile, "CHUNK_BYTES", 1 << 20)
    assert ours(pcap) == whole


def test_not_a_capture_is_an_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.pcap"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(CaptureError, match=r"x\.pcap"):
        list(open_capture(bad))


def test_timestamps_are_ordered_within_a_batch(tmp_path: Path) -> None:
    path = tmp_path / "lab.pcap"
    write_lab_capture(path, seconds=60)
    for batch in open_capture(path):
        assert np.all(np.diff(batch.ts_ns) >= 0)
