"""Wire bytes for synthetic captures: pure functions over `struct`, no packet library.

Addresses are given as text (`"192.168.1.23"`, `"2a01:e0a::1"`, `"68:db:f5:90:19:64"`) or as their
packed bytes. Every checksum is computed (IPv4 header, TCP, UDP, ICMP, ICMPv6), so an independent
dissector with checksum validation on (tshark) accepts the frames. `FrameTemplate` is the fast path:
the fixed fields of one direction of a flow are summed once and each packet costs a few integer
operations and one `struct.pack`.
"""

from __future__ import annotations

import itertools
import socket
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

Address = str | bytes
"""An IPv4/IPv6 or MAC address, as text or packed bytes."""

ETH_P_IPV4 = 0x0800
ETH_P_ARP = 0x0806
ETH_P_8021Q = 0x8100
ETH_P_IPV6 = 0x86DD
ETH_P_8021AD = 0x88A8  # QinQ service tag (outer)

IPPROTO_HOPOPTS = 0
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_FRAGMENT = 44
IPPROTO_ICMPV6 = 58
IPPROTO_DSTOPTS = 60

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

UNSPECIFIED_IPV4 = bytes(4)
ETH_MIN_FRAME = 60  # without FCS: shorter frames are padded on the wire
BROADCAST_MAC = b"\xff" * 6

_LITTLE_ENDIAN = sys.byteorder == "little"


class LinkType(IntEnum):
    """pcap/pcapng link-layer header types (tcpdump.org/linktypes.html)."""

    ETHERNET = 1
    RAW = 101
    LINUX_SLL = 113
    LINUX_SLL2 = 276


class SllPacketType(IntEnum):
    """Linux cooked-capture packet types, seen from the capturing host."""

    HOST = 0
    BROADCAST = 1
    MULTICAST = 2
    OTHERHOST = 3
    OUTGOING = 4


# ---------------------------------------------------------------- addresses and checksums


def mac_bytes(mac: Address) -> bytes:
    """`"68:db:f5:90:19:64"` (or `-` separated, or 6 bytes) as 6 bytes."""
    if isinstance(mac, bytes):
        if len(mac) != 6:
            raise ValueError(f"a MAC address has 6 bytes, got {len(mac)}")
        return mac
    packed = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    if len(packed) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return packed


def ip_bytes(address: Address) -> bytes:
    """An IPv4 (4 bytes) or IPv6 (16 bytes) address, packed."""
    if isinstance(address, bytes):
        if len(address) not in (4, 16):
            raise ValueError(f"an IP address has 4 or 16 bytes, got {len(address)}")
        return address
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return socket.inet_pton(family, address)


def ones_sum(data: bytes) -> int:
    """The 16-bit one's complement sum of `data` (network order, folded), the core of RFC 1071."""
    if len(data) % 2:
        data += b"\0"
    total = sum(memoryview(data).cast("H"))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    if _LITTLE_ENDIAN:  # RFC 1071 §2(B): the sum is byte-order independent up to a final swap
        total = ((total & 0xFF) << 8) | (total >> 8)
    return total


def fold_checksum(total: int) -> int:
    """One's complement of a sum of 16-bit words: the value that goes into a checksum field."""
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def internet_checksum(data: bytes) -> int:
    """RFC 1071 checksum of `data`."""
    return fold_checksum(ones_sum(data))


def _pseudo_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """Sum of the IPv4 or IPv6 pseudo-header (RFC 793, RFC 8200 §8.1)."""
    return ones_sum(src + dst) + proto + (length >> 16) + (length & 0xFFFF)


def _transport_checksum(src: bytes, dst: bytes, proto: int, segment: bytes) -> int:
    value = fold_checksum(_pseudo_sum(src, dst, proto, len(segment)) + ones_sum(segment))
    return 0xFFFF if value == 0 and proto == IPPROTO_UDP else value


# ---------------------------------------------------------------- link layer


def vlan_tags(vids: Sequence[int], *, qinq: bool = False, pcp: int = 0) -> bytes:
    """802.1Q tags, outermost first; with `qinq` the outer tag is an 802.1ad S-tag (0x88a8)."""
    tags = b""
    for index, vid in enumerate(vids):
        if not 0 <= vid < 4096:
            raise ValueError(f"VLAN id {vid} is outside 0..4095")
        tpid = ETH_P_8021AD if qinq and index == 0 else ETH_P_8021Q
        tags += struct.pack("!HH", tpid, (pcp << 13) | vid)
    return tags


def ethernet_header(
    dst: Address, src: Address, ethertype: int, *, vlans: Sequence[int] = (), qinq: bool = False
) -> bytes:
    """Ethernet II header, with optional 802.1Q / QinQ tags between the addresses and the type."""
    return mac_bytes(dst) + mac_bytes(src) + vlan_tags(vlans, qinq=qinq) + struct.pack("!H", ethertype)


