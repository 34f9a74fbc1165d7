"""Passive mDNS / DNS-SD (RFC 6762, RFC 6763): what a device announces about itself and looks for.

`parse_mdns` takes the UDP payload of a packet on port 5353 and returns an `MdnsMessage` with the
records that identify a device: service types, service instances ("Kitchen speaker" of
``_googlecast._tcp.local.``), SRV targets and ports, TXT properties (``md``, ``fn``, ``model``,
``am``, ``ty``...), host addresses, HINFO, and the questions it asks. ``None`` means the payload is
not a DNS message at all (shorter than its header, or beyond mDNS's size limit).

Decoding is python-zeroconf's own (`zeroconf.DNSIncoming`), which is compiled, fast and built for
hostile input. It skips records it cannot decode without telling which. When it returns fewer
records than the header counts, a light walk over the record headers (`_layout`) tells the records
it skips on purpose (OPT, SOA...) from damaged ones: damage makes the message ``malformed``
(counted by the caller, never fatal), and the records that did decode are still used. Names keep
zeroconf's form, with the trailing dot; control characters in any text become U+FFFD.

In a query, the answer section holds *known answers*: records the asker cached from other devices.
They are not the sender's, so from a query only the authority section (a probe: records the sender
is about to claim) is kept, and only when the layout tells exactly which records are in it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from socket import AF_INET, AF_INET6, inet_ntop

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
    host_infos: tuple[MdnsHostInfo, ...]

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
        return _damaged(payload)


def _parse(payload: bytes) -> MdnsMessage:
    incoming = DNSIncoming(payload)
    records: list[DNSRecord] = incoming.answers() if _records_aligned(incoming) else []
    sections = _sections(payload, incoming, records)
    malformed = sections is None or not incoming.valid
    is_response = bool(incoming.flags & FLAG_QR)
    if not is_response:  # keep the probe's own records only (see the module's docstring)
        records = [r for r, s in zip(records, sections or (), strict=False) if s == AUTHORITY]
    return _build(is_response, malformed, incoming.questions[:MAX_RECORDS], records[:MAX_RECORDS])


def _records_aligned(incoming: DNSIncoming) -> bool:
    # When the question section fails to decode, zeroconf still reads the records from wherever it
    # stopped: they are noise. With no questions, a failure can only be in the records themselves,
    # and those decoded before it are sound.
    return bool(incoming.valid) or incoming.num_questions == 0


def _sections(payload: bytes, incoming: DNSIncoming, records: Sequence[DNSRecord]) -> list[int] | None:
    """The section of each decoded record; ``None`` when zeroconf had to skip a damaged record."""
    counts = (incoming.num_answers, incoming.num_authorities, incoming.num_additionals)
    if incoming.valid and len(records) == sum(counts):  # the usual case: every record decoded
        return [section for section, count in enumerate(counts) for _ in range(count)]
    layout = _layout(payload, counts)
    if layout is None:
        return None
    decodable = [section for section, rtype in layout if rtype in DECODED_TYPES]
    return decodable if len(decodable) == len(records) else None


def _layout(payload: bytes, counts: tuple[int, int, int]) -> list[tuple[int, int]] | None:
    """(section, type) of each resource record, from the headers alone; ``None`` if they overrun.

    Names are skipped, not decoded: labels up to a root byte or a compression pointer. Every step
    moves forward, so the walk is bounded by the message length.
    """
    end = len(payload)
    offset = HEADER_LEN
    for _ in range(payload[4] << 8 | payload[5]):  # questions: name, type, class
        offset = _skip_name(payload, offset) + 4
        if offset > end:
            return None
    layout: list[tuple[int, int]] = []
    for section, count in enumerate(counts):
        for _ in range(count):
            offset = _skip_name(payload, offset) + 10  # name, type, class, ttl, rdlength
            if offset > end:
                return None
            layout.append((section, payload[offset - 10] << 8 | payload[offset - 9]))
            offset += payload[offset - 2] << 8 | payload[offset - 1]
            if offset > end:
                return None
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


def _damaged(payload: bytes) -> MdnsMessage:
    return MdnsMessage(bool(payload[2] & 0x80), True, (), (), (), (), (), {}, ())


def _build(
    is_response: bool, malformed: bool, questions: Sequence[DNSQuestion], records: Sequence[DNSRecord]
) -> MdnsMessage:
    named: list[str] = []  # full names of service instances, in order of appearance
    types: dict[str, None] = {}
    services: list[MdnsService] = []
    texts: list[MdnsText] = []
    addresses: dict[str, dict[str, None]] = {}
    host_infos: list[MdnsHostInfo] = []
    for record in records:
        if isinstance(record, DNSPointer):
            _add_pointer(record, named, types)
        elif isinstance(record, DNSService):
            services.append(MdnsService(clean(record.name), clean(record.server), record.port))
            named.append(record.name)
        elif isinstance(record, DNSText):
            texts.append(MdnsText(clean(record.name), txt_properties(record.text)))
            named.append(record.name)
        elif isinstance(record, DNSAddress):
            _add_address(record, addresses)
        elif isinstance(record, DNSHinfo):
            host_infos.append(MdnsHostInfo(clean(record.name), clean(record.cpu), clean(record.os)))
    instances = _instances(named)
    types.update((instance.service_type, None) for instance in instances)
    return MdnsMessage(
        is_response=is_response,
        malformed=malformed,
        questions=tuple(MdnsQuestion(clean(q.name), q.type, bool(q.unique)) for q in questions),
        service_types=tuple(types),
        instances=instances,
        services=tuple(services),
        texts=tuple(texts),
        addresses={name: tuple(found) for name, found in addresses.items()},
        host_infos=tuple(host_infos),
    )


def _add_pointer(record: DNSPointer, named: list[str], types: dict[str, None]) -> None:
    """A PTR names a service type (service enumeration) or an instance of the type it is for."""
    if record.name.lower() == SERVICES_ENUMERATION:
        if _is_service_type(record.alias):
            types[clean(record.alias)] = None
        return
    if not _is_service_type(record.name):
        return  # reverse-address (in-addr.arpa) and other pointers say nothing about services
    named.append(record.alias)
    if "._sub." not in record.name.lower():
        types[clean(record.name)] = None


def _add_address(record: DNSAddress, addresses: dict[str, dict[str, None]]) -> None:
    raw = record.address
    family = AF_INET if len(raw) == 4 else AF_INET6 if len(raw) == 16 else None
    if family is not None:
        addresses.setdefault(clean(record.name), {})[inet_ntop(family, raw)] = None


def _is_service_type(name: str) -> bool:
    return _SERVICE_TYPE.fullmatch(name) is not None


def _instances(names: Iterable[str]) -> tuple[MdnsInstance, ...]:
    found: dict[str, MdnsInstance] = {}
    for name in names:
        match = _INSTANCE.fullmatch(name)
        if match and name not in found:
            instance = clean(unescape_instance(match["instance"]))
            found[name] = MdnsInstance(clean(name), instance, clean(match["type"]))
    return tuple(found.values())


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
    while offset < end and len(properties) < MAX_TXT_KEYS:  # each step consumes at least one byte
        length = rdata[offset]
        entry = rdata[offset + 1 : offset + 1 + length]  # a short last string is kept as it is
        offset += 1 + length
        key, _, value = entry.partition(b"=")
        if key:  # RFC 6763 section 6.4: a string starting with "=" is ignored
            properties.setdefault(_decoded(key).lower(), _decoded(value))
    return properties


def _decoded(raw: bytes) -> str:
    return clean(raw.decode("utf-8", "replace"))


def clean(text: str) -> str:
    """Control characters become U+FFFD, so that none reaches logs or dashboards."""
    return text if text.isprintable() else "".join(c if c.isprintable() else "\ufffd" for c in text)
