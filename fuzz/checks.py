# ruff: noqa: S101 - an assertion that fails is how a check reports a broken promise to atheris and pytest
"""The property each harness checks on one input, shared by atheris (fuzz/fuzz_*.py) and pytest.

A check returns quietly or raises AssertionError (a broken promise) or any other exception (a crash):
both are findings. A damaged capture may raise CaptureError, the CLI's exit 2. tests/fuzz/ replays
every saved finding through the same check, so a fixed crash stays fixed.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fuzz.common import LINK_TYPES, batch_of, protect_initial, split_packets
from gateway.app import Gateway
from gateway.config import default_config
from gateway.enrichers.macvendor import MacVendorDB
from gateway.enrichers.orgs import OrgDB
from gateway.parsers.dhcp import (
    BOOTP_HEADER_LEN,
    MAGIC_COOKIE,
    MAX_ADDRESSES,
    MAX_FQDN,
    MAX_HOSTNAME,
    MAX_PARAMS,
    parse_dhcp,
)
from gateway.parsers.dns import (
    MAX_ANSWERS,
    MAX_CNAME_DEPTH,
    MAX_NAME_CHARS,
    parse_dns_query,
    parse_dns_response,
    parse_dns_tcp,
)
from gateway.parsers.headers import Headers, decode
from gateway.parsers.http import parse_http_host
from gateway.parsers.mdns import MAX_RECORDS, MAX_TXT_KEYS, parse_mdns, txt_properties
from gateway.parsers.ndp import MAX_OPTIONS, parse_router_advertisement
from gateway.parsers.quic import QuicInitialReassembler, parse_quic_initial
from gateway.parsers.tls import (
    MAX_ALPN,
    HelloReassembler,
    client_hello_needed,
    handshake_message_missing,
    parse_client_hello,
    parse_client_hello_handshake,
)
from gateway.replay import replay_files
from gateway.sinks.lineproto import MemorySink
from gateway.sources.capfile import MAX_WIRE, PAD, CaptureError, ReadStats, open_capture

MEASUREMENTS = frozenset({"traffic", "dns", "device", "event"})
# Header fields that must not depend on the bytes after a packet (what a neighbour holds).
COMPARED = (
    "has_mac",
    "src_mac",
    "dst_mac",
    "is_ip",
    "malformed",
    "ipver",
    "src_hi",
    "src_lo",
    "dst_hi",
    "dst_lo",
    "proto",
    "fragment",
    "later_fragment",
    "sport",
    "dport",
    "tcp_flags",
    "payload_len",
)


def check_dns(data: bytes) -> None:
    for answer in (parse_dns_response(data), parse_dns_tcp(data)):
        if answer is not None:
            assert len(answer.qname) <= MAX_NAME_CHARS
            assert len(answer.addresses) <= MAX_ANSWERS
            assert len(answer.cnames) <= MAX_CNAME_DEPTH
    qname = parse_dns_query(data)
    assert qname is None or len(qname) <= MAX_NAME_CHARS


def check_mdns(data: bytes) -> None:
    msg = parse_mdns(data)
    if msg is not None:
        assert len(msg.questions) <= MAX_RECORDS
        assert all(len(text.properties) <= MAX_TXT_KEYS for text in msg.texts)
        msg.properties()
    assert len(txt_properties(data)) <= MAX_TXT_KEYS


def check_dhcp(data: bytes) -> None:
    # Inputs starting with 0x01 get a valid BOOTP head and cookie, so the option walk is reached.
    if data[:1] == b"\x01" and len(data) > 1:
        data = b"\x01\x01\x06\x00" + bytes(BOOTP_HEADER_LEN - 4) + MAGIC_COOKIE + data[1:]
    msg = parse_dhcp(data)
    if msg is not None:
        assert msg.hostname is None or len(msg.hostname) <= MAX_HOSTNAME
        assert msg.client_fqdn is None or len(msg.client_fqdn) <= MAX_FQDN
        assert len(msg.param_request_list) <= MAX_PARAMS
        assert len(msg.routers) <= MAX_ADDRESSES
        assert len(msg.dns_servers) <= MAX_ADDRESSES
        assert isinstance(msg.fingerprint, str)


def check_tls(data: bytes) -> None:
    whole = parse_client_hello(data)
    parse_client_hello_handshake(data)
    client_hello_needed(data)
    handshake_message_missing(data)
    if whole is not None:
        assert len(whole.alpn) <= MAX_ALPN
    # The same bytes cut into segments (size from the first byte): the same ClientHello, or none yet.
    step = (data[0] if data else 1) or 1
    assembler = HelloReassembler()
    found = None
    for start in range(0, len(data), step):
        found = assembler.feed(data[start : start + step]) or found
        if assembler.finished:
            break
    if whole is not None and found is not None:
        assert found == whole


def check_quic(data: bytes) -> None:
    # Inputs starting with 0x00 are frames sealed in a valid Initial, so the AEAD lets them through.
    datagram = protect_initial(data[1:]) if data[:1] == b"\x00" else data
    parse_quic_initial(datagram)
    reassembler = QuicInitialReassembler(max_connections=4)
    reassembler.feed(datagram)
    reassembler.feed(datagram)
    assert len(reassembler) <= 4


def check_http(data: bytes) -> None:
    host = parse_http_host(data)
    assert host is None or (0 < len(host) <= 253 and host == host.lower())


def check_ndp(data: bytes) -> None:
    advert = parse_router_advertisement(b"\x86" + data)
    assert advert is None or len(advert.prefixes) <= MAX_OPTIONS
    parse_router_advertisement(data)


def _inside(h: Headers, offset: np.ndarray, caplen: np.ndarray) -> None:
    end = offset + np.maximum(caplen, 0)
    used = h.payload_len > 0
    assert (h.payload[used] >= offset[used]).all()
    assert (h.payload[used] + h.payload_len[used] <= end[used]).all()


def check_headers(data: bytes) -> None:
    """Each packet decodes the same alone as in a batch: no read past its captured bytes."""
    if len(data) < 4:
        return
    count = 1 + data[0] % 8
    links = [LINK_TYPES[b % len(LINK_TYPES)] for b in data[1 : 1 + count]]
    body = data[1 + count :]
    packets = split_packets(body[2 * count :], body[: 2 * count])
    if not packets:
        return
    batch = batch_of(packets, links)
    together = decode(batch)
    _inside(together, batch.offset, batch.caplen)
    for i, packet in enumerate(packets):
        alone = decode(batch_of([packet], [links[i % len(links)]]))
        for name in COMPARED:
            assert getattr(alone, name)[0] == getattr(together, name)[i], (name, i)


@functools.cache
def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="mouchard-fuzz-")) / "input.cap"


def check_capfile(data: bytes) -> None:
    path = _scratch()
    path.write_bytes(data)
    stats = ReadStats()
    seen = 0
    try:
        for batch in open_capture(path, stats):
            n = len(batch)
            assert batch.caplen.shape == batch.wirelen.shape == batch.ts_ns.shape == (n,)
            assert (batch.offset >= 0).all()
            assert (batch.caplen >= 0).all()
            assert (batch.offset + batch.caplen <= len(batch.buf) - PAD).all()
            assert (batch.wirelen >= batch.caplen).all()
            assert (batch.wirelen <= max(MAX_WIRE, int(batch.caplen.max(initial=0)))).all()
            decode(batch)
            seen += n
    except CaptureError:
        return
    assert seen == stats.packets
    assert stats.bytes_read + stats.truncated_tail <= len(data)


@functools.cache
def _tables() -> tuple[OrgDB, MacVendorDB]:
    return OrgDB.load(), MacVendorDB.load()


def fresh_gateway(sink: MemorySink) -> Gateway:
    """A Gateway with the default configuration and no inventory, writing to `sink`."""
    orgs, vendors = _tables()
    load_orgs, load_vendors = OrgDB.load, MacVendorDB.load
    # Loading the tables takes 0.4 s; they are read-only, so every Gateway here shares one copy.
    OrgDB.load = lambda *_a, **_k: orgs  # type: ignore[method-assign]
    MacVendorDB.load = lambda *_a, **_k: vendors  # type: ignore[method-assign]
    try:
        return Gateway(default_config(), sink)
    finally:
        OrgDB.load, MacVendorDB.load = load_orgs, load_vendors  # type: ignore[method-assign]


def run_gateway(path: Path) -> MemorySink:
    """Replay `path` through a fresh Gateway into memory."""
    sink = MemorySink()
    replay_files(fresh_gateway(sink), [path])
    return sink


def check_gateway(data: bytes) -> None:
    path = _scratch()
    path.write_bytes(data)
    try:
        sink = run_gateway(path)
    except CaptureError:
        return
    for line in sink.lines:
        assert "\n" not in line
        assert line.split(",", 1)[0] in MEASUREMENTS, line


CHECKS: dict[str, Callable[[bytes], None]] = {
    "dns": check_dns,
    "mdns": check_mdns,
    "dhcp": check_dhcp,
    "tls": check_tls,
    "quic": check_quic,
    "http": check_http,
    "ndp": check_ndp,
    "headers": check_headers,
    "capfile": check_capfile,
    "gateway": check_gateway,
}
