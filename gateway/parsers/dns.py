"""DNS messages: the name a client asked for, and the addresses that answer it (RFC 1035).

Pure functions over one message's bytes (the UDP payload, or a TCP segment with its 2-byte length
prefix). They never raise: every read is bounds-checked and every loop has a bound named below.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import struct
from dataclasses import dataclass
from typing import NamedTuple

MAX_NAME_WIRE = 255  # RFC 1035 §3.1: a name is at most 255 octets on the wire, so ≤ 127 labels
MAX_NAME_CHARS = 253  # the same bound in text: 255 minus the first length octet and the root label
MAX_POINTER_JUMPS = 32  # compression pointers followed in one name: real names use 1-3, a loop uses ∞
MAX_QUESTIONS = 4  # questions skipped before the answers: real messages carry one (RFC 9619)
MAX_ANSWERS = 64  # answer records read: CDN answers hold about 20, more is padding or an attack
MAX_CNAME_DEPTH = 16  # CNAME hops followed from the question name: resolvers themselves stop near 8-16

TYPE_A = 1
TYPE_CNAME = 5
TYPE_AAAA = 28
CLASS_IN = 1
OPCODE_QUERY = 0

_HEADER = struct.Struct("!HHHHHH")
_QUESTION_TAIL = struct.Struct("!HH")
_RECORD_TAIL = struct.Struct("!HHIH")
_HOST_NAME = re.compile(r"(?:[a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}")
_WIRE_NAME = re.compile(rb"(?:[A-Za-z0-9_-]{1,63}\.)*[A-Za-z0-9_-]{1,63}")


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """One DNS response, reduced to what attributes traffic to a name.

    Every address in `addresses` answers `qname`, the name the client asked for: map each one to
    `qname`. Each pair is `(address, owner)`, the owner being `qname` or one of `cnames`.
    """

    qname: str  # the question name: lowercase, no trailing dot
    qtype: int  # the question type (1 = A, 28 = AAAA, 65 = HTTPS, ...)
    rcode: int  # 0 NOERROR, 3 NXDOMAIN, ...
    addresses: tuple[tuple[str, str], ...]  # (compressed IPv4/IPv6 text, owner name), in message order
    cnames: tuple[str, ...]  # the CNAME chain followed from qname, in order (targets only)
    ttl: int | None  # the smallest TTL of the answer records used; None when none was
    truncated: bool  # TC flag set, or the message ended before its last answer: a partial answer


class _Header(NamedTuple):
    flags: int
    qdcount: int
    ancount: int

    @property
    def is_response(self) -> bool:
        return bool(self.flags & 0x8000)

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF


class _Record(NamedTuple):
    owner: str
    rtype: int
    ttl: int
    data: str  # an address for A/AAAA, the target name for CNAME


def normalise_hostname(name: str) -> str | None:
    """`name` lowercased without its trailing dot, or None when it is no valid ASCII host name."""
    if not name.isascii():
        return None
    name = name.lower().removesuffix(".")
    if len(name) > MAX_NAME_CHARS or not _HOST_NAME.fullmatch(name):
        return None
    return name


def parse_dns_response(payload: bytes) -> DnsAnswer | None:
    """The answer in a DNS response (QR=1, opcode QUERY, any rcode) carried over UDP."""
    header = _read_header(payload)
    if header is None or not header.is_response or header.opcode != OPCODE_QUERY:
        return None
    question = _read_question(payload, header.qdcount)
    if question is None:
        return None
    qname, qtype, offset = question
    wanted = min(header.ancount, MAX_ANSWERS)
    records, read = _read_answers(payload, offset, wanted)
    truncated = bool(header.flags & 0x0200) or read < wanted
    return _assemble(qname, qtype, header.flags & 0xF, records, truncated)


def parse_dns_tcp(payload: bytes) -> DnsAnswer | None:
    """The answer in a DNS response over TCP: a 2-byte length, then the message (RFC 1035 §4.2.2).

    Only the first message of the segment is read; one cut by the segment's end is read as far as
    it goes (`truncated` says when answers are missing).
    """
    if len(payload) < 2:
        return None
    length = int.from_bytes(payload[:2], "big")
    return parse_dns_response(payload[2 : 2 + length])


def parse_dns_query(payload: bytes) -> str | None:
    """The question name of a DNS query (QR=0, opcode QUERY) over UDP, or None."""
    header = _read_header(payload)
    if header is None or header.is_response or header.opcode != OPCODE_QUERY:
        return None
    question = _read_question(payload, header.qdcount)
    return None if question is None else question[0]


def _read_header(msg: bytes) -> _Header | None:
    if len(msg) < _HEADER.size:
        return None
    _ident, flags, qdcount, ancount, _nscount, _arcount = _HEADER.unpack_from(msg)
    return _Header(flags, qdcount, ancount)


def _read_question(msg: bytes, qdcount: int) -> tuple[str, int, int] | None:
    """(qname, qtype, offset of the answer section) from the first question; None when unusable."""
    if not 1 <= qdcount <= MAX_QUESTIONS:
        return None
    first: tuple[str | None, int] | None = None
    offset = _HEADER.size
    for _ in range(qdcount):
        read = _read_name(msg, offset)
        if read is None or read[1] + _QUESTION_TAIL.size > len(msg):
            return None
        qtype, _qclass = _QUESTION_TAIL.unpack_from(msg, read[1])
        first = first or (read[0], qtype)
        offset = read[1] + _QUESTION_TAIL.size
    if first is None or first[0] is None:
        return None
    return first[0], first[1], offset


def _read_answers(msg: bytes, offset: int, count: int) -> tuple[list[_Record], int]:
    """The A, AAAA and CNAME records among the next `count` records, and how many records were read."""
    records: list[_Record] = []
    for index in range(count):
        read = _read_record(msg, offset)
        if read is None:
            return records, index
        record, offset = read
        if record is not None:
            records.append(record)
    return records, count


def _read_record(msg: bytes, offset: int) -> tuple[_Record | None, int] | None:
    """(the record if it is a usable IN A/AAAA/CNAME, offset after it); None when the message is cut."""
    read = _read_name(msg, offset)
    if read is None or read[1] + _RECORD_TAIL.size > len(msg):
        return None
    owner, offset = read
    rtype, rclass, ttl, rdlength = _RECORD_TAIL.unpack_from(msg, offset)
    start = offset + _RECORD_TAIL.size
    end = start + rdlength
    if end > len(msg):
        return None
    # The top bit of the class is mDNS's cache-flush bit (RFC 6762 §10.2); plain DNS leaves it 0.
    if owner is None or rclass & 0x7FFF != CLASS_IN:
        return None, end
    data = _read_rdata(msg, rtype, start, end)
    ttl = ttl if ttl < 2**31 else 0  # RFC 2181 §8: a TTL with the top bit set means zero
    return (None if data is None else _Record(owner, rtype, ttl, data)), end


def _read_rdata(msg: bytes, rtype: int, start: int, end: int) -> str | None:
    if rtype == TYPE_A and end - start == 4:
        return socket.inet_ntoa(msg[start:end])  # the text of str(IPv4Address), 5 times faster
    if rtype == TYPE_AAAA and end - start == 16:
        return _ipv6_text(msg[start:end])
    if rtype == TYPE_CNAME:
        read = _read_name(msg, start)
        if read is not None and read[1] <= end:
            return read[0]
    return None


def _ipv6_text(packed: bytes) -> str:
    """IPv6Address(packed).compressed, through inet_ntop where both write the same (RFC 5952) text.

    They differ only where inet_ntop writes an embedded IPv4 address (::ffff:192.0.2.1).
    """
    text = socket.inet_ntop(socket.AF_INET6, packed)
    return ipaddress.IPv6Address(packed).compressed if "." in text else text


def _read_name(msg: bytes, offset: int) -> tuple[str | None, int] | None:
    """(the name at `offset`, or None when it is no valid host name; offset after it in place).

    None when the name runs off the message, loops, or exceeds the bounds above.
    """
    read = _read_labels(msg, offset)
    if read is None:
        return None
    labels, end = read
    name = b".".join(labels)
    # A dot inside a label would pass the pattern as two labels: the dot count catches it.
    valid = name.count(b".") == len(labels) - 1 and _WIRE_NAME.fullmatch(name) is not None
    return (name.decode("ascii").lower() if valid else None), end


def _read_labels(msg: bytes, offset: int) -> tuple[list[bytes], int] | None:
    labels: list[bytes] = []
    wire_length = 1  # the root label
    end = -1  # where the name ends in place: after the first pointer, or after the root label
    jumps = 0
    while offset < len(msg):
        length = msg[offset]
        if length == 0:
            return labels, (offset + 1 if end < 0 else end)
        if length & 0xC0 == 0xC0:
            jumps += 1
            if jumps > MAX_POINTER_JUMPS or offset + 1 >= len(msg):
                return None
            end = offset + 2 if end < 0 else end
            offset = (length & 0x3F) << 8 | msg[offset + 1]
            continue
        wire_length += length + 1
        # 0x40 and 0x80 prefixes are the obsolete extended label types (RFC 6891 §5): refused.
        if length & 0xC0 or wire_length > MAX_NAME_WIRE or offset + 1 + length > len(msg):
            return None
        labels.append(msg[offset + 1 : offset + 1 + length])
        offset += 1 + length
    return None


def _assemble(qname: str, qtype: int, rcode: int, records: list[_Record], truncated: bool) -> DnsAnswer:
    chain = _follow_cnames(qname, records)
    on_chain = set(chain)
    used = [record for record in records if record.owner in on_chain and _is_on_chain(record, chain)]
    addresses = dict.fromkeys(
        (record.data, record.owner) for record in used if record.rtype in (TYPE_A, TYPE_AAAA)
    )
    ttl = min((record.ttl for record in used), default=None)
    return DnsAnswer(qname, qtype, rcode, tuple(addresses), tuple(chain[1:]), ttl, truncated)


def _follow_cnames(qname: str, records: list[_Record]) -> list[str]:
    """qname, then each CNAME target in turn, stopping at a loop or after MAX_CNAME_DEPTH hops."""
    targets: dict[str, str] = {}
    for record in records:
        if record.rtype == TYPE_CNAME:
            targets.setdefault(record.owner, record.data)
    chain = [qname]
    while len(chain) <= MAX_CNAME_DEPTH:
        target = targets.get(chain[-1])
        if target is None or target in chain:
            break
        chain.append(target)
    return chain


def _is_on_chain(record: _Record, chain: list[str]) -> bool:
    """A/AAAA records of a chain name count; a CNAME counts only as the hop the chain took."""
    if record.rtype != TYPE_CNAME:
        return True
    index = chain.index(record.owner)
    return index + 1 < len(chain) and chain[index + 1] == record.data
