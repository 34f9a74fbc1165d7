"""DHCPv4 messages (RFC 2131/2132): who a device says it is when it asks for an address.

`parse_dhcp` takes the UDP payload of a packet to or from port 67/68 and returns a `DhcpMessage`, or
``None`` when the payload is not BOOTP with the DHCP magic cookie. It never raises: every read is
bounds-checked, an option that runs past the payload ends the walk and sets ``malformed``. Options
repeated in one message are concatenated (RFC 3396). Option overload (52) is not followed: the
``sname``/``file`` fields rarely carry options and never the identifying ones in practice.

The parameter request list (55) gives the Fingerbank fingerprint ``"1,3,6,15"``: the options a DHCP
client asks for, in its order, identify its DHCP stack (udhcp, Android, Apple, ESP-IDF...).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

BOOTP_HEADER_LEN = 236  # op..file, RFC 2131 section 2
MAGIC_COOKIE = b"\x63\x82\x53\x63"
OPTIONS_START = BOOTP_HEADER_LEN + len(MAGIC_COOKIE)
BOOTREQUEST, BOOTREPLY = 1, 2
HTYPE_ETHERNET = 1

OPT_PAD, OPT_END = 0, 255
OPT_ROUTER, OPT_DNS, OPT_HOSTNAME = 3, 6, 12
OPT_REQUESTED_IP, OPT_MESSAGE_TYPE, OPT_SERVER_ID = 50, 53, 54
OPT_PARAM_REQUEST_LIST, OPT_VENDOR_CLASS, OPT_CLIENT_FQDN = 55, 60, 81
FQDN_FLAG_E = 0x04  # RFC 4702: name in DNS wire format (else deprecated ASCII)

# Option instances read from one message. Each takes at least two bytes, so a 1,500-byte message
# holds fewer than 700; real clients send 5-20. The cap bounds the walk for any payload size.
MAX_OPTIONS = 255
# RFC 1035 limits a host label to 63 octets; DHCP host names are single labels. 64 leaves room for
# the odd client that sends a trailing dot, and keeps dashboard tags short.
MAX_HOSTNAME = 64
# A vendor class is one option (255 bytes at most, RFC 2132); concatenated copies are cut there.
MAX_VENDOR_CLASS = 255
# A domain name is at most 253 characters in text form (RFC 1035).
MAX_FQDN = 253
# A parameter request list names each option at most once: 254 usable codes.
MAX_PARAMS = 254
# Routers and DNS servers: 63 addresses fit one option; a LAN announces one to three. The cap
# keeps a hostile message from growing the record.
MAX_ADDRESSES = 16


class DhcpMessageType(StrEnum):
    """Option 53 values (IANA "DHCP Message Type 53 Values")."""

    DISCOVER = "discover"
    OFFER = "offer"
    REQUEST = "request"
    DECLINE = "decline"
    ACK = "ack"
    NAK = "nak"
    RELEASE = "release"
    INFORM = "inform"
    FORCERENEW = "forcerenew"
    LEASEQUERY = "leasequery"
    LEASEUNASSIGNED = "leaseunassigned"
    LEASEUNKNOWN = "leaseunknown"
    LEASEACTIVE = "leaseactive"
    BULKLEASEQUERY = "bulkleasequery"
    LEASEQUERYDONE = "leasequerydone"
    ACTIVELEASEQUERY = "activeleasequery"
    LEASEQUERYSTATUS = "leasequerystatus"
    TLS = "tls"


_MESSAGE_TYPES = dict(enumerate(DhcpMessageType, start=1))


@dataclass(frozen=True, slots=True)
class DhcpMessage:
    """What one DHCP message tells about a client. Addresses are dotted-quad strings."""

    xid: int  # transaction id, pairs a client's request with the server's answer
    message_type: DhcpMessageType | None  # None: option 53 absent or an unknown value
    client_mac: str | None  # chaddr as aa:bb:cc:dd:ee:ff, None unless Ethernet (htype 1, hlen 6)
    ciaddr: str | None  # the client's current address (None when 0.0.0.0)
    yiaddr: str | None  # the address the server gives (None when 0.0.0.0)
    requested_ip: str | None  # option 50
    hostname: str | None  # option 12, printable characters only, at most MAX_HOSTNAME
    vendor_class: str | None  # option 60, e.g. "udhcp 1.21.1", "android-dhcp-13", "MSFT 5.0"
    param_request_list: tuple[int, ...]  # option 55, in the client's order
    client_fqdn: str | None  # option 81's domain name, without the trailing dot
    routers: tuple[str, ...]  # option 3
    server_id: str | None  # option 54
    dns_servers: tuple[str, ...]  # option 6
    malformed: bool  # an option ran past the payload; the options before it are kept

    @property
    def fingerprint(self) -> str:
        """The parameter request list as Fingerbank writes it: ``"1,3,6,15"``."""
        return ",".join(map(str, self.param_request_list))

    @property
    def client_ip(self) -> str | None:
        """The client's address: the one it already has, else the one the server gives it."""
        return self.ciaddr or self.yiaddr


