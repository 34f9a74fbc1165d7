"""Passive mDNS / DNS-SD (RFC 6762, RFC 6763): what a device announces about itself and looks for.

`parse_mdns` takes the UDP payload of a packet on port 5353 and returns an `MdnsMessage` with the
records that identify a device: service types, service instances ("Kitchen speaker" of
``_googlecast._tcp.local.``), SRV targets and ports, TXT properties (``md``, ``fn``, ``model``,
``am``, ``ty``...), host addresses, HINFO, and the questions it asks. ``None`` means the payload is
not a DNS message at all (shorter than its header, or beyond mDNS's size limit).

Decoding is python-zeroconf's own (`zeroconf.DNSIncoming`), which is compiled, fast and built for
hostile input. It skips records it cannot decode without telling which, so a light walk over the
record headers (`_layout`) says where each record sits and how many zeroconf should have decoded:
fewer means the message is ``malformed`` (counted by the caller, never fatal), and the records that
did decode are still used. Names keep zeroconf's form, with the trailing dot.

In a query, the answer section holds *known answers*: records the asker cached from other devices.
They are not the sender's, so from a query only the authority section (a probe: records the sender
is about to claim) is kept, and only when the layout tells exactly which records are in it.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# The package re-exports these names for compatibility but leaves them out of __all__, which strict
# mypy requires; their defining modules have been stable since zeroconf 0.32.
from zeroconf._dns import DNSAddress, DNSHinfo, DNSPointer, DNSQuestion, DNSRecord, DNSService, DNSText
from zeroconf._protocol.incoming import DNSIncoming

log = logging.getLogger(__name__)

HEADER_LEN = 12
# RFC 6762 section 17: an mDNS message, IP and UDP headers included, must not exceed 9000 bytes.
# Larger payloads are not mDNS; refusing them bounds everything below by the message size.
MAX_MESSAGE = 9000
# Questions and records taken from one message. An announcement carries a few tens; a 9000-byte
# message could hold about 800 minimal records. Records beyond the cap are ignored.
MAX_RECORDS = 256
# Keys kept from one TXT record (RFC 6763 section 6.2 advises under 200 bytes in all; real devices
# send up to ~30 keys). Each value is one character-string, so at most 255 bytes by construction.
MAX_TXT_KEYS = 64

TYPE_A, TYPE_CNAME, TYPE_PTR, TYPE_HINFO, TYPE_TXT = 1, 5, 12, 13, 16
TYPE_AAAA, TYPE_SRV, TYPE_NSEC = 28, 33, 47
# Record types DNSIncoming decodes; it skips every other type (OPT, SOA...) on purpose.
DECODED_TYPES = frozenset(
    {TYPE_A, TYPE_CNAME, TYPE_PTR, TYPE_HINFO, TYPE_TXT, TYPE_AAAA, TYPE_SRV, TYPE_NSEC}
)
ANSWER, AUTHORITY, ADDITIONAL = 0, 1, 2
FLAG_QR = 0x8000

SERVICES_ENUMERATION = "_services._dns-sd._udp.local."
_SERVICE_TYPE = re.compile(r"(?:[^.]+\._sub\.)?_[^.]+\._(?:tcp|udp)\.local\.", re.IGNORECASE)
_INSTANCE = re.compile(
    r"(?P<instance>.+)\.(?P<type>_[^.]+\._(?:tcp|udp)\.local\.)", re.IGNORECASE | re.DOTALL
)
_ESCAPE = re.compile(rb"\\(\d{3}|.)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class MdnsQuestion:
    name: str
    qtype: int  # 12 PTR, 16 TXT, 33 SRV, 255 ANY...
    unicast: bool  # QU: the asker wants a unicast answer (first query after start-up)


@dataclass(frozen=True, slots=True)
class MdnsInstance:
    name: str  # "Kitchen speaker._googlecast._tcp.local."
    instance: str  # "Kitchen speaker", DNS-SD escapes (\032, \.) decoded
    service_type: str  # "_googlecast._tcp.local."


@dataclass(frozen=True, slots=True)
class MdnsService:
    name: str  # the instance's full name
    target: str  # host name, e.g. "Sonos-542A1BC9220E.local."
    port: int


@dataclass(frozen=True, slots=True)
class MdnsText:
    name: str  # the instance's full name
    # Keys lowercased (RFC 6763 section 6.4: keys are case-insensitive), first occurrence wins;
    # a key without "=" maps to "". Left out of the hash: a dict has none.
    properties: dict[str, str] = field(hash=False)


@dataclass(frozen=True, slots=True)
class MdnsHostInfo:
    name: str
    cpu: str
    os: str


@dataclass(frozen=True, slots=True)
class MdnsMessage:
    is_response: bool
    malformed: bool  # damaged or cut short; what could be decoded is still here
    questions: tuple[MdnsQuestion, ...]
    service_types: tuple[str, ...]  # "_sonos._tcp.local.", from PTR records and instance names
    instances: tuple[MdnsInstance, ...]
    services: tuple[MdnsService, ...]  # SRV records
    texts: tuple[MdnsText, ...]  # TXT records
    # Host name -> addresses (A and AAAA), in order of appearance. Left out of the hash.
    addresses: dict[str, tuple[str, ...]] = field(hash=False)
    host_infos: tuple[MdnsHostInfo, ...] = ()

    def properties(self) -> dict[str, str]:
        """All TXT properties of the message merged, the first record's value winning."""
        merged: dict[str, str] = {}
        for text in self.texts:
            for key, value in text.properties.items():
                merged.setdefault(key, value)
        return merged


