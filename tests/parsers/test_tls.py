"""gateway.parsers.tls: real ClientHellos checked against tshark, hand-built edge cases, fuzzing."""

from __future__ import annotations

import functools
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.parsers.tls import (
    MAX_HELLO_BYTES,
    ClientHello,
    HelloReassembler,
    client_hello_needed,
    handshake_message_missing,
    parse_client_hello,
    parse_client_hello_handshake,
)
from tests.conftest import CAPTURES

TSHARK_PREFS = ["-n", "-o", "tcp.desegment_tcp_streams:TRUE", "-o", "tls.desegment_ssl_records:TRUE"]
EXT_ECH = 0xFE0D


# --- hand-built hellos ----------------------------------------------------------------------------


def vec8(data: bytes) -> bytes:
    return bytes([len(data)]) + data


def vec16(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


def extension(kind: int, data: bytes) -> bytes:
    return struct.pack("!H", kind) + vec16(data)


def sni(name: bytes, name_type: int = 0) -> bytes:
    return extension(0, vec16(bytes([name_type]) + vec16(name)))


def alpn(*protocols: bytes) -> bytes:
    return extension(16, vec16(b"".join(vec8(protocol) for protocol in protocols)))


def supported_versions(*versions: int) -> bytes:
    return extension(43, vec8(b"".join(struct.pack("!H", version) for version in versions)))


def ech_outer() -> bytes:
    """An outer ECHClientHello (draft-ietf-tls-esni): HPKE suite, config id, enc, payload."""
    return extension(
        EXT_ECH, b"\x00" + struct.pack("!HH", 0x0001, 0x0001) + b"\x2a" + vec16(bytes(32)) + vec16(bytes(208))
    )


def hello_message(extensions: list[bytes] | None, legacy_version: int = 0x0303) -> bytes:
    body = struct.pack("!H", legacy_version) + bytes(range(32)) + vec8(bytes(32))
    body += vec16(b"\x13\x01\x13\x02\xc0\x2f") + vec8(b"\x00")
    if extensions is not None:
        body += vec16(b"".join(extensions))
    return b"\x01" + len(body).to_bytes(3, "big") + body


def records(message: bytes, *sizes: int, content_type: int = 22) -> bytes:
    """`message` cut into TLS records of the given fragment sizes (the rest in a last record)."""
    out = bytearray()
    offset = 0
    for size in (*sizes, len(message)):
        fragment = message[offset : offset + size]
        if fragment:
            out += bytes([content_type]) + b"\x03\x01" + vec16(fragment)
        offset += len(fragment)
    return bytes(out)


MESSAGE = hello_message(
    [
        extension(0x0A0A, b""),  # GREASE
        sni(b"Device.Cloud.Example.COM."),
        alpn(b"h2", b"http/1.1"),
        supported_versions(0x3A3A, 0x0304, 0x0303),
        extension(0x0015, bytes(40)),  # padding
    ]
)
STREAM = records(MESSAGE)
EXPECTED = ClientHello(
    server_name="device.cloud.example.com",
    alpn=("h2", "http/1.1"),
    ech=False,
    ech_outer_name=None,
    version=0x0304,
    legacy_version=0x0303,
)


def test_one_record() -> None:
    assert parse_client_hello(STREAM) == EXPECTED
    assert client_hello_needed(STREAM) == 0
    assert parse_client_hello_handshake(MESSAGE) == EXPECTED


def test_trailing_bytes_after_the_hello_are_ignored() -> None:
    assert parse_client_hello(STREAM + records(b"\x17" * 50, content_type=23)) == EXPECTED
    assert parse_client_hello_handshake(MESSAGE + b"\x02\x00") == EXPECTED


def test_hello_split_across_records() -> None:
    for sizes in [(1,), (3,), (4,), (100,), (len(MESSAGE) - 1,), (1, 1, 1, 1, 1), (50, 50, 50)]:
        assert parse_client_hello(records(MESSAGE, *sizes)) == EXPECTED, sizes


def test_hello_split_across_segments() -> None:
    reassembler = HelloReassembler()
    assert reassembler.feed(STREAM[:40]) is None
    assert not reassembler.finished
    assert reassembler.needed == len(STREAM) - 40
    assert reassembler.feed(STREAM[40:]) == EXPECTED
    assert reassembler.finished
    assert reassembler.feed(STREAM) is None  # one hello per stream


def test_hello_split_across_records_and_segments() -> None:
    stream = records(MESSAGE, 7, 120)
    for cut in range(1, len(stream)):
        reassembler = HelloReassembler()
        assert reassembler.feed(stream[:cut]) is None
        assert reassembler.needed > 0
        assert client_hello_needed(stream[:cut]) == reassembler.needed
        assert reassembler.feed(stream[cut:]) == EXPECTED, cut


def test_one_byte_segments() -> None:
    reassembler = HelloReassembler()
    stream = records(MESSAGE, 2, 30)
    results = [reassembler.feed(stream[index : index + 1]) for index in range(len(stream))]
    assert results[-1] == EXPECTED
    assert results[:-1] == [None] * (len(stream) - 1)


def test_needed_counts_are_lower_bounds() -> None:
    assert client_hello_needed(b"") == 9  # a record header and a handshake header, at least
    assert client_hello_needed(STREAM[:3]) == 6
    assert client_hello_needed(STREAM[:5]) == len(MESSAGE)
    assert handshake_message_missing(MESSAGE[:2]) == 2
    assert handshake_message_missing(MESSAGE[:10]) == len(MESSAGE) - 10
    assert handshake_message_missing(MESSAGE) == 0
    assert handshake_message_missing(b"\x02\x00\x00\x01") == -1


def test_ech() -> None:
    message = hello_message([sni(b"cloudflare-ech.com"), ech_outer(), supported_versions(0x0304)])
    hello = parse_client_hello(records(message))
    assert hello is not None
    assert hello.ech
    assert hello.server_name == hello.ech_outer_name == "cloudflare-ech.com"
    assert hello.version == 0x0304


def test_ech_without_sni() -> None:
    hello = parse_client_hello_handshake(hello_message([ech_outer()]))
    assert hello is not None
    assert (hello.ech, hello.server_name, hello.ech_outer_name) == (True, None, None)


def test_hello_without_extensions() -> None:
    hello = parse_client_hello(records(hello_message(None, legacy_version=0x0300)))
    assert hello == ClientHello(None, (), False, None, 0x0300, 0x0300)


def test_first_sni_and_first_occurrence_win() -> None:
    entries = vec16(
        b"\x01" + vec16(b"not-a-host") + b"\x00" + vec16(b"first.example") + b"\x00" + vec16(b"x.y")
    )
    message = hello_message([extension(0, entries), sni(b"second.example")])
    hello = parse_client_hello_handshake(message)
    assert hello is not None
    assert hello.server_name == "first.example"


@pytest.mark.parametrize(
    "name", [b"bad name.example", b"caf\xc3\xa9.example", b"a" * 254, b"", b"x\x00.example", b"a..b"]
)
def test_invalid_server_names_give_no_name(name: bytes) -> None:
    hello = parse_client_hello_handshake(hello_message([sni(name), alpn(b"h2")]))
    assert hello is not None
    assert hello.server_name is None
    assert hello.alpn == ("h2",)


def test_alpn_is_bounded_and_tolerates_bytes() -> None:
    protocols = [bytes([0xFF, index]) for index in range(40)]
    hello = parse_client_hello_handshake(hello_message([alpn(b"", *protocols)]))
    assert hello is not None
    assert len(hello.alpn) == 16
    assert hello.alpn[0] == "\\xff\\x00"


def test_grease_only_versions_fall_back_to_legacy() -> None:
    hello = parse_client_hello_handshake(hello_message([supported_versions(0x1A1A)], legacy_version=0x0301))
    assert hello is not None
    assert hello.version == 0x0301


@pytest.mark.parametrize(
    "stream",
    [
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        records(MESSAGE, content_type=23),
        b"\x16\x02\x00" + STREAM[3:],  # record version 2.0
        b"\x16\x03\x01\x00\x00" + STREAM,  # an empty handshake record
        b"\x16\x03\x01\x40\x01" + bytes(16385),  # longer than 2^14
        records(b"\x02" + MESSAGE[1:]),  # a ServerHello
        b"\x80\x2e\x01\x00\x02",  # SSLv2-compatible hello: no extensions, so no name
    ],
    ids=[
        "http",
        "application-data",
        "bad-version",
        "empty-record",
        "record-too-long",
        "server-hello",
        "sslv2",
    ],
)
def test_not_a_client_hello(stream: bytes) -> None:
    assert parse_client_hello(stream) is None
    assert client_hello_needed(stream) == -1
    reassembler = HelloReassembler()
    assert reassembler.feed(stream) is None
    assert reassembler.finished


def test_hello_larger_than_the_bound_is_given_up() -> None:
    big = hello_message([sni(b"big.example"), extension(0x0015, bytes(MAX_HELLO_BYTES))])
    assert parse_client_hello_handshake(big) is None
    stream = records(big, *([16000] * 3))
    assert parse_client_hello(stream) is None
    assert client_hello_needed(stream) == -1


def test_hello_filling_the_bound_on_the_wire_is_given_up() -> None:
    # The message fits the bound, but its 1-byte records take five times the stream bytes.
    message = hello_message([sni(b"x.example"), extension(0x0015, bytes(4000))])
    stream = records(message, *([1] * len(message)))
    reassembler = HelloReassembler()
    assert reassembler.feed(stream[:MAX_HELLO_BYTES]) is None
    assert reassembler.finished
    assert reassembler.needed == -1


@pytest.mark.parametrize("message", [MESSAGE, hello_message([sni(b"a.example"), ech_outer()])])
def test_every_truncation_never_raises_and_never_invents(message: bytes) -> None:
    stream = records(message, 60)
    for end in range(len(stream)):
        assert parse_client_hello(stream[:end]) is None
        assert client_hello_needed(stream[:end]) > 0
    for end in range(len(message)):
        assert parse_client_hello_handshake(message[:end]) is None


def test_inner_lengths_that_overrun_give_none() -> None:
    offset = 4 + 2 + 32 + 33 + 2 + 6 + 2  # the start of the extensions block
    for index in range(offset, len(MESSAGE)):
        mutated = bytearray(MESSAGE)
        mutated[index] = 0xFF
        parse_client_hello_handshake(bytes(mutated))  # never raises, whatever the length bytes say


# --- property tests -------------------------------------------------------------------------------


@given(st.binary(max_size=2000))
@settings(max_examples=500)
def test_random_bytes_never_raise(data: bytes) -> None:
    parse_client_hello(data)
    client_hello_needed(data)
    parse_client_hello_handshake(data)
    parse_client_hello_handshake(b"\x01" + len(data).to_bytes(3, "big") + data)
    parse_client_hello(records(data))


@given(st.lists(st.tuples(st.integers(0, len(STREAM) - 1), st.integers(0, 255)), min_size=1, max_size=6))
@settings(max_examples=500)
def test_mutated_hellos_never_raise(changes: list[tuple[int, int]]) -> None:
    mutated = bytearray(STREAM)
    for index, value in changes:
        mutated[index] = value
    hello = parse_client_hello(bytes(mutated))
    if hello is not None and hello.server_name is not None:
        assert hello.server_name == hello.server_name.lower()
        assert hello.server_name.isascii()


@given(st.lists(st.integers(1, 200), max_size=12), st.lists(st.integers(1, 300), max_size=12))
@settings(max_examples=300)
def test_any_record_and_segment_split_gives_the_same_hello(record_sizes: list[int], cuts: list[int]) -> None:
    stream = records(MESSAGE, *record_sizes)
    reassembler = HelloReassembler()
    results = []
    offset = 0
    for size in (*cuts, len(stream)):
        results.append(reassembler.feed(stream[offset : offset + size]))
        offset += size
    assert [result for result in results if result is not None] == [EXPECTED]


# --- real captures, with tshark as the oracle ----------------------------------------------------


def capture_params() -> list[Any]:
    if not CAPTURES.is_dir():
        reason = f"real captures not found at {CAPTURES} (they sit beside the checkout: ../shared/captures)"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason))]
    files = sorted(p for p in CAPTURES.rglob("*") if p.suffix in (".pcap", ".pcapng"))
    return [pytest.param(path, id=str(path.relative_to(CAPTURES))) for path in files]