def parse_dhcp(payload: bytes) -> DhcpMessage | None:
    """Decode a DHCPv4 message; ``None`` when ``payload`` is not BOOTP with the DHCP cookie."""
    if len(payload) < OPTIONS_START or payload[BOOTP_HEADER_LEN:OPTIONS_START] != MAGIC_COOKIE:
        return None
    if payload[0] not in (BOOTREQUEST, BOOTREPLY):
        return None
    options, malformed = read_options(payload, OPTIONS_START)
    return DhcpMessage(
        xid=int.from_bytes(payload[4:8], "big"),
        message_type=_message_type(options.get(OPT_MESSAGE_TYPE, b"")),
        client_mac=_chaddr(payload),
        ciaddr=_nonzero_ipv4(payload[12:16]),
        yiaddr=_nonzero_ipv4(payload[16:20]),
        requested_ip=_single_ipv4(options.get(OPT_REQUESTED_IP, b"")),
        hostname=printable(options.get(OPT_HOSTNAME, b""), MAX_HOSTNAME),
        vendor_class=printable(options.get(OPT_VENDOR_CLASS, b""), MAX_VENDOR_CLASS),
        param_request_list=tuple(options.get(OPT_PARAM_REQUEST_LIST, b"")[:MAX_PARAMS]),
        client_fqdn=_client_fqdn(options.get(OPT_CLIENT_FQDN, b"")),
        routers=_ipv4_list(options.get(OPT_ROUTER, b"")),
        server_id=_single_ipv4(options.get(OPT_SERVER_ID, b"")),
        dns_servers=_ipv4_list(options.get(OPT_DNS, b"")),
        malformed=malformed,
    )


def read_options(payload: bytes, start: int) -> tuple[dict[int, bytes], bool]:
    """Walk code/length/value options from ``start``; returns them and whether one was cut short."""
    found: dict[int, bytes] = {}
    offset, end, count = start, len(payload), 0
    while offset < end and count < MAX_OPTIONS:
        code = payload[offset]
        if code == OPT_END:
            break
        if code == OPT_PAD:
            offset += 1
            continue
        if offset + 2 > end or offset + 2 + payload[offset + 1] > end:
            return found, True
        value_end = offset + 2 + payload[offset + 1]
        found[code] = found.get(code, b"") + payload[offset + 2 : value_end]
        offset, count = value_end, count + 1
    return found, False


def printable(raw: bytes, limit: int) -> str | None:
    """Text of a client-chosen string: UTF-8 (leniently), printable characters only, stripped."""
    text = raw.decode("utf-8", "replace")
    kept = "".join(ch for ch in text if ch.isprintable()).strip()
    return kept[:limit] or None


def _message_type(value: bytes) -> DhcpMessageType | None:
    return _MESSAGE_TYPES.get(value[0]) if len(value) == 1 else None


def _chaddr(payload: bytes) -> str | None:
    if payload[1] != HTYPE_ETHERNET or payload[2] != 6:
        return None
    return ":".join(f"{b:02x}" for b in payload[28:34])


def _ipv4(raw: bytes) -> str:
    return f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"


def _nonzero_ipv4(raw: bytes) -> str | None:
    return _ipv4(raw) if len(raw) == 4 and any(raw) else None


def _single_ipv4(value: bytes) -> str | None:
    return _ipv4(value) if len(value) == 4 else None


def _ipv4_list(value: bytes) -> tuple[str, ...]:
    count = min(len(value) // 4, MAX_ADDRESSES)
    return tuple(_ipv4(value[i * 4 : i * 4 + 4]) for i in range(count))


def _client_fqdn(value: bytes) -> str | None:
    """Option 81 (RFC 4702): flags, two obsolete rcodes, then the name (wire or ASCII form)."""
    if len(value) < 4:
        return None
    name = value[3:]
    text = _wire_name(name) if value[0] & FQDN_FLAG_E else printable(name, MAX_FQDN)
    if text is None:
        return None
    return text.rstrip(".")[:MAX_FQDN] or None


def _wire_name(raw: bytes) -> str | None:
    """Uncompressed DNS labels (compression is not allowed in option 81); ``None`` if broken."""
    labels: list[str] = []
    offset = 0
    while offset < len(raw) and raw[offset] != 0:
        length = raw[offset]
        if length > 63 or offset + 1 + length > len(raw):
            return None
        label = printable(raw[offset + 1 : offset + 1 + length], 63)
        if label:
            labels.append(label)
        offset += 1 + length
    return ".".join(labels) or None