def ethernet(
    dst: Address,
    src: Address,
    ethertype: int,
    payload: bytes,
    *,
    vlans: Sequence[int] = (),
    qinq: bool = False,
    pad: bool = True,
) -> bytes:
    """An Ethernet II frame (no FCS), padded to 60 bytes as it appears on a wire or a mirror port."""
    frame = ethernet_header(dst, src, ethertype, vlans=vlans, qinq=qinq) + payload
    if pad and len(frame) < ETH_MIN_FRAME:
        frame += bytes(ETH_MIN_FRAME - len(frame))
    return frame


def ipv4_multicast_mac(group: Address) -> bytes:
    """01:00:5e + the low 23 bits of an IPv4 multicast group."""
    packed = ip_bytes(group)
    return b"\x01\x00\x5e" + bytes([packed[1] & 0x7F]) + packed[2:]


def ipv6_multicast_mac(group: Address) -> bytes:
    """33:33 + the low 32 bits of an IPv6 multicast group."""
    return b"\x33\x33" + ip_bytes(group)[12:]


def sll_header(packet_type: int, address: Address, protocol: int, *, arphrd: int = 1) -> bytes:
    """Linux cooked capture v1 header (LINKTYPE_LINUX_SLL, 16 bytes)."""
    addr = mac_bytes(address)
    return struct.pack("!HHH8sH", packet_type, arphrd, len(addr), addr, protocol)


def sll2_header(
    protocol: int, packet_type: int, address: Address, *, ifindex: int = 1, arphrd: int = 1
) -> bytes:
    """Linux cooked capture v2 header (LINKTYPE_LINUX_SLL2, 20 bytes)."""
    addr = mac_bytes(address)
    return struct.pack("!HHIHBB8s", protocol, 0, ifindex, arphrd, packet_type, len(addr), addr)


def split_ethernet(frame: bytes) -> tuple[int, bytes]:
    """(ethertype, payload) of an Ethernet frame, past any VLAN tags, IP padding trimmed."""
    offset = 12
    ethertype = struct.unpack_from("!H", frame, offset)[0]
    while ethertype in (ETH_P_8021Q, ETH_P_8021AD):
        offset += 4
        ethertype = struct.unpack_from("!H", frame, offset)[0]
    payload = frame[offset + 2 :]
    if ethertype == ETH_P_IPV4:
        payload = payload[: struct.unpack_from("!H", payload, 2)[0]]
    elif ethertype == ETH_P_IPV6:
        payload = payload[: 40 + struct.unpack_from("!H", payload, 4)[0]]
    return ethertype, payload


def relink(
    frame: bytes, linktype: int, *, packet_type: int = SllPacketType.OTHERHOST, ifindex: int = 1
) -> bytes | None:
    """An Ethernet frame re-framed for another link type; None where it has no form there (ARP in raw IP).

    VLAN tags are dropped (Linux strips them before cooked capture) and so is Ethernet padding.
    """
    if linktype == LinkType.ETHERNET:
        return frame
    ethertype, payload = split_ethernet(frame)
    source = frame[6:12]
    if linktype == LinkType.RAW:
        return payload if ethertype in (ETH_P_IPV4, ETH_P_IPV6) else None
    if linktype == LinkType.LINUX_SLL:
        return sll_header(packet_type, source, ethertype) + payload
    if linktype == LinkType.LINUX_SLL2:
        return sll2_header(ethertype, packet_type, source, ifindex=ifindex) + payload
    raise ValueError(f"unsupported link type {linktype}")


def arp(op: int, sender_mac: Address, sender_ip: Address, target_mac: Address, target_ip: Address) -> bytes:
    """ARP for IPv4 over Ethernet (op 1 request, 2 reply)."""
    return struct.pack(
        "!HHBBH6s4s6s4s",
        1,
        ETH_P_IPV4,
        6,
        4,
        op,
        mac_bytes(sender_mac),
        ip_bytes(sender_ip),
        mac_bytes(target_mac),
        ip_bytes(target_ip),
    )


# ---------------------------------------------------------------- IPv4


_IPV4 = struct.Struct("!BBHHHBBH4s4s")


def ipv4(
    src: Address,
    dst: Address,
    proto: int,
    payload: bytes,
    *,
    ttl: int = 64,
    ident: int = 0,
    tos: int = 0,
    df: bool = True,
    more_fragments: bool = False,
    frag_offset: int = 0,
) -> bytes:
    """An IPv4 datagram (no options) with its header checksum. `frag_offset` is in bytes (multiple of 8)."""
    if frag_offset % 8:
        raise ValueError("an IPv4 fragment offset is a multiple of 8 bytes")
    flags = (0x4000 if df else 0) | (0x2000 if more_fragments else 0) | (frag_offset >> 3)
    fields = [0x45, tos, 20 + len(payload), ident, flags, ttl, proto, 0, ip_bytes(src), ip_bytes(dst)]
    fields[7] = internet_checksum(_IPV4.pack(*fields))
    return _IPV4.pack(*fields) + payload


