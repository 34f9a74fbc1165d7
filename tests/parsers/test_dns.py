"""gateway.parsers.dns: real responses checked against tshark, hand-built edge cases, fuzzing."""

from __future__ import annotations

import functools
import ipaddress
import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.parsers.dns import (
    MAX_ANSWERS,
    MAX_CNAME_DEPTH,
    MAX_POINTER_JUMPS,
    DnsAnswer,
    normalise_hostname,
    parse_dns_query,
    parse_dns_response,
    parse_dns_tcp,
)
from tests.conftest import CAPTURES

TSHARK_PREFS = ["-n", "-o", "dns.desegment_dns_messages:TRUE"]  # name resolution off, defaults pinned
A, CNAME, AAAA = 1, 5, 28


# --- hand-built messages --------------------------------------------------------------------------


def encode_name(name: str) -> bytes:
    labels = [label.encode() for label in name.split(".") if label]
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"


def record(owner: str | bytes, rtype: int, ttl: int, rdata: bytes, rclass: int = 1) -> bytes:
    owner_bytes = owner if isinstance(owner, bytes) else encode_name(owner)
    return owner_bytes + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata


def a_record(owner: str, address: str, ttl: int = 300) -> bytes:
    return record(owner, A, ttl, ipaddress.ip_address(address).packed)


def aaaa_record(owner: str, address: str, ttl: int = 300) -> bytes:
    return record(owner, AAAA, ttl, ipaddress.ip_address(address).packed)


def cname_record(owner: str, target: str, ttl: int = 300) -> bytes:
    return record(owner, CNAME, ttl, encode_name(target))


def message(
    qname: str | bytes,
    answers: list[bytes],
    flags: int = 0x8180,
    qtype: int = A,
    ancount: int | None = None,
    qdcount: int = 1,
) -> bytes:
    count = len(answers) if ancount is None else ancount
    header = struct.pack("!HHHHHH", 0x1234, flags, qdcount, count, 0, 0)
    question = (qname if isinstance(qname, bytes) else encode_name(qname)) + struct.pack("!HH", qtype, 1)
    return header + question + b"".join(answers)


SAMPLE = message(
    "WWW.Example.COM.",
    [
        cname_record("www.example.com", "edge.cdn.example.net", ttl=600),
        a_record("edge.cdn.example.net", "192.0.2.10", ttl=60),
        aaaa_record("edge.cdn.example.net", "2001:db8:0:0:0:0:0:1", ttl=120),
    ],
)


def test_sample_maps_addresses_to_question_name() -> None:
    answer = parse_dns_response(SAMPLE)
    assert answer == DnsAnswer(
        qname="www.example.com",
        qtype=A,
        rcode=0,
        addresses=(("192.0.2.10", "edge.cdn.example.net"), ("2001:db8::1", "edge.cdn.example.net")),
        cnames=("edge.cdn.example.net",),
        ttl=60,
        truncated=False,
    )


def test_compressed_names_are_followed() -> None:
    # The answer's owner is a pointer to the question name (offset 12), its CNAME target ends in one.
    header = struct.pack("!HHHHHH", 1, 0x8180, 1, 2, 0, 0)
    question = encode_name("api.example.com") + struct.pack("!HH", A, 1)
    cname_target = b"\x03cdn" + b"\xc0\x10"  # "cdn" + pointer to "example.com" inside the question
    first = record(b"\xc0\x0c", CNAME, 30, cname_target)
    target_offset = 12 + len(question) + 12  # where "cdn..." sits: after the first answer's fixed part
    second = record(bytes([0xC0, target_offset]), A, 40, bytes([198, 51, 100, 7]))
    answer = parse_dns_response(header + question + first + second)
    assert answer is not None
    assert answer.qname == "api.example.com"
    assert answer.cnames == ("cdn.example.com",)
    assert answer.addresses == (("198.51.100.7", "cdn.example.com"),)
    assert answer.ttl == 30


def test_cname_chain_in_any_order() -> None:
    answers = [
        a_record("c3.example", "203.0.113.3", ttl=5),
        cname_record("c2.example", "c3.example"),
        cname_record("q.example", "c1.example"),
        cname_record("c1.example", "c2.example"),
        a_record("unrelated.example", "203.0.113.99"),  # not on the chain: never attributed to q
    ]
    answer = parse_dns_response(message("q.example", answers))
    assert answer is not None
    assert answer.cnames == ("c1.example", "c2.example", "c3.example")
    assert answer.addresses == (("203.0.113.3", "c3.example"),)
    assert answer.ttl == 5