def parse_mdns(payload: bytes) -> MdnsMessage | None:
    """Decode one mDNS message; ``None`` when ``payload`` cannot be a DNS message."""
    if not HEADER_LEN <= len(payload) <= MAX_MESSAGE:
        return None
    try:
        return _parse(payload)
    except Exception:  # DNSIncoming promises not to raise; a parser bug must not stop the pipeline
        log.debug("mDNS message not decoded: %s", payload[:64].hex(), exc_info=True)
        return _empty(payload, malformed=True)


def _parse(payload: bytes) -> MdnsMessage:
    incoming = DNSIncoming(payload)
    layout = _layout(payload)
    records: list[DNSRecord] = incoming.answers()[:MAX_RECORDS] if _records_aligned(incoming) else []
    expected = None if layout is None else sum(1 for _, rtype in layout if rtype in DECODED_TYPES)
    malformed = not incoming.valid or expected is None or len(incoming.answers()) != expected
    is_response = bool(incoming.flags & FLAG_QR)
    if not is_response:
        records = _probe_records(records, layout) if not malformed and layout is not None else []
    return _build(is_response, malformed, incoming.questions[:MAX_RECORDS], records)


def _layout(payload: bytes) -> list[tuple[int, int]] | None:
    """(section, type) of each resource record, from the headers alone; ``None`` if they overrun.

    Names are skipped, not decoded: a label, or a compression pointer that ends the name. Every
    step moves forward, so the walk is bounded by the message length.
    """
    counts = [int.from_bytes(payload[i : i + 2], "big") for i in range(4, 12, 2)]
    offset = HEADER_LEN
    for _ in range(counts[0]):
        offset = _skip_name(payload, offset) + 4
        if offset > len(payload):
            return None
    layout: list[tuple[int, int]] = []
    for section, count in enumerate(counts[1:]):
        for _ in range(count):
            offset = _skip_name(payload, offset)
            if offset + 10 > len(payload):
                return None
            rtype = int.from_bytes(payload[offset : offset + 2], "big")
            offset += 10 + int.from_bytes(payload[offset + 8 : offset + 10], "big")
            if offset > len(payload):
                return None
            layout.append((section, rtype))
    return layout


def _skip_name(payload: bytes, offset: int) -> int:
    """Offset after the name at ``offset``; past the end of ``payload`` when the name is broken."""
    end = len(payload)
    while offset < end:
        length = payload[offset]
        if length == 0:
            return offset + 1
        if length >= 0xC0:
            return offset + 2
        if length >= 0x40:  # extended label types (RFC 6891 deprecated them): undecodable
            return end + 1
        offset += 1 + length
    return end + 1


def _records_aligned(incoming: DNSIncoming) -> bool:
    # When the question section fails to decode, zeroconf still reads the records from wherever it
    # stopped: they are noise. With no questions, a failure can only be in the records themselves,
    # and those decoded before it are sound.
    return bool(incoming.valid) or incoming.num_questions == 0