def ipv4_fragments(datagram: bytes, mtu: int) -> list[bytes]:
    """Split an unfragmented IPv4 datagram without options into fragments that fit `mtu`."""
    version_ihl, tos, total, ident, flags, ttl, proto, _, src, dst = _IPV4.unpack_from(datagram)
    if version_ihl != 0x45 or flags & 0x3FFF:
        raise ValueError("ipv4_fragments takes a whole datagram without IP options")
    payload = datagram[20:total]
    step = (mtu - 20) // 8 * 8
    if step <= 0:
        raise ValueError(f"MTU {mtu} leaves no room for a fragment")
    return [
        ipv4(
            src,
            dst,
            proto,
            payload[start : start + step],
            ttl=ttl,
            ident=ident,
            tos=tos,
            df=False,
            more_fragments=start + step < len(payload),
            frag_offset=start,
        )
        for start in range(0, len(payload), step)
    ]


def icmp_echo(ident: int, seq: int, payload: bytes = b"", *, reply: bool = False) -> bytes:
    """ICMP echo request (type 8) or reply (type 0)."""
    header = struct.pack("!BBHHH", 0 if reply else 8, 0, 0, ident, seq)
    checksum = internet_checksum(header + payload)
    return header[:2] + struct.pack("!H", checksum) + header[4:] + payload


# ---------------------------------------------------------------- IPv6


@dataclass(frozen=True, slots=True)
class ExtensionHeader:
    """An IPv6 extension header: its protocol number and its bytes after the next-header byte."""

    kind: int
    body: bytes


_IPV6 = struct.Struct("!IHBB16s16s")
ROUTER_ALERT_MLD = b"\x05\x02\x00\x00"  # RFC 2711 router alert, value 0 (MLD)