def test_cname_loop_terminates() -> None:
    answers = [cname_record("q.example", "c1.example"), cname_record("c1.example", "q.example")]
    answer = parse_dns_response(message("q.example", answers))
    assert answer is not None
    assert answer.cnames == ("c1.example",)
    assert answer.addresses == ()


def test_cname_chain_depth_is_bounded() -> None:
    hops = MAX_CNAME_DEPTH + 5
    names = ["q.example"] + [f"c{index}.example" for index in range(hops)]
    answers = [cname_record(names[i], names[i + 1]) for i in range(hops)]
    answers.append(a_record(names[-1], "192.0.2.1"))
    answer = parse_dns_response(message("q.example", answers))
    assert answer is not None
    assert answer.cnames == tuple(names[1 : MAX_CNAME_DEPTH + 1])
    assert answer.addresses == ()  # the end of the chain is past the bound


def test_second_cname_of_one_owner_is_ignored() -> None:
    answers = [
        cname_record("q.example", "first.example", ttl=100),
        cname_record("q.example", "second.example", ttl=1),
        a_record("first.example", "192.0.2.1", ttl=50),
        a_record("second.example", "192.0.2.2"),
    ]
    answer = parse_dns_response(message("q.example", answers))
    assert answer is not None
    assert answer.addresses == (("192.0.2.1", "first.example"),)
    assert answer.ttl == 50


def test_pointer_to_itself_is_refused() -> None:
    header = struct.pack("!HHHHHH", 1, 0x8180, 1, 0, 0, 0)
    assert parse_dns_response(header + b"\xc0\x0c" + struct.pack("!HH", A, 1)) is None


def test_mutual_pointers_are_refused() -> None:
    header = struct.pack("!HHHHHH", 1, 0x8180, 1, 0, 0, 0)
    # offset 12: label "a" then a pointer to 17; offset 17: a pointer back to 12.
    body = b"\x01a\xc0\x11" + b"\x00" + b"\xc0\x0c"
    assert parse_dns_response(header + body + struct.pack("!HH", A, 1)) is None


def test_loop_in_an_answer_keeps_what_came_before() -> None:
    good = a_record("q.example", "192.0.2.1")
    looping_owner = b"\xc0" + bytes([12 + len(encode_name("q.example")) + 4 + len(good)])
    bad = record(looping_owner, A, 300, b"\xc0\x00\x02\x02")
    answer = parse_dns_response(message("q.example", [good, bad]))
    assert answer is not None
    assert answer.addresses == (("192.0.2.1", "q.example"),)
    assert answer.truncated


def pointer_chain_name(jumps: int) -> bytes:
    """A question name made of `jumps` pointers, each to the next, ending at "a.example".

    The pointers sit in the question name itself and point forward into a trailing pool, which the
    parser follows like any other pointer; `jumps` of them means `jumps` jumps.
    """
    start = 12 + 2  # the pool starts right after the first pointer
    pool = bytearray()
    for index in range(1, jumps):
        target = start + 2 * index
        pool += bytes([0xC0 | target >> 8, target & 0xFF])
    pool += encode_name("a.example")
    return bytes([0xC0 | start >> 8, start & 0xFF]) + bytes(pool)


def test_pointer_jump_bound_is_exact() -> None:
    # Question = pointer at 12 → pool at 14 (jumps-1 more pointers) → "a.example". The qtype/qclass
    # follow the first pointer, i.e. they overlap the pool: read them where the name ends in place.
    def response(jumps: int) -> bytes:
        name = pointer_chain_name(jumps)
        return struct.pack("!HHHHHH", 1, 0x8180, 1, 0, 0, 0) + name

    ok = parse_dns_response(response(MAX_POINTER_JUMPS))
    assert ok is not None
    assert ok.qname == "a.example"
    assert parse_dns_response(response(MAX_POINTER_JUMPS + 1)) is None


def test_name_longer_than_255_bytes_is_refused() -> None:
    long_name = ".".join(["a" * 63] * 4)  # 4 x 64 + 1 = 257 bytes on the wire
    assert parse_dns_response(message(long_name, [])) is None
    fits = ".".join(["a" * 63] * 3 + ["a" * 61])  # 255 bytes on the wire, 253 characters
    answer = parse_dns_response(message(fits, []))
    assert answer is not None
    assert len(answer.qname) == 253