def tshark_fields(capture: Path, display_filter: str, *fields: str) -> list[list[str]]:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (Debian package tshark): it is this test's oracle")
    command = ["tshark", *TSHARK_PREFS, "-r", str(capture), "-Y", display_filter, "-T", "fields"]
    command += [argument for field in fields for argument in ("-e", field)]
    command += ["-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
    out = subprocess.run(command, capture_output=True, check=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines()]


@functools.cache
def client_streams(capture: Path) -> dict[tuple[str, str], list[bytes]]:
    """Each TCP stream's payloads per sending port, in order, retransmissions left out."""
    streams: dict[tuple[str, str], list[bytes]] = {}
    seen: set[tuple[str, str, str]] = set()
    for stream, port, seq, payload in tshark_fields(
        capture, "tcp.len > 0", "tcp.stream", "tcp.srcport", "tcp.seq", "tcp.payload"
    ):
        if (stream, port, seq) not in seen:
            seen.add((stream, port, seq))
            streams.setdefault((stream, port), []).append(bytes.fromhex(payload.replace(":", "")))
    return streams


def expected_hello(row: list[str]) -> tuple[str | None, tuple[str, ...], bool, int]:
    _stream, _port, name, protocols, versions, legacy, extension_types = row
    listed = [int(v, 16) for v in versions.split(",") if v and int(v, 16) & 0x0F0F != 0x0A0A]
    ech = str(EXT_ECH) in extension_types.split(",")
    return (
        name or None,
        tuple(protocols.split(",")) if protocols else (),
        ech,
        (listed or [int(legacy, 16)])[0],
    )


def reassemble(segments: list[bytes]) -> ClientHello | None:
    reassembler = HelloReassembler()
    for segment in segments:
        hello = reassembler.feed(segment)
        if hello is not None or reassembler.finished:
            return hello
    return None


@pytest.mark.parametrize("capture", capture_params())
def test_client_hellos_match_tshark(capture: Path) -> None:
    fields = (
        "tcp.stream",
        "tcp.srcport",
        "tls.handshake.extensions_server_name",
        "tls.handshake.extensions_alpn_str",
        "tls.handshake.extensions.supported_version",
        "tls.handshake.version",
        "tls.handshake.extension.type",
    )
    for row in tshark_fields(capture, "tcp && tls.handshake.type == 1", *fields):
        segments = client_streams(capture)[(row[0], row[1])]
        hello = reassemble(segments)
        assert hello is not None, row
        name, protocols, ech, version = expected_hello(row)
        assert (hello.server_name, hello.alpn, hello.ech, hello.version) == (name, protocols, ech, version)
        stream = b"".join(segments)
        assert parse_client_hello(stream) == hello
        for cut in range(1, min(len(stream), 700), 7):
            assert reassemble([stream[:cut], stream[cut:]]) == hello


def test_the_captures_hold_many_hellos() -> None:
    """Guards the oracle test above against silently checking nothing."""
    if not CAPTURES.is_dir():
        pytest.skip(f"real captures not found at {CAPTURES}")
    rows = tshark_fields(CAPTURES / "ndpi" / "android.pcap", "tcp && tls.handshake.type == 1", "tcp.stream")
    assert len(rows) >= 15