def _options_header(kind: int, options: bytes) -> ExtensionHeader:
    """Hop-by-hop or destination options, padded (Pad1/PadN) to a multiple of 8 bytes."""
    length = 2 + len(options)
    padding = -length % 8
    if padding == 1:
        options += b"\x00"
    elif padding:
        options += bytes([1, padding - 2]) + bytes(padding - 2)
    return ExtensionHeader(kind, bytes([(length + padding) // 8 - 1]) + options)


def hop_by_hop(options: bytes = ROUTER_ALERT_MLD) -> ExtensionHeader:
    """A hop-by-hop options header (by default the router alert that MLD reports carry)."""
    return _options_header(IPPROTO_HOPOPTS, options)


def destination_options(options: bytes = b"") -> ExtensionHeader:
    """A destination options header (padding only by default)."""
    return _options_header(IPPROTO_DSTOPTS, options)


def fragment_header(offset: int, more: bool, ident: int) -> ExtensionHeader:
    """An IPv6 fragment header; `offset` in bytes (multiple of 8)."""
    if offset % 8:
        raise ValueError("an IPv6 fragment offset is a multiple of 8 bytes")
    return ExtensionHeader(IPPROTO_FRAGMENT, struct.pack("!BHI", 0, offset | int(more), ident))


def ipv6(
    src: Address,
    dst: Address,
    next_header: int,
    payload: bytes,
    *,
    hop_limit: int = 64,
    flow_label: int = 0,
    traffic_class: int = 0,
    extensions: Sequence[ExtensionHeader] = (),
) -> bytes:
    """An IPv6 packet; `extensions` are chained in order before the upper-layer `payload`."""
    chain = b""
    kinds = [header.kind for header in extensions] + [next_header]
    for header, following in zip(extensions, kinds[1:], strict=True):
        chain += bytes([following]) + header.body
    first_word = (6 << 28) | (traffic_class << 20) | flow_label
    return (
        _IPV6.pack(first_word, len(chain) + len(payload), kinds[0], hop_limit, ip_bytes(src), ip_bytes(dst))
        + chain
        + payload
    )


def ipv6_fragments(
    src: Address,
    dst: Address,
    next_header: int,
    payload: bytes,
    mtu: int,
    *,
    ident: int,
    hop_limit: int = 64,
    unfragmentable: Sequence[ExtensionHeader] = (),
) -> list[bytes]:
    """Fragments of an IPv6 packet carrying `payload` (an upper-layer segment with its checksum)."""
    fixed = 40 + sum(1 + len(header.body) for header in unfragmentable) + 8
    step = (mtu - fixed) // 8 * 8
    if step <= 0:
        raise ValueError(f"MTU {mtu} leaves no room for a fragment")
    return [
        ipv6(
            src,
            dst,
            next_header,
            payload[start : start + step],
            hop_limit=hop_limit,
            extensions=[*unfragmentable, fragment_header(start, start + step < len(payload), ident)],
        )
        for start in range(0, len(payload), step)
    ]


def icmpv6(src: Address, dst: Address, icmp_type: int, code: int, body: bytes) -> bytes:
    """An ICMPv6 message with its pseudo-header checksum (`body` follows the checksum field)."""
    message = struct.pack("!BBH", icmp_type, code, 0) + body
    checksum = _transport_checksum(ip_bytes(src), ip_bytes(dst), IPPROTO_ICMPV6, message)
    return message[:2] + struct.pack("!H", checksum) + message[4:]


def icmpv6_echo(
    src: Address, dst: Address, ident: int, seq: int, payload: bytes = b"", *, reply: bool = False
) -> bytes:
    """ICMPv6 echo request (128) or reply (129)."""
    return icmpv6(src, dst, 129 if reply else 128, 0, struct.pack("!HH", ident, seq) + payload)


def router_advertisement(
    src: Address,
    dst: Address,
    router_mac: Address,
    prefix: Address,
    *,
    prefix_len: int = 64,
    lifetime: int = 1800,
    mtu: int = 1500,
    dns: Address | None = None,
) -> bytes:
    """ICMPv6 router advertisement (134) with source link-layer, MTU, prefix and RDNSS options."""
    body = struct.pack("!BBHII", 64, 0, lifetime, 0, 0)
    body += struct.pack("!BB6s", 1, 1, mac_bytes(router_mac))
    body += struct.pack("!BBHI", 5, 1, 0, mtu)
    body += struct.pack("!BBBBIII16s", 3, 4, prefix_len, 0xC0, 86400, 14400, 0, ip_bytes(prefix))
    if dns is not None:
        body += struct.pack("!BBHI16s", 25, 3, 0, lifetime, ip_bytes(dns))
    return icmpv6(src, dst, 134, 0, body)


def neighbor_solicitation(src: Address, dst: Address, target: Address, source_mac: Address) -> bytes:
    """ICMPv6 neighbor solicitation (135) with the source link-layer address option."""
    body = struct.pack("!I16sBB6s", 0, ip_bytes(target), 1, 1, mac_bytes(source_mac))
    return icmpv6(src, dst, 135, 0, body)


def neighbor_advertisement(
    src: Address, dst: Address, target: Address, target_mac: Address, *, router: bool = False
) -> bytes:
    """ICMPv6 neighbor advertisement (136), solicited and override, with the target link-layer option."""
    flags = (0x80000000 if router else 0) | 0x60000000
    body = struct.pack("!I16sBB6s", flags, ip_bytes(target), 2, 1, mac_bytes(target_mac))
    return icmpv6(src, dst, 136, 0, body)


def mld_report(src: Address, groups: Sequence[Address]) -> bytes:
    """MLDv2 listener report (143) joining `groups` (change to exclude mode, no sources)."""
    records = b"".join(struct.pack("!BBH16s", 4, 0, 0, ip_bytes(group)) for group in groups)
    return icmpv6(src, "ff02::16", 143, 0, struct.pack("!HH", 0, len(groups)) + records)


def solicited_node(address: Address) -> str:
    """The solicited-node multicast group of an IPv6 address."""
    low = ip_bytes(address)[13:]
    return socket.inet_ntop(socket.AF_INET6, bytes.fromhex("ff02" + "00" * 9 + "01ff") + low)


# ---------------------------------------------------------------- TCP and UDP


_TCP = struct.Struct("!HHIIBBHHH")


def syn_options(mss: int = 1460, wscale: int = 7) -> bytes:
    """MSS, NOP, window scale, NOP, NOP, SACK permitted: 12 bytes, as in a Linux SYN without timestamps."""
    return struct.pack("!BBHBBBBBBB", 2, 4, mss, 1, 3, 3, wscale, 1, 1, 4) + b"\x02"


def tcp(
    src: Address,
    dst: Address,
    sport: int,
    dport: int,
    payload: bytes = b"",
    *,
    seq: int = 0,
    ack: int = 0,
    flags: int = ACK,
    window: int = 64240,
    options: bytes = b"",
) -> bytes:
    """A TCP segment with its checksum (pseudo-header from `src`/`dst`); options padded to 4 bytes."""
    options += bytes(-len(options) % 4)
    header = (
        _TCP.pack(
            sport,
            dport,
            seq & 0xFFFFFFFF,
            ack & 0xFFFFFFFF,
            (5 + len(options) // 4) << 4,
            flags,
            window,
            0,
            0,
        )
        + options
    )
    checksum = _transport_checksum(ip_bytes(src), ip_bytes(dst), IPPROTO_TCP, header + payload)
    return header[:16] + struct.pack("!H", checksum) + header[18:] + payload


def udp(src: Address, dst: Address, sport: int, dport: int, payload: bytes) -> bytes:
    """A UDP datagram with its checksum."""
    header = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    checksum = _transport_checksum(ip_bytes(src), ip_bytes(dst), IPPROTO_UDP, header + payload)
    return header[:6] + struct.pack("!H", checksum) + payload


class FrameTemplate:
    """One direction of a flow (link, addresses, ports) with its fixed checksum terms precomputed.

    `tcp()` and `udp()` build complete Ethernet frames; only lengths, sequence numbers, flags and the
    checksums are computed per call. Pass `payload_sum=ones_sum(payload)` when a payload is reused.
    """

    __slots__ = (
        "_dst",
        "_ip4_sum",
        "_link",
        "_ports",
        "_pseudo",
        "_sport_dport",
        "_src",
        "_ttl",
        "_v6",
        "_v6_word",
    )

    _V4_TCP = struct.Struct("!BBHHHBBH4s4sHHIIBBHHH")
    _V6_TCP = struct.Struct("!IHBB16s16sHHIIBBHHH")
    _V4_UDP = struct.Struct("!BBHHHBBH4s4sHHHH")
    _V6_UDP = struct.Struct("!IHBB16s16sHHHH")

    def __init__(
        self,
        src_mac: Address,
        dst_mac: Address,
        src: Address,
        dst: Address,
        *,
        sport: int,
        dport: int,
        vlans: Sequence[int] = (),
        qinq: bool = False,
        ttl: int = 64,
        flow_label: int = 0,
    ) -> None:
        self._src, self._dst = ip_bytes(src), ip_bytes(dst)
        self._v6 = len(self._src) == 16
        ethertype = ETH_P_IPV6 if self._v6 else ETH_P_IPV4
        self._link = ethernet_header(dst_mac, src_mac, ethertype, vlans=vlans, qinq=qinq)
        self._ttl = ttl
        self._v6_word = (6 << 28) | flow_label
        self._pseudo = ones_sum(self._src + self._dst)
        self._ports = sport + dport
        # IPv4 header words that do not change: version/IHL, flags (DF), TTL/protocol, addresses
        self._ip4_sum = 0x4500 + 0x4000 + (ttl << 8) + self._pseudo
        self._sport_dport = (sport, dport)

    def tcp(
        self,
        seq: int,
        ack: int,
        flags: int,
        payload: bytes = b"",
        *,
        ident: int = 0,
        window: int = 64240,
        options: bytes = b"",
        payload_sum: int | None = None,
    ) -> bytes:
        """An Ethernet frame carrying one TCP segment; `options` a multiple of 4 bytes long."""
        seq &= 0xFFFFFFFF
        ack &= 0xFFFFFFFF
        offset = (5 + len(options) // 4) << 4
        length = 4 * (offset >> 4) + len(payload)
        if payload_sum is None:
            payload_sum = ones_sum(payload) if payload else 0
        if options:
            payload_sum += ones_sum(options)
        total = (
            self._pseudo
            + IPPROTO_TCP
            + length
            + self._ports
            + (seq >> 16)
            + (seq & 0xFFFF)
            + (ack >> 16)
            + (ack & 0xFFFF)
            + (offset << 8 | flags)
            + window
            + payload_sum
        )
        total = (total & 0xFFFF) + (total >> 16)  # sums stay below 2**32: two folds are enough
        check = ~((total & 0xFFFF) + (total >> 16)) & 0xFFFF
        sport, dport = self._sport_dport
        if self._v6:
            header = self._V6_TCP.pack(
                self._v6_word,
                length,
                IPPROTO_TCP,
                self._ttl,
                self._src,
                self._dst,
                sport,
                dport,
                seq,
                ack,
                offset,
                flags,
                window,
                check,
                0,
            )
        else:
            ip_sum = self._ip4_sum + IPPROTO_TCP + 20 + length + ident
            ip_sum = (ip_sum & 0xFFFF) + (ip_sum >> 16)
            ip_check = ~((ip_sum & 0xFFFF) + (ip_sum >> 16)) & 0xFFFF
            header = self._V4_TCP.pack(
                0x45,
                0,
                20 + length,
                ident,
                0x4000,
                self._ttl,
                IPPROTO_TCP,
                ip_check,
                self._src,
                self._dst,
                sport,
                dport,
                seq,
                ack,
                offset,
                flags,
                window,
                check,
                0,
            )
        frame = self._link + header + options + payload
        return frame if len(frame) >= ETH_MIN_FRAME else frame + bytes(ETH_MIN_FRAME - len(frame))

    def udp(self, payload: bytes, *, ident: int = 0, payload_sum: int | None = None) -> bytes:
        """An Ethernet frame carrying one UDP datagram."""
        length = 8 + len(payload)
        if payload_sum is None:
            payload_sum = ones_sum(payload)
        total = self._pseudo + IPPROTO_UDP + length + self._ports + length + payload_sum
        check = fold_checksum(total) or 0xFFFF
        sport, dport = self._sport_dport
        if self._v6:
            header = self._V6_UDP.pack(
                self._v6_word,
                length,
                IPPROTO_UDP,
                self._ttl,
                self._src,
                self._dst,
                sport,
                dport,
                length,
                check,
            )
        else:
            ip_check = fold_checksum(self._ip4_sum + IPPROTO_UDP + 20 + length + ident)
            header = self._V4_UDP.pack(
                0x45,
                0,
                20 + length,
                ident,
                0x4000,
                self._ttl,
                IPPROTO_UDP,
                ip_check,
                self._src,
                self._dst,
                sport,
                dport,
                length,
                check,
            )
        frame = self._link + header + payload
        return frame if len(frame) >= ETH_MIN_FRAME else frame + bytes(ETH_MIN_FRAME - len(frame))


# ---------------------------------------------------------------- DNS and mDNS


DNS_A, DNS_CNAME, DNS_PTR, DNS_TXT, DNS_AAAA, DNS_SRV = 1, 5, 12, 16, 28, 33
DNS_CLASS_IN = 1
MDNS_CACHE_FLUSH = 0x8000
MDNS_GROUP4, MDNS_GROUP6 = "224.0.0.251", "ff02::fb"

Name = str | bytes
"""A DNS name: dotted text, or already in wire form (for DNS-SD instance labels holding dots)."""


def dns_label(label: str) -> bytes:
    """One length-prefixed label; may hold spaces and dots (a DNS-SD instance name)."""
    raw = label.encode()
    if not 0 < len(raw) < 64:
        raise ValueError(f"a DNS label has 1 to 63 bytes: {label!r}")
    return bytes([len(raw)]) + raw


def dns_name(name: Name) -> bytes:
    """A name in wire form (uncompressed); text is split on dots."""
    if isinstance(name, bytes):
        return name
    labels = [label for label in name.rstrip(".").split(".") if label]
    return b"".join(dns_label(label) for label in labels) + b"\0"


@dataclass(frozen=True, slots=True)
class DnsRecord:
    """A resource record; `rdata` is already encoded."""

    name: Name
    rtype: int
    rdata: bytes
    ttl: int = 300
    rclass: int = DNS_CLASS_IN

    def encode(self) -> bytes:
        return (
            dns_name(self.name)
            + struct.pack("!HHIH", self.rtype, self.rclass, self.ttl, len(self.rdata))
            + self.rdata
        )


def _class(cache_flush: bool) -> int:
    return DNS_CLASS_IN | (MDNS_CACHE_FLUSH if cache_flush else 0)


def address_record(name: Name, address: str, ttl: int = 300, *, cache_flush: bool = False) -> DnsRecord:
    """An A or AAAA record, after the address family."""
    rtype = DNS_AAAA if ":" in address else DNS_A
    return DnsRecord(name, rtype, ip_bytes(address), ttl, _class(cache_flush))


def cname_record(name: Name, target: Name, ttl: int = 300) -> DnsRecord:
    return DnsRecord(name, DNS_CNAME, dns_name(target), ttl)


def ptr_record(name: Name, target: Name, ttl: int = 4500, *, cache_flush: bool = False) -> DnsRecord:
    return DnsRecord(name, DNS_PTR, dns_name(target), ttl, _class(cache_flush))


def srv_record(
    name: Name,
    target: Name,
    port: int,
    ttl: int = 120,
    *,
    priority: int = 0,
    weight: int = 0,
    cache_flush: bool = True,
) -> DnsRecord:
    return DnsRecord(
        name,
        DNS_SRV,
        struct.pack("!HHH", priority, weight, port) + dns_name(target),
        ttl,
        _class(cache_flush),
    )


def txt_record(name: Name, entries: Sequence[str], ttl: int = 4500, *, cache_flush: bool = True) -> DnsRecord:
    """A TXT record of `key=value` strings (each up to 255 bytes; an empty list gives one empty string)."""
    raw = [entry.encode() for entry in entries] or [b""]
    if any(len(entry) > 255 for entry in raw):
        raise ValueError("a TXT string has at most 255 bytes")
    return DnsRecord(
        name, DNS_TXT, b"".join(bytes([len(entry)]) + entry for entry in raw), ttl, _class(cache_flush)
    )


def dns_message(
    txid: int,
    flags: int,
    *,
    questions: Sequence[tuple[Name, int]] = (),
    answers: Sequence[DnsRecord] = (),
    authorities: Sequence[DnsRecord] = (),
    additionals: Sequence[DnsRecord] = (),
) -> bytes:
    """A DNS message; questions are (name, qtype) in class IN."""
    header = struct.pack(
        "!HHHHHH", txid, flags, len(questions), len(answers), len(authorities), len(additionals)
    )
    body = b"".join(dns_name(name) + struct.pack("!HH", qtype, DNS_CLASS_IN) for name, qtype in questions)
    records = (*answers, *authorities, *additionals)
    return header + body + b"".join(record.encode() for record in records)


def dns_query(txid: int, name: str, qtype: int = DNS_A) -> bytes:
    """A recursive query for one name."""
    return dns_message(txid, 0x0100, questions=[(name, qtype)])


def dns_response(txid: int, name: str, qtype: int, answers: Sequence[DnsRecord], *, rcode: int = 0) -> bytes:
    """A recursive resolver's answer (QR, RD, RA) repeating the question."""
    return dns_message(txid, 0x8180 | rcode, questions=[(name, qtype)], answers=answers)


def dns_answer_chain(
    name: str, cnames: Sequence[str], addresses: Sequence[str], ttl: int = 300
) -> list[DnsRecord]:
    """`name` → CNAME → … → CNAME → addresses, in answer order."""
    owners = [name, *cnames]
    chain = [cname_record(owner, target, ttl) for owner, target in itertools.pairwise(owners)]
    return chain + [address_record(owners[-1], address, ttl) for address in addresses]


def mdns_query(services: Sequence[str]) -> bytes:
    """An mDNS query (id 0) for the PTR records of DNS-SD service types."""
    return dns_message(0, 0, questions=[(service, DNS_PTR) for service in services])


def mdns_announcement(
    instance: str,
    service: str,
    host: str,
    port: int,
    *,
    txt: Sequence[str] = (),
    addresses: Sequence[str] = (),
) -> bytes:
    """An mDNS response (id 0, authoritative) announcing one DNS-SD instance: PTR, SRV, TXT, A/AAAA.

    `instance` is the user-visible label (`Kitchen`), `service` the type with its domain
    (`_googlecast._tcp.local`), `host` the target host name (`Kitchen-3f9a.local`).
    """
    full = dns_label(instance) + dns_name(service)
    answers = [
        ptr_record("_services._dns-sd._udp.local", service),
        ptr_record(service, full),
        srv_record(full, host, port),
        txt_record(full, txt),
        *(address_record(host, address, 120, cache_flush=True) for address in addresses),
    ]
    return dns_message(0, 0x8400, answers=answers)


# ---------------------------------------------------------------- DHCP


DHCP_DISCOVER, DHCP_OFFER, DHCP_REQUEST, DHCP_ACK = 1, 2, 3, 5
DHCP_DEFAULT_PARAMETERS = (1, 3, 6, 15, 26, 28, 51, 58, 59, 43)  # what dhcpcd/udhcpc commonly ask for
_BOOTP = struct.Struct("!BBBBIHH4s4s4s4s16s64s128sI")
_DHCP_MAGIC = 0x63825363
_BOOTP_MIN = 300  # RFC 1542: some relays drop smaller BOOTP messages, clients pad to 300


def dhcp_option(code: int, value: bytes) -> bytes:
    if len(value) > 255:
        raise ValueError(f"DHCP option {code} is longer than 255 bytes")
    return bytes([code, len(value)]) + value


def dhcp_message(
    op: int,
    xid: int,
    client_mac: Address,
    options: bytes,
    *,
    ciaddr: Address = UNSPECIFIED_IPV4,
    yiaddr: Address = UNSPECIFIED_IPV4,
    siaddr: Address = UNSPECIFIED_IPV4,
    secs: int = 0,
    broadcast: bool = False,
) -> bytes:
    """A BOOTP/DHCP message (op 1 request, 2 reply); `options` are encoded options, END is appended."""
    fixed = _BOOTP.pack(
        op,
        1,
        6,
        0,
        xid,
        secs,
        0x8000 if broadcast else 0,
        ip_bytes(ciaddr),
        ip_bytes(yiaddr),
        ip_bytes(siaddr),
        bytes(4),
        mac_bytes(client_mac),
        b"",
        b"",
        _DHCP_MAGIC,
    )
    message = fixed + options + b"\xff"
    return message + bytes(max(0, _BOOTP_MIN - len(message)))


def dhcp_request(
    xid: int,
    client_mac: Address,
    *,
    hostname: str,
    vendor_class: str | None = None,
    parameters: Sequence[int] = DHCP_DEFAULT_PARAMETERS,
    requested_ip: Address | None = None,
    server_id: Address | None = None,
    message_type: int = DHCP_REQUEST,
) -> bytes:
    """A client's DISCOVER or REQUEST with host name (12), vendor class (60) and parameter list (55)."""
    options = dhcp_option(53, bytes([message_type])) + dhcp_option(61, b"\x01" + mac_bytes(client_mac))
    if requested_ip is not None:
        options += dhcp_option(50, ip_bytes(requested_ip))
    if server_id is not None:
        options += dhcp_option(54, ip_bytes(server_id))
    options += dhcp_option(57, struct.pack("!H", 1500)) + dhcp_option(12, hostname.encode())
    if vendor_class is not None:
        options += dhcp_option(60, vendor_class.encode())
    options += dhcp_option(55, bytes(parameters))
    return dhcp_message(1, xid, client_mac, options)


def dhcp_reply(
    xid: int,
    client_mac: Address,
    message_type: int,
    yiaddr: Address,
    server: Address,
    *,
    router: Address,
    dns: Sequence[Address],
    lease: int = 86400,
    netmask: Address = "255.255.255.0",
) -> bytes:
    """A server's OFFER or ACK with the router (3), DNS (6) and lease (51) options."""
    options = (
        dhcp_option(53, bytes([message_type]))
        + dhcp_option(54, ip_bytes(server))
        + dhcp_option(51, struct.pack("!I", lease))
        + dhcp_option(1, ip_bytes(netmask))
        + dhcp_option(3, ip_bytes(router))
        + dhcp_option(6, b"".join(ip_bytes(a) for a in dns))
    )
    return dhcp_message(2, xid, client_mac, options, yiaddr=yiaddr, siaddr=server)


# ---------------------------------------------------------------- TLS


TLS_MAX_RECORD = 16384 + 256  # TLS 1.3 ciphertext bound (RFC 8446 §5.2)
_CIPHER_SUITES = (
    0x1301,
    0x1302,
    0x1303,
    0xC02B,
    0xC02F,
    0xC02C,
    0xC030,
    0xCCA9,
    0xCCA8,
    0xC013,
    0xC014,
    0x009C,
    0x009D,
    0x002F,
    0x0035,
)
_SIGNATURE_ALGORITHMS = (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)


def _u16_list(values: Sequence[int]) -> bytes:
    return struct.pack(f"!H{len(values)}H", 2 * len(values), *values)


def _vector8(data: bytes) -> bytes:
    return bytes([len(data)]) + data


def _vector16(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


def _extension(kind: int, body: bytes) -> bytes:
    return struct.pack("!H", kind) + _vector16(body)


def tls_record(content_type: int, body: bytes, *, version: int = 0x0303) -> bytes:
    if len(body) > TLS_MAX_RECORD:
        raise ValueError(f"a TLS record holds at most {TLS_MAX_RECORD} bytes")
    return struct.pack("!BHH", content_type, version, len(body)) + body


def _handshake(kind: int, body: bytes) -> bytes:
    return struct.pack("!I", (kind << 24) | len(body)) + body


def tls_client_hello(
    server_name: str | None,
    *,
    alpn: Sequence[str] = ("h2", "http/1.1"),
    random: bytes = bytes(32),
    session_id: bytes = bytes(32),
    key_share: bytes = bytes(32),
    ech: bytes | None = None,
) -> bytes:
    """A TLS 1.3 ClientHello record (as browsers send it) with SNI (omitted when None) and ALPN.

    ``ech``: the payload of an encrypted_client_hello extension (0xfe0d); the SNI is then the outer name.
    """
    extensions = b""
    if server_name is not None:
        host = server_name.encode()
        extensions += _extension(0, _vector16(b"\x00" + _vector16(host)))
    extensions += _extension(23, b"") + _extension(0xFF01, b"\x00")
    extensions += _extension(10, _u16_list((0x001D, 0x0017, 0x0018))) + _extension(11, b"\x01\x00")
    extensions += _extension(35, b"")
    if alpn:
        extensions += _extension(16, _vector16(b"".join(_vector8(p.encode()) for p in alpn)))
    extensions += _extension(5, b"\x01\x00\x00\x00\x00")
    extensions += _extension(13, _u16_list(_SIGNATURE_ALGORITHMS))
    extensions += _extension(51, _vector16(struct.pack("!H", 0x001D) + _vector16(key_share)))
    extensions += _extension(45, b"\x01\x01") + _extension(43, b"\x04\x03\x04\x03\x03")
    if ech is not None:
        extensions += _extension(0xFE0D, ech)
    body = (
        struct.pack("!H", 0x0303)
        + random
        + _vector8(session_id)
        + _u16_list(_CIPHER_SUITES)
        + b"\x01\x00"
        + _vector16(extensions)
    )
    return tls_record(22, _handshake(1, body), version=0x0301)


def tls_server_hello(
    *,
    random: bytes = bytes(32),
    session_id: bytes = bytes(32),
    key_share: bytes = bytes(32),
    cipher: int = 0x1301,
) -> bytes:
    """A TLS 1.3 ServerHello record followed by the middlebox-compatibility ChangeCipherSpec."""
    extensions = _extension(43, b"\x03\x04")
    extensions += _extension(51, struct.pack("!H", 0x001D) + _vector16(key_share))
    body = (
        struct.pack("!H", 0x0303)
        + random
        + _vector8(session_id)
        + struct.pack("!HB", cipher, 0)
        + _vector16(extensions)
    )
    return tls_record(22, _handshake(2, body)) + tls_record(20, b"\x01")


def tls_application_data(data: bytes) -> bytes:
    """One application-data record (the bytes stand for ciphertext)."""
    return tls_record(23, data)


# ---------------------------------------------------------------- HTTP


def http_get(
    host: str,
    path: str = "/",
    *,
    user_agent: str = "Mouchard-sample/1.0",
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """An HTTP/1.1 GET request with a Host header."""
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        f"User-Agent: {user_agent}",
        "Accept: */*",
        "Connection: keep-alive",
        *(f"{name}: {value}" for name, value in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def http_response(
    status: int = 200, reason: str = "OK", body: bytes = b"", *, content_type: str = "text/plain"
) -> bytes:
    """An HTTP/1.1 response with Content-Length."""
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body