@pytest.mark.parametrize("label", [b"bad name", b"caf\xc3\xa9", b"a.b", b"x\x00y", b"*"])
def test_invalid_question_names_are_refused(label: bytes) -> None:
    raw = bytes([len(label)]) + label + b"\x07example\x00"
    assert parse_dns_response(message(raw, [a_record("example", "192.0.2.1")])) is None
    assert parse_dns_query(message(raw, [], flags=0x0100)) is None


def test_invalid_owner_or_target_is_skipped() -> None:
    bad_owner = record(b"\x03b d\x07example\x00", A, 300, bytes(4))
    bad_target = record("q.example", CNAME, 300, b"\x04te\xffst\x00")
    answers = [bad_owner, bad_target, a_record("q.example", "192.0.2.5")]
    answer = parse_dns_response(message("q.example", answers))
    assert answer is not None
    assert answer.cnames == ()
    assert answer.addresses == (("192.0.2.5", "q.example"),)
    assert not answer.truncated


def test_nxdomain_without_answers() -> None:
    answer = parse_dns_response(message("nothing.example", [], flags=0x8183))
    assert answer is not None
    assert (answer.rcode, answer.addresses, answer.ttl) == (3, (), None)


def test_tc_flag_is_reported() -> None:
    answer = parse_dns_response(message("q.example", [a_record("q.example", "192.0.2.1")], flags=0x8380))
    assert answer is not None
    assert answer.truncated
    assert answer.addresses == (("192.0.2.1", "q.example"),)


def test_answer_count_larger_than_records_is_a_partial_answer() -> None:
    answer = parse_dns_response(message("q.example", [a_record("q.example", "192.0.2.1")], ancount=3))
    assert answer is not None
    assert answer.truncated
    assert answer.addresses == (("192.0.2.1", "q.example"),)


def test_answers_are_bounded() -> None:
    answers = [a_record("q.example", f"10.0.{i // 256}.{i % 256}") for i in range(MAX_ANSWERS + 10)]
    answer = parse_dns_response(message("q.example", answers))
    assert answer is not None
    assert len(answer.addresses) == MAX_ANSWERS
    assert not answer.truncated


def test_ttl_with_top_bit_counts_as_zero() -> None:
    answer = parse_dns_response(message("q.example", [a_record("q.example", "192.0.2.1", ttl=2**31 + 5)]))
    assert answer is not None
    assert answer.ttl == 0


def test_mdns_cache_flush_class_and_other_classes() -> None:
    flush = record("q.example", A, 120, bytes([192, 0, 2, 1]), rclass=0x8001)
    chaos = record("q.example", A, 120, bytes([192, 0, 2, 2]), rclass=3)
    answer = parse_dns_response(message("q.example", [flush, chaos]))
    assert answer is not None
    assert answer.addresses == (("192.0.2.1", "q.example"),)


def test_bad_rdata_lengths_are_skipped() -> None:
    short_a = record("q.example", A, 300, bytes(3))
    long_aaaa = record("q.example", AAAA, 300, bytes(17))
    answer = parse_dns_response(
        message("q.example", [short_a, long_aaaa, a_record("q.example", "192.0.2.9")])
    )
    assert answer is not None
    assert answer.addresses == (("192.0.2.9", "q.example"),)


@pytest.mark.parametrize(
    ("flags", "qdcount"),
    [(0x0100, 1), (0x8980, 1), (0xA980, 1), (0x8180, 0), (0x8180, 5)],
    ids=["query", "opcode-iquery", "opcode-update", "no-question", "too-many-questions"],
)
def test_messages_that_are_no_usable_response(flags: int, qdcount: int) -> None:
    assert parse_dns_response(message("q.example", [], flags=flags, qdcount=qdcount)) is None


def test_second_question_is_skipped() -> None:
    extra_question = encode_name("other.example") + struct.pack("!HH", A, 1)
    raw = message("q.example", [extra_question + a_record("q.example", "192.0.2.1")], qdcount=2, ancount=1)
    answer = parse_dns_response(raw)
    assert answer is not None
    assert answer.qname == "q.example"
    assert answer.addresses == (("192.0.2.1", "q.example"),)


def test_query() -> None:
    assert parse_dns_query(message("Printer.Example.", [], flags=0x0100)) == "printer.example"
    assert parse_dns_query(SAMPLE) is None  # a response
    assert parse_dns_query(b"\x00" * 11) is None


