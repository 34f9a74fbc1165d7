"""Regression tests for the capture-reader bugs found while hardening (each named after the bug)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from fuzz.common import frame_seeds
from gateway.sources.capfile import (
    MAX_BATCH_SPLITS,
    MAX_INTERFACES,
    MAX_TS_OFFSET_S,
    MAX_WIRE,
    PacketBatch,
    ReadStats,
    open_capture,
)

FRAME = frame_seeds()[0]


def block(kind: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack("<II", kind, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


SHB = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(options: bytes = b"") -> bytes:
    return block(1, struct.pack("<HHI", 1, 0, 65535) + options)


def epb(frame: bytes, interface: int = 0, orig: int | None = None) -> bytes:
    orig = len(frame) if orig is None else orig
    return block(6, struct.pack("<IIIII", interface, 0, 1000, len(frame), orig) + frame)


def read(tmp_path: Path, data: bytes) -> tuple[list[PacketBatch], ReadStats]:
    path = tmp_path / "capture"
    path.write_bytes(data)
    stats = ReadStats()
    return list(open_capture(path, stats)), stats


def test_pcapng_huge_if_tsoffset_overflowed_int64(tmp_path: Path) -> None:
    # An if_tsoffset of 2**62 s raised OverflowError from numpy: a traceback instead of a replay.
    offset = struct.pack("<HH", 14, 8) + struct.pack("<q", 2**62)
    batches, _ = read(tmp_path, SHB + idb(offset) + epb(FRAME))
    assert [len(b) for b in batches] == [1]
    assert batches[0].ts_ns[0] == MAX_TS_OFFSET_S * 1_000_000_000 + 1000 * 1000


def test_pcapng_idbs_alternating_with_packets_were_quadratic(tmp_path: Path) -> None:
    # Each IDB after a packet closed the batch, and each batch looped over every interface so far:
    # 2,000 IDB+EPB pairs (256 KB) took 13 s, a few MB would never end. Interfaces are now capped.
    pairs = 2000
    data = SHB + b"".join(idb() + epb(FRAME, interface=i) for i in range(pairs))
    batches, stats = read(tmp_path, data)
    assert sum(len(b) for b in batches) == pairs
    assert len(batches) <= MAX_INTERFACES + 1
    assert stats.skipped_blocks == pairs - MAX_INTERFACES
    links = np.concatenate([b.linktype for b in batches])
    assert (links[:MAX_INTERFACES] == 1).all()
    assert (links[MAX_INTERFACES:] == -1).all()  # their interface was never described: not counted


def test_absurd_original_length_no_longer_adds_gigabytes(tmp_path: Path) -> None:
    # A flipped high bit in orig_len made one packet count 4 GB for its device.
    pcap = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    pcap += struct.pack("<IIII", 1, 0, len(FRAME), 0xFFFFFFF0) + FRAME
    batches, _ = read(tmp_path, pcap)
    assert batches[0].wirelen.tolist() == [MAX_WIRE]
    batches, _ = read(tmp_path, SHB + idb() + epb(FRAME, orig=0xFFFFFFF0))
    assert batches[0].wirelen.tolist() == [MAX_WIRE]


def test_simple_packet_block_shorter_than_its_header_had_a_negative_length(tmp_path: Path) -> None:
    # An SPB of 12 bytes (no original-length field) gave caplen -4.
    short_spb = struct.pack("<III", 3, 12, 12)
    batches, _ = read(tmp_path, SHB + idb() + short_spb + epb(FRAME))
    caplen = np.concatenate([b.caplen for b in batches])
    assert caplen.tolist() == [0, len(FRAME)]


def test_pcapng_of_thousands_of_tiny_sections_made_every_packet_a_batch(tmp_path: Path) -> None:
    # Each section header after packets ends a batch: 64,000 one-packet sections in 10 MB took about
    # 8 ms each through the Gateway, minutes in all. Beyond MAX_BATCH_SPLITS the file is damaged.
    sections = MAX_BATCH_SPLITS + 500
    batches, stats = read(tmp_path, (SHB + idb() + epb(FRAME)) * sections)
    assert len(batches) == MAX_BATCH_SPLITS + 1
    assert sum(len(b) for b in batches) == MAX_BATCH_SPLITS + 1
    assert stats.damaged is not None
    assert f"more than {MAX_BATCH_SPLITS} sections" in stats.damaged


def test_a_few_concatenated_captures_are_read_whole(tmp_path: Path) -> None:
    batches, stats = read(tmp_path, (SHB + idb() + epb(FRAME) + epb(FRAME)) * 20)
    assert sum(len(b) for b in batches) == 40
    assert stats.damaged is None
