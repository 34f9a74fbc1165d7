"""Names of destinations, learned from the few packets that carry them.

Per device, the DNS answers it received map addresses to the names it asked for (the question name,
not the CDN's CNAME target). Per flow, the TLS ClientHello or QUIC Initial server name, or the HTTP
Host, names the whole flow, the handshake before it included: flows are named when their bin is
flushed, after the aggregator's lag. A flow's name is its server name if it has one, else the
device's DNS name for the address, else nothing (the address is shown).

Only packets selected with numpy reach the per-packet parsers: DNS from port 53, TCP payloads that
start a TLS handshake record or an HTTP request, UDP datagrams that look like QUIC long-header
Initials, and the later segments of ClientHellos still being reassembled.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from gateway.aggregators.grouping import key_hash, key_hash_one
from gateway.enrichers.packetkeys import payload, receiver, sender
from gateway.parsers.dns import DnsAnswer, parse_dns_query, parse_dns_response, parse_dns_tcp
from gateway.parsers.headers import IPPROTO_TCP, IPPROTO_UDP, Headers
from gateway.parsers.http import parse_http_host
from gateway.parsers.packed import gather_u32
from gateway.parsers.quic import QuicInitialReassembler
from gateway.parsers.tls import ClientHello, HelloReassembler, client_hello_needed, parse_client_hello
from gateway.sources.capfile import PAD, PacketBatch

I64 = npt.NDArray[np.int64]
Array = npt.NDArray[np.generic]
U64 = npt.NDArray[np.uint64]
B = npt.NDArray[np.bool_]
V = TypeVar("V")

# How a name was found: the code kept in rows, and the ``name_source`` tag (DESIGN schema).
SOURCES = ("none", "dns", "sni", "quic", "http", "ech")
SOURCE_NONE, SOURCE_DNS, SOURCE_SNI, SOURCE_QUIC, SOURCE_HTTP, SOURCE_ECH = range(6)
# Names kept per device from DNS answers. A busy phone resolves a few thousand names a day; a device
# flooding DNS answers must not grow memory without end, so the oldest answers go first.
MAX_DNS_NAMES = 200_000
# Flows with a server name kept at once (oldest first out); a flow forgotten while still alive falls
# back to the device's DNS name for its address.
MAX_FLOW_NAMES = 200_000
# ClientHellos being reassembled across TCP segments at once; each holds at most 16 KiB.
MAX_PENDING_HELLOS = 1024
# Parsed DNS answers kept by their bytes (an answer is at most 64 KiB, usually ~100 bytes).
MAX_DNS_CACHE = 4096
# Devices flagged as resolving on their own; as many as devices can be tracked.
MAX_FLAGGED = 10_000
# Interned name strings; a flood of random names clears the table (names are re-learned).
MAX_NAMES = 500_000
# Public names of TLS Encrypted Client Hello front-ends: the outer SNI of a real ECH connection.
ECH_PUBLIC_NAMES = frozenset({"cloudflare-ech.com", "encryptedsni.com", "public.test.defo.ie"})
# Resolvers that speak DNS over HTTPS or TLS: a device talking to these names resolves on its own.
ENCRYPTED_DNS_NAMES = frozenset(
    {
        "dns.google",
        "dns.google.com",
        "cloudflare-dns.com",
        "mozilla.cloudflare-dns.com",
        "chrome.cloudflare-dns.com",
        "one.one.one.one",
        "1dot1dot1dot1.cloudflare-dns.com",
        "dns.quad9.net",
        "dns9.quad9.net",
        "doh.opendns.com",
        "dns.nextdns.io",
        "dns.adguard.com",
        "dns.adguard-dns.com",
        "doh.cleanbrowsing.org",
        "dns.alidns.com",
        "doh.pub",
    }
)
DOT_PORT = 853
_METHODS = (b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN", b"M-SE", b"NOTI", b"SUBS")
METHOD_WORDS = np.array([int.from_bytes(m, "big") for m in _METHODS], dtype=np.uint32)
QUIC_VERSIONS = np.array([0x00000001, 0x6B3343CF], dtype=np.uint32)


def address_key(text: str) -> tuple[int, int]:
    """(hi, lo) of an address as the headers decoder keeps it (IPv4 as IPv4-mapped)."""
    if ":" in text:
        value = int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
        return value >> 64, value & ((1 << 64) - 1)
    return 0, 0xFFFF_0000_0000 | int.from_bytes(socket.inet_aton(text), "big")


@dataclass(slots=True)
class NameStats:
    dns_answers: int = 0
    dns_queries: int = 0
    client_hellos: int = 0
    quic_initials: int = 0
    http_requests: int = 0
    unparsed: int = 0


class NameTable:
    """Learned names; lookups are by 64-bit hashes of device/flow keys (names, not counts)."""

    def __init__(self) -> None:
        self.names: list[str] = [""]  # id 0: no name
        self._ids: dict[str, int] = {"": 0}
        self.dns: dict[int, int] = {}  # hash(device, address) -> name id
        self.flows: dict[int, tuple[int, int]] = {}  # hash(device, remote, proto, ports) -> (id, source)
        self.encrypted_dns: set[tuple[int, int, int]] = set()
        self.generation = 0  # bumped when the name ids are reset: caches of tags must be dropped

    def intern(self, name: str) -> int:
        found = self._ids.get(name)
        if found is None:
            if len(self.names) >= MAX_NAMES:
                self.names, self._ids = [""], {"": 0}
                self.generation += 1
                self.dns.clear()
                self.flows.clear()
            found = self._ids[name] = len(self.names)
            self.names.append(name)
        return found

    def flag_encrypted_dns(self, device: tuple[int, int, int]) -> None:
        if len(self.encrypted_dns) < MAX_FLAGGED:
            self.encrypted_dns.add(device)

    def add_dns(self, key: int, name: str) -> None:
        if len(self.dns) >= MAX_DNS_NAMES:
            _drop_oldest(self.dns)
        self.dns.pop(key, None)  # re-insert: the newest answer for an address wins, and stays longest
        self.dns[key] = self.intern(name)

    def add_flow(self, key: int, name: str, source: int) -> None:
        if len(self.flows) >= MAX_FLOW_NAMES:
            _drop_oldest(self.flows)
        self.flows[key] = (self.intern(name), source)

    def name_rows(self, rows: dict[str, Array]) -> tuple[I64, I64]:
        """Name id and source code of each flow row (columns as the traffic aggregator's)."""
        device = [rows["kind"], rows["dhi"], rows["dlo"]]
        remote = [rows["rhi"], rows["rlo"]]
        dns_keys = key_hash([*device, *remote]).tolist()
        flow_keys = key_hash([*device, *remote, rows["proto"], rows["lport"], rows["rport"]]).tolist()
        ids = np.zeros(len(dns_keys), np.int64)
        sources = np.zeros(len(dns_keys), np.int64)
        flows, dns = self.flows, self.dns
        for row, (fk, dk) in enumerate(zip(flow_keys, dns_keys, strict=True)):
            named = flows.get(fk)
            if named is not None:
                ids[row], sources[row] = named
            else:
                found = dns.get(dk)
                if found is not None:
                    ids[row], sources[row] = found, SOURCE_DNS
        return ids, sources


def _drop_oldest(table: dict[int, V]) -> None:
    for key in list(table)[: max(1, len(table) // 10)]:
        del table[key]


class Namer:
    """Feeds the name-carrying packets of each batch to the parsers and fills a NameTable."""

    def __init__(self) -> None:
        self.table = NameTable()
        self.stats = NameStats()
        self.quic = QuicInitialReassembler()
        self.pending: dict[int, HelloReassembler] = {}
        self.queries: list[tuple[int, int, int, int, str]] = []  # (ts_s, kind, hi, lo, qname)
        self._dns_cache: dict[bytes, DnsAnswer | None] = {}

    def observe(self, batch: PacketBatch, h: Headers) -> None:
        dot = h.is_ip & ~h.malformed & (h.proto == IPPROTO_TCP) & (h.dport == DOT_PORT)
        for i in _indices(dot):
            self.table.flag_encrypted_dns(sender(h, i))
        ok = h.is_ip & ~h.malformed & ~h.later_fragment & (h.payload_len > 0)
        if not ok.any():
            return
        tcp = ok & (h.proto == IPPROTO_TCP)
        udp = ok & (h.proto == IPPROTO_UDP)
        limit = len(batch.buf) - PAD
        first = gather_u32(batch.buf, np.minimum(h.payload, limit))
        b0 = (first >> np.uint32(24)).astype(np.uint8)
        self._dns(batch, h, udp, tcp)
        hello = tcp & (b0 == 0x16) & (((first >> np.uint32(16)) & np.uint32(0xFF)) == 3)
        self._hellos(batch, h, hello, tcp)
        http = tcp & np.isin(first, METHOD_WORDS)
        for i in _indices(http):
            host = parse_http_host(payload(batch, h, i))
            if host is None:
                self.stats.unparsed += 1
                continue
            self.stats.http_requests += 1
            self._name_flow(h, i, host, SOURCE_HTTP)
        quic = udp & ((b0 & 0xC0) == 0xC0) & (h.payload_len >= 1200 - 64)
        if quic.any():
            version = gather_u32(batch.buf, np.minimum(h.payload + 1, limit))
            quic &= np.isin(version, QUIC_VERSIONS)
        for i in _indices(quic):
            found = self.quic.feed(payload(batch, h, i))
            if found is not None:
                self.stats.quic_initials += 1
                self._hello(h, i, found, SOURCE_QUIC)

    def _dns(self, batch: PacketBatch, h: Headers, udp: B, tcp: B) -> None:
        for i in _indices((udp | tcp) & (h.sport == 53)):
            data = payload(batch, h, i)
            answer = self._dns_answer(data) if udp[i] else parse_dns_tcp(data)
            if answer is None:
                self.stats.unparsed += 1
                continue
            self.stats.dns_answers += 1
            kind, hi, lo = receiver(h, i)
            for address, _owner in answer.addresses:
                a_hi, a_lo = address_key(address)
                key = key_hash_one((kind, hi, lo, a_hi, a_lo))
                self.table.add_dns(key, answer.qname)
        for i in _indices(udp & (h.dport == 53)):
            qname = parse_dns_query(payload(batch, h, i))
            if qname is not None:
                self.stats.dns_queries += 1
                kind, hi, lo = sender(h, i)
                self.queries.append((int(batch.ts_ns[i] // 1_000_000_000), kind, hi, lo, qname))

    def _dns_answer(self, data: bytes) -> DnsAnswer | None:
        """Devices re-ask the same names all day: the same answer (bar its id) is parsed once."""
        key = data[2:]
        found = self._dns_cache.get(key)
        if found is None:
            found = parse_dns_response(data)
            if len(self._dns_cache) >= MAX_DNS_CACHE:
                self._dns_cache.clear()
            self._dns_cache[key] = found
        return found

    def _hellos(self, batch: PacketBatch, h: Headers, hello: B, tcp: B) -> None:
        if self.pending:
            waiting = np.fromiter(self.pending, dtype=np.uint64, count=len(self.pending))
            hello = hello | (tcp & ~hello & np.isin(_segment_keys(h, tcp), waiting, assume_unique=False))
        idx = np.flatnonzero(hello)
        if not len(idx):
            return
        seg_keys = _segment_keys(h, idx).tolist()
        for i, seg_key in zip(idx.tolist(), seg_keys, strict=True):
            data = payload(batch, h, i)
            pending = self.pending.get(seg_key)
            if pending is not None:
                found = pending.feed(data)
                if pending.finished:
                    del self.pending[seg_key]
            else:
                found = parse_client_hello(data)
                if found is None and client_hello_needed(data) > 0 and len(self.pending) < MAX_PENDING_HELLOS:
                    assembler = HelloReassembler()
                    found = assembler.feed(data)
                    if found is None and not assembler.finished:
                        self.pending[seg_key] = assembler
            if found is not None:
                self.stats.client_hellos += 1
                self._hello(h, i, found, SOURCE_SNI)

    def _hello(self, h: Headers, i: int, hello: ClientHello, source: int) -> None:
        name = hello.server_name
        if name is None or _is_ip_literal(name):
            return
        if name in ENCRYPTED_DNS_NAMES:
            self.table.flag_encrypted_dns(sender(h, i))
        if hello.ech and name in ECH_PUBLIC_NAMES:
            source = SOURCE_ECH  # the real name is encrypted; the outer, public name is all we see
        self._name_flow(h, i, name, source)

    def _name_flow(self, h: Headers, i: int, name: str, source: int) -> None:
        kind, hi, lo = sender(h, i)
        cols = [
            kind,
            hi,
            lo,
            int(h.dst_hi[i]),
            int(h.dst_lo[i]),
            int(h.proto[i]),
            int(h.sport[i]),
            int(h.dport[i]),
        ]
        self.table.add_flow(key_hash_one(cols), name, source)

    def take_queries(self) -> list[tuple[int, int, int, int, str]]:
        out, self.queries = self.queries, []
        return out


def _indices(mask: B) -> Iterator[int]:
    return iter(np.flatnonzero(mask).tolist()) if mask.any() else iter(())


def _segment_keys(h: Headers, sel: B | I64) -> U64:
    """A hash of each selected packet's TCP 4-tuple (with the link addresses), to follow a reassembly.

    With a mask, unselected packets hash as if all zero (they are masked out by the caller).
    """
    cols: list[npt.NDArray[np.generic]] = [h.src_mac, h.src_hi, h.src_lo, h.dst_hi, h.dst_lo]
    cols += [h.sport, h.dport]
    if sel.dtype == np.bool_:
        return key_hash([np.where(sel, c, 0) for c in cols])
    return key_hash([c[sel] for c in cols])


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