def test_tcp_length_prefix() -> None:
    framed = struct.pack("!H", len(SAMPLE)) + SAMPLE
    assert parse_dns_tcp(framed) == parse_dns_response(SAMPLE)
    cut = parse_dns_tcp(framed[:-10])
    assert cut is not None
    assert cut.truncated
    assert cut.addresses == (("192.0.2.10", "edge.cdn.example.net"),)
    assert parse_dns_tcp(framed + b"\x00\x05extra") == parse_dns_response(SAMPLE)
    assert parse_dns_tcp(b"\x00") is None
    assert parse_dns_tcp(SAMPLE) is None  # no length prefix: the ID is read as a length


def test_every_truncation_of_a_message() -> None:
    full = parse_dns_response(SAMPLE)
    assert full is not None
    for end in range(len(SAMPLE)):
        answer = parse_dns_response(SAMPLE[:end])
        if answer is not None:
            assert answer.qname == full.qname
            assert answer.truncated
            assert set(answer.addresses) <= set(full.addresses)
        parse_dns_tcp(struct.pack("!H", len(SAMPLE)) + SAMPLE[:end])
        parse_dns_query(SAMPLE[:end])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Example.COM.", "example.com"),
        ("_dmarc.example.com", "_dmarc.example.com"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("bücher.example", None),
        ("\u212aelvin.example", None),  # KELVIN SIGN lowercases to an ASCII "k": still refused
        ("a..b", None),
        ("", None),
        (".", None),
        ("a" * 64 + ".example", None),
        ("has space.example", None),
        (".".join(["a" * 63] * 3 + ["a" * 62]), None),  # 254 characters
    ],
)
def test_normalise_hostname(name: str, expected: str | None) -> None:
    assert normalise_hostname(name) == expected


# --- property tests -------------------------------------------------------------------------------


@given(st.binary(max_size=600))
@settings(max_examples=500)
def test_random_bytes_never_raise(payload: bytes) -> None:
    parse_dns_response(payload)
    parse_dns_query(payload)
    parse_dns_tcp(payload)


@given(st.binary(max_size=600))
@settings(max_examples=300)
def test_random_bodies_behind_a_valid_header_never_raise(body: bytes) -> None:
    for flags in (0x8180, 0x0100):
        payload = struct.pack("!HHHHHH", 7, flags, 1, 40, 0, 0) + body
        answer = parse_dns_response(payload)
        if answer is not None:
            assert len(answer.addresses) <= MAX_ANSWERS
            assert len(answer.cnames) <= MAX_CNAME_DEPTH
        parse_dns_query(payload)


@given(st.binary(min_size=16, max_size=16), st.binary(min_size=4, max_size=4))
@settings(max_examples=500)
def test_address_text_is_ipaddress_text(packed6: bytes, packed4: bytes) -> None:
    answers = [record("q.example", AAAA, 1, packed6), record("q.example", A, 1, packed4)]
    answer = parse_dns_response(message("q.example", answers))
    assert answer is not None
    expected = [ipaddress.IPv6Address(packed6).compressed, str(ipaddress.IPv4Address(packed4))]
    assert [address for address, _owner in answer.addresses] == expected


@pytest.mark.parametrize(
    "text", ["::ffff:192.0.2.1", "::192.0.2.1", "::1", "1::", "1:0:1:0:0:1:0:0", "::ffff:0:1"]
)
def test_address_text_edge_cases(text: str) -> None:
    packed = ipaddress.IPv6Address(text).packed
    answer = parse_dns_response(message("q.example", [record("q.example", AAAA, 1, packed)]))
    assert answer is not None
    assert answer.addresses == ((ipaddress.IPv6Address(text).compressed, "q.example"),)


@given(st.lists(st.tuples(st.integers(0, len(SAMPLE) - 1), st.integers(0, 255)), min_size=1, max_size=8))
@settings(max_examples=500)
def test_mutated_messages_never_raise(changes: list[tuple[int, int]]) -> None:
    mutated = bytearray(SAMPLE)
    for index, value in changes:
        mutated[index] = value
    answer = parse_dns_response(bytes(mutated))
    if answer is not None:
        assert normalise_hostname(answer.qname) == answer.qname
        for address, owner in answer.addresses:
            ipaddress.ip_address(address)
            assert owner == answer.qname or owner in answer.cnames


# --- real captures, with tshark as the oracle ----------------------------------------------------