def _probe_records(records: list[DNSRecord], layout: list[tuple[int, int]]) -> list[DNSRecord]:
    sections = [section for section, rtype in layout if rtype in DECODED_TYPES]
    return [record for record, section in zip(records, sections, strict=False) if section == AUTHORITY]


def _empty(payload: bytes, *, malformed: bool) -> MdnsMessage:
    is_response = len(payload) >= HEADER_LEN and bool(payload[2] & 0x80)
    return MdnsMessage(is_response, malformed, (), (), (), (), (), {}, ())


def _build(
    is_response: bool, malformed: bool, questions: Sequence[DNSQuestion], records: Sequence[DNSRecord]
) -> MdnsMessage:
    pointers = [r for r in records if isinstance(r, DNSPointer)]
    services = tuple(MdnsService(r.name, r.server, r.port) for r in records if isinstance(r, DNSService))
    texts = tuple(MdnsText(r.name, txt_properties(r.text)) for r in records if isinstance(r, DNSText))
    named = [p.alias for p in pointers if _is_service_type(p.name)]
    instances = _instances([*named, *(s.name for s in services), *(t.name for t in texts)])
    return MdnsMessage(
        is_response=is_response,
        malformed=malformed,
        questions=tuple(MdnsQuestion(q.name, q.type, bool(q.unique)) for q in questions),
        service_types=_service_types(pointers, instances),
        instances=instances,
        services=services,
        texts=texts,
        addresses=_addresses(r for r in records if isinstance(r, DNSAddress)),
        host_infos=tuple(MdnsHostInfo(r.name, r.cpu, r.os) for r in records if isinstance(r, DNSHinfo)),
    )


def _is_service_type(name: str) -> bool:
    return _SERVICE_TYPE.fullmatch(name) is not None


def _service_types(pointers: Iterable[DNSPointer], instances: Iterable[MdnsInstance]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for pointer in pointers:
        if pointer.name.lower() == SERVICES_ENUMERATION and _is_service_type(pointer.alias):
            found[pointer.alias] = None
        elif _is_service_type(pointer.name) and "._sub." not in pointer.name.lower():
            found[pointer.name] = None
    for instance in instances:
        found[instance.service_type] = None
    return tuple(found)


def _instances(names: Iterable[str]) -> tuple[MdnsInstance, ...]:
    found: dict[str, MdnsInstance] = {}
    for name in names:
        match = _INSTANCE.fullmatch(name)
        if match and name not in found:
            found[name] = MdnsInstance(name, unescape_instance(match["instance"]), match["type"])
    return tuple(found.values())


def _addresses(records: Iterable[DNSAddress]) -> dict[str, tuple[str, ...]]:
    found: dict[str, dict[str, None]] = {}
    for record in records:
        if len(record.address) in (4, 16):
            text = str(ipaddress.ip_address(record.address))
            found.setdefault(record.name, {})[text] = None
    return {name: tuple(addresses) for name, addresses in found.items()}


def unescape_instance(text: str) -> str:
    r"""Decode DNS-SD presentation escapes that some devices put in their labels: ``\032``, ``\.``."""
    if "\\" not in text:
        return text
    raw = _ESCAPE.sub(_unescape_one, text.encode("utf-8", "surrogatepass"))
    return raw.decode("utf-8", "replace")


def _unescape_one(match: re.Match[bytes]) -> bytes:
    escaped = match[1]
    if escaped.isdigit():
        value = int(escaped)
        return bytes([value]) if value <= 255 else match[0]
    return escaped


def txt_properties(rdata: bytes) -> dict[str, str]:
    """Key/value pairs of TXT rdata (RFC 6763 section 6): length-prefixed ``key=value`` strings."""
    properties: dict[str, str] = {}
    offset, end = 0, len(rdata)
    while offset < end and len(properties) < MAX_TXT_KEYS:
        length = rdata[offset]
        entry = rdata[offset + 1 : offset + 1 + length]  # a short last string is kept as it is
        offset += 1 + length
        key, _, value = entry.partition(b"=")
        if key:  # RFC 6763 section 6.4: a string starting with "=" is ignored
            properties.setdefault(_text(key).lower(), _text(value))
    return properties


def _text(raw: bytes) -> str:
    """Lenient UTF-8; control characters become U+FFFD so they never reach logs or dashboards."""
    text = raw.decode("utf-8", "replace")
    return text if text.isprintable() else "".join(c if c.isprintable() else "\ufffd" for c in text)
