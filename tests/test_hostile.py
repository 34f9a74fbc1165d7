"""Damaged captures through `mouchard replay`: exit 0 after saying what was skipped, or exit 2 naming
the file and why. Never a traceback, never a hang (every run has a timeout).

The captures are built here (fuzz.common), so these tests need nothing from shared/.
"""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.common import frame_seeds, pcap_bytes, pcapng_bytes
from gateway.sources.capfile import MAX_BATCH_SPLITS
from tests.conftest import ROOT

FRAMES = frame_seeds()
PCAP = pcap_bytes(FRAMES)
PCAPNG = pcapng_bytes(FRAMES)
PCAPNG_PACKETS = len(FRAMES) + 1  # pcapng_bytes adds a simple packet block
TIMEOUT_S = 120  # far above the second these take: only a hang reaches it


def replay(tmp_path: Path, name: str, data: bytes, *extra: str) -> subprocess.CompletedProcess[str]:
    capture = tmp_path / name
    capture.write_bytes(data)
    config = tmp_path / "mouchard.yaml"
    config.write_text(f"state_dir: {tmp_path}/state\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "replay",
            str(capture),
            *extra,
            "--output",
            "-",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=TIMEOUT_S,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (0, 2), done.stderr
    return done


def packets_read(stderr: str) -> int:
    found = re.search(r"^([\d,]+) packets \(", stderr, re.MULTILINE)
    assert found, stderr
    return int(found.group(1).replace(",", ""))


def record_starts(data: bytes) -> list[int]:
    """Offsets of the records of a little-endian pcap file."""
    starts, pos = [], 24
    while pos + 16 <= len(data):
        starts.append(pos)
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    return starts


# ---------------------------------------------------------------- exit 0: damage counted


def test_pcap_cut_mid_record_counts_the_whole_records(tmp_path: Path) -> None:
    starts = record_starts(PCAP)
    done = replay(tmp_path, "cut.pcap", PCAP[: starts[5] + 30])
    assert done.returncode == 0
    assert packets_read(done.stderr) == 5
    assert "cut.pcap: cut short: last 30 bytes are an incomplete record" in done.stderr


def test_pcapng_cut_mid_block_counts_the_whole_blocks(tmp_path: Path) -> None:
    done = replay(tmp_path, "cut.pcapng", PCAPNG[:-40])
    assert done.returncode == 0
    assert 0 < packets_read(done.stderr) < PCAPNG_PACKETS
    assert "cut.pcapng: cut short" in done.stderr


def test_bytes_flipped_inside_packets_are_counted_as_malformed_not_fatal(tmp_path: Path) -> None:
    data = bytearray(PCAP)
    for start in record_starts(PCAP):
        for offset in (14, 20, 23, 34, 40):  # IP version/IHL, flags, protocol, ports, UDP length
            data[start + 16 + offset] ^= 0xFF
    done = replay(tmp_path, "flipped.pcap", bytes(data))
    assert done.returncode == 0
    assert packets_read(done.stderr) == len(FRAMES)
    assert re.search(r"[1-9][\d,]* malformed", done.stderr), done.stderr


def test_unknown_pcapng_blocks_are_skipped_and_counted(tmp_path: Path) -> None:
    garbage = b"".join(
        struct.pack("<II", 0x0BADBAD0 + i, 16) + b"junk" + struct.pack("<I", 16) for i in range(3)
    )
    first_epb = PCAPNG.index(struct.pack("<I", 6))
    done = replay(tmp_path, "blocks.pcapng", PCAPNG[:first_epb] + garbage + PCAPNG[first_epb:])
    assert done.returncode == 0
    assert packets_read(done.stderr) == PCAPNG_PACKETS
    assert "4 unknown pcapng blocks skipped" in done.stderr  # 3 here, and the custom block


def test_pcapng_block_with_impossible_length_stops_that_file_and_says_where(tmp_path: Path) -> None:
    first_epb = PCAPNG.index(struct.pack("<I", 6))
    data = PCAPNG[:first_epb] + struct.pack("<II", 6, 0xFFFFFFF0) + bytes(64)
    done = replay(tmp_path, "huge.pcapng", data)
    assert done.returncode == 0
    assert f"impossible length {0xFFFFFFF0}" in done.stderr
    assert f"block at byte {first_epb}" in done.stderr


def test_garbage_after_the_section_header_is_reported_not_raised(tmp_path: Path) -> None:
    shb_end = struct.unpack_from("<I", PCAPNG, 4)[0]
    done = replay(tmp_path, "garbage.pcapng", PCAPNG[:shb_end] + bytes(range(256)) * 8)
    assert done.returncode == 0
    assert "damaged, rest of file skipped" in done.stderr


def test_absurd_record_length_stops_that_file_and_says_where(tmp_path: Path) -> None:
    data = bytearray(PCAP)
    third = record_starts(PCAP)[2]
    data[third + 8 : third + 12] = struct.pack("<I", 0x7FFFFFFF)
    done = replay(tmp_path, "absurd.pcap", bytes(data))
    assert done.returncode == 0
    assert packets_read(done.stderr) == 2
    assert f"record at byte {third} claims {0x7FFFFFFF} bytes" in done.stderr


def test_absurd_original_length_counts_at_most_the_largest_frame(tmp_path: Path) -> None:
    data = bytearray(PCAP)
    for start in record_starts(PCAP):
        data[start + 12 : start + 16] = struct.pack("<I", 0xFFFFFFFF)
    done = replay(tmp_path, "orig.pcap", bytes(data))
    assert done.returncode == 0
    counted = re.search(r"packets \(([\d,]+) bytes\)", done.stderr)
    assert counted
    assert int(counted.group(1).replace(",", "")) <= len(FRAMES) * 262_144


def test_unsupported_link_type_is_named_and_its_packets_skipped(tmp_path: Path) -> None:
    done = replay(tmp_path, "radiotap.pcap", pcap_bytes(FRAMES, linktype=127))
    assert done.returncode == 0
    assert "link types [127] not supported" in done.stderr
    assert done.stdout == ""


def test_capture_with_a_header_and_no_packet_is_an_empty_replay(tmp_path: Path) -> None:
    done = replay(tmp_path, "header-only.pcap", PCAP[:24])
    assert done.returncode == 0
    assert packets_read(done.stderr) == 0


def test_interfaces_alternating_with_packets_do_not_hang(tmp_path: Path) -> None:
    shb = PCAPNG[: struct.unpack_from("<I", PCAPNG, 4)[0]]
    idb = struct.pack("<IIHHII", 1, 20, 1, 0, 65535, 20)
    frame = FRAMES[0] + bytes(-len(FRAMES[0]) % 4)
    epbs = [
        struct.pack("<IIIIIII", 6, 32 + len(frame), i, 0, i, len(FRAMES[0]), len(FRAMES[0]))
        + frame
        + struct.pack("<I", 32 + len(frame))
        for i in range(20_000)
    ]
    done = replay(tmp_path, "idbs.pcapng", shb + b"".join(idb + epb for epb in epbs))
    assert done.returncode == 0
    assert packets_read(done.stderr) == 20_000


def test_thousands_of_tiny_sections_stop_with_a_message_not_a_hang(tmp_path: Path) -> None:
    first_epb = PCAPNG.index(struct.pack("<I", 6))
    epb_end = first_epb + struct.unpack_from("<I", PCAPNG, first_epb + 4)[0]
    section = PCAPNG[:epb_end]  # section header, interface, one packet
    done = replay(tmp_path, "sections.pcapng", section * 20_000)
    assert done.returncode == 0
    assert packets_read(done.stderr) == MAX_BATCH_SPLITS + 1
    assert "merge captures with mergecap" in done.stderr


# ---------------------------------------------------------------- exit 2: not a capture


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "empty or too short"),
        (b"\xd4\xc3", "empty or too short"),
        (b"# notes from the lab\nnot a capture\n", "not a pcap or pcapng file"),
        (PCAP[:10], "pcap header cut short"),
        (b"%PDF-1.7\n" + bytes(100), "not a pcap or pcapng file"),
    ],
)
def test_not_a_capture_exits_2_naming_the_file_and_why(tmp_path: Path, content: bytes, why: str) -> None:
    done = replay(tmp_path, "notes.pcap", content)
    assert done.returncode == 2
    assert "notes.pcap" in done.stderr
    assert why in done.stderr


def test_packet_before_any_interface_exits_2(tmp_path: Path) -> None:
    shb_end = struct.unpack_from("<I", PCAPNG, 4)[0]
    first_epb = PCAPNG.index(struct.pack("<I", 6))
    done = replay(tmp_path, "no-idb.pcapng", PCAPNG[:shb_end] + PCAPNG[first_epb:])
    assert done.returncode == 2
    assert "no-idb.pcapng" in done.stderr
    assert "before any interface description block" in done.stderr


def test_a_folder_instead_of_a_capture_exits_2(tmp_path: Path) -> None:
    (tmp_path / "captures").mkdir()
    config = tmp_path / "mouchard.yaml"
    config.write_text(f"state_dir: {tmp_path}/state\n")
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "replay", str(tmp_path / "captures"), "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 2
    assert "is a folder" in done.stderr