def capture_params() -> list[Any]:
    if not CAPTURES.is_dir():
        reason = f"real captures not found at {CAPTURES} (they sit beside the checkout: ../shared/captures)"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason))]
    files = sorted(p for p in CAPTURES.rglob("*") if p.suffix in (".pcap", ".pcapng"))
    return [pytest.param(path, id=str(path.relative_to(CAPTURES))) for path in files]


def dns_packets(capture: Path, *, responses: bool) -> list[dict[str, Any]]:
    """tshark's reading of the unicast DNS packets (UDP port 53) of `capture`: responses or queries."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (Debian package tshark): it is this test's oracle")
    wanted = "1" if responses else "0"
    return [
        layers
        for layers in _tshark_dns(capture)
        if layers["dns"]["dns.flags_tree"]["dns.flags.response"] == wanted
    ]


@functools.cache
def _tshark_dns(capture: Path) -> list[dict[str, Any]]:
    display_filter = "dns && udp.port == 53"
    command = [
        "tshark",
        *TSHARK_PREFS,
        "-r",
        str(capture),
        "-Y",
        display_filter,
        "-T",
        "json",
        "-J",
        "udp dns",
    ]
    out = subprocess.run(command, capture_output=True, check=True, text=True).stdout
    return [packet["_source"]["layers"] for packet in json.loads(out or "[]")]


def expected_answer(dns: dict[str, Any]) -> tuple[str, set[tuple[str, str]], tuple[str, ...], int | None]:
    """What the parser should find, worked out from tshark's decoded records."""
    qname = next(iter(dns["Queries"].values()))["dns.qry.name"].lower().rstrip(".")
    records = [
        (entry["dns.resp.name"].lower(), int(entry["dns.resp.type"]), int(entry["dns.resp.ttl"]), entry)
        for entry in dns.get("Answers", {}).values()
        if int(entry["dns.resp.class"], 16) & 0x7FFF == 1
    ]
    targets: dict[str, str] = {}
    for owner, rtype, _ttl, entry in records:
        if rtype == CNAME:
            targets.setdefault(owner, entry["dns.cname"].lower())
    chain = [qname]
    while chain[-1] in targets and targets[chain[-1]] not in chain and len(chain) <= MAX_CNAME_DEPTH:
        chain.append(targets[chain[-1]])
    addresses = {
        (ipaddress.ip_address(entry.get("dns.a") or entry["dns.aaaa"]).compressed, owner)
        for owner, rtype, _ttl, entry in records
        if rtype in (A, AAAA) and owner in chain
    }
    used = [
        ttl
        for owner, rtype, ttl, entry in records
        if owner in chain and (rtype in (A, AAAA) or (rtype == CNAME and entry["dns.cname"].lower() in chain))
    ]
    return qname, addresses, tuple(chain[1:]), min(used, default=None)


@pytest.mark.parametrize("capture", capture_params())
def test_responses_match_tshark(capture: Path) -> None:
    for layers in dns_packets(capture, responses=True):
        payload = bytes.fromhex(layers["udp"]["udp.payload"].replace(":", ""))
        answer = parse_dns_response(payload)
        qname, addresses, cnames, ttl = expected_answer(layers["dns"])
        assert answer is not None, qname
        assert (answer.qname, set(answer.addresses), answer.cnames, answer.ttl) == (
            qname,
            addresses,
            cnames,
            ttl,
        )
        assert len(answer.addresses) == len(set(answer.addresses))
        assert answer.truncated == (layers["dns"]["dns.flags_tree"]["dns.flags.truncated"] == "1")
        assert parse_dns_tcp(struct.pack("!H", len(payload)) + payload) == answer


@pytest.mark.parametrize("capture", capture_params())
def test_queries_match_tshark(capture: Path) -> None:
    for layers in dns_packets(capture, responses=False):
        payload = bytes.fromhex(layers["udp"]["udp.payload"].replace(":", ""))
        qname = next(iter(layers["dns"]["Queries"].values()))["dns.qry.name"]
        assert parse_dns_query(payload) == qname.lower().rstrip(".")
        assert parse_dns_response(payload) is None


def test_the_captures_hold_many_responses() -> None:
    """Guards the oracle tests above against silently checking nothing."""
    if not CAPTURES.is_dir():
        pytest.skip(f"real captures not found at {CAPTURES}")
    total = sum(
        len(dns_packets(CAPTURES / name, responses=True))
        for name in ("ndpi/iphone.pcap", "ndpi/android.pcap", "iot_sentinel/D-LinkSensor_Setup-A-1-STA.pcap")
    )
    assert total >= 50
