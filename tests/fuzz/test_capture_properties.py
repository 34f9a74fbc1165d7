"""Capture reading (pcap, pcapng) and header decoding on random and damaged files.

Every batch stays inside its buffer, lengths are sane, the reader accounts for every byte it took,
and a file that is no capture at all raises CaptureError (the CLI's exit 2), nothing else.
"""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from fuzz import checks
from fuzz.common import capture_seeds, frame_seeds, pcap_bytes, pcapng_bytes
from gateway.samples.frames import LinkType
from tests.fuzz.strategies import PARSER, PIPELINE, hostile, mutated

LINKS = [LinkType.ETHERNET, LinkType.RAW, LinkType.LINUX_SLL, LinkType.LINUX_SLL2, 0, 108, 228, 229, 147]
PCAP_HEADS = [struct.pack("<I", 0xA1B2C3D4), struct.pack(">I", 0xA1B23C4D), struct.pack("<I", 0x0A0D0D0A)]


@st.composite
def random_capture(draw: st.DrawFn) -> bytes:
    """A well-formed file of random packets, any link type, pcap or pcapng."""
    packets = draw(st.lists(st.binary(max_size=200), max_size=12))
    link = draw(st.sampled_from(LINKS))
    return (pcapng_bytes if draw(st.booleans()) else pcap_bytes)(packets, link)


@PARSER
@given(st.one_of(random_capture(), mutated(capture_seeds())))
def test_random_and_damaged_captures_read_safely(data: bytes) -> None:
    checks.check_capfile(data)


@PARSER
@given(st.sampled_from(PCAP_HEADS), st.binary(max_size=3000))
def test_garbage_after_a_capture_magic_reads_safely(magic: bytes, rest: bytes) -> None:
    checks.check_capfile(magic + rest)


@PIPELINE
@given(hostile([pcap_bytes(frame_seeds()), pcapng_bytes(frame_seeds())], 3000))
def test_gateway_on_damaged_captures_writes_only_its_measurements(data: bytes) -> None:
    checks.check_gateway(data)
