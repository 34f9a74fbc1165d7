"""Link, network and transport headers of a whole batch at once, with numpy.

Every read is bounds-checked against the packet's captured length through masks: a packet whose
headers are cut short or inconsistent is flagged (``malformed``), never raised on. Addresses are
kept as 128-bit values split in two uint64 halves; IPv4 addresses are IPv4-mapped (``::ffff:a.b.c.d``)
so that one code path groups and compares both families.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gateway.parsers.packed import gather_mac, gather_u8, gather_u16, gather_u32, gather_u64_pair
from gateway.sources.capfile import PAD, PacketBatch

B = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
Clip = Callable[[I64], I64]

# Link types (https://www.tcpdump.org/linktypes.html)
LINK_NULL, LINK_ETHERNET, LINK_RAW_DLT, LINK_RAW_DLT_BSD = 0, 1, 12, 14
LINK_RAW, LINK_LOOP, LINK_SLL, LINK_IPV4, LINK_IPV6, LINK_SLL2 = 101, 108, 113, 228, 229, 276
NO_LINK_LAYER = (LINK_NULL, LINK_RAW_DLT, LINK_RAW_DLT_BSD, LINK_RAW, LINK_LOOP, LINK_IPV4, LINK_IPV6)
SUPPORTED_LINKS = (LINK_ETHERNET, LINK_SLL, LINK_SLL2, *NO_LINK_LAYER)

ETH_IPV4, ETH_IPV6 = 0x0800, 0x86DD
VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
# QinQ puts two tags; three allows a provider tag on top. Deeper stacks are not seen on LANs.
MAX_VLAN_TAGS = 3
# IPv6 extension headers followed before giving up on the transport header; real traffic has
# at most two or three, and each step is a vectorised pass over the batch.
MAX_IPV6_EXT = 8
IPV6_EXT = np.array([0, 43, 60, 135, 139, 140, 253, 254], dtype=np.uint8)
IPPROTO_FRAGMENT, IPPROTO_AH, IPPROTO_TCP, IPPROTO_UDP = 44, 51, 6, 17
IPPROTO_ICMP, IPPROTO_ICMPV6 = 1, 58
MAPPED_HI = np.uint64(0)
MAPPED_LO = np.uint64(0xFFFF_0000_0000)


@dataclass(slots=True)
class Headers:
    """Decoded headers of a batch; arrays are aligned with the batch's packets."""

    has_mac: B  # link layer carries source and destination MAC (Ethernet)
    src_mac: U64
    dst_mac: U64
    is_ip: B  # an IPv4 or IPv6 packet (counted), even if its header is damaged
    malformed: B  # counted, but headers beyond the damage are unknown
    unsupported_link: B
    ipver: npt.NDArray[np.uint8]
    src_hi: U64
    src_lo: U64
    dst_hi: U64
    dst_lo: U64
    proto: npt.NDArray[np.uint8]
    fragment: B  # any IP fragment
    later_fragment: B  # a fragment without the transport header
    sport: npt.NDArray[np.uint16]
    dport: npt.NDArray[np.uint16]
    tcp_flags: npt.NDArray[np.uint8]
    l4: I64  # absolute offset of the transport header in the batch buffer
    payload: I64  # absolute offset of the transport payload
    payload_len: I64  # captured payload bytes (Ethernet padding excluded)


def decode(batch: PacketBatch) -> Headers:
    """Decode every packet of ``batch``; never raises on damaged packets."""
    n = len(batch)
    buf, start = batch.buf, batch.offset
    end = start + batch.caplen  # exclusive end of each packet's captured bytes
    limit = len(buf) - PAD // 2  # keep every gather inside the padded buffer

    def clip(off: I64) -> I64:
        return np.clip(off, 0, limit)

    link = batch.linktype
    ether = link == LINK_ETHERNET
    has_mac = ether & (batch.caplen >= 14)
    src_mac = np.zeros(n, np.uint64)
    dst_mac = np.zeros(n, np.uint64)
    if has_mac.any():
        src_mac = np.where(has_mac, gather_mac(buf, clip(start + 6)), np.uint64(0))
        dst_mac = np.where(has_mac, gather_mac(buf, clip(start)), np.uint64(0))

    l3, etype = _link_layer(buf, start, end, link, clip)
    is_v4 = etype == ETH_IPV4
    is_v6 = etype == ETH_IPV6
    is_ip = is_v4 | is_v6
    unsupported = ~np.isin(link, SUPPORTED_LINKS)

    h = Headers(
        has_mac=has_mac,
        src_mac=src_mac,
        dst_mac=dst_mac,
        is_ip=is_ip,
        malformed=np.zeros(n, np.bool_),
        unsupported_link=unsupported,
        ipver=np.where(is_v4, 4, np.where(is_v6, 6, 0)).astype(np.uint8),
        src_hi=np.zeros(n, np.uint64),
        src_lo=np.zeros(n, np.uint64),
        dst_hi=np.zeros(n, np.uint64),
        dst_lo=np.zeros(n, np.uint64),
        proto=np.zeros(n, np.uint8),
        fragment=np.zeros(n, np.bool_),
        later_fragment=np.zeros(n, np.bool_),
        sport=np.zeros(n, np.uint16),
        dport=np.zeros(n, np.uint16),
        tcp_flags=np.zeros(n, np.uint8),
        l4=l3.copy(),
        payload=l3.copy(),
        payload_len=np.zeros(n, np.int64),
    )
    ip_end = end.copy()
    if is_v4.any():
        _ipv4(buf, np.flatnonzero(is_v4), l3, end, ip_end, h, clip)
    if is_v6.any():
        _ipv6(buf, np.flatnonzero(is_v6), l3, end, ip_end, h, clip)
    _transport(buf, end, ip_end, h, clip)
    return h


def _link_layer(
    buf: npt.NDArray[np.uint8], start: I64, end: I64, link: npt.NDArray[np.int32], clip: Clip
) -> tuple[I64, npt.NDArray[np.uint16]]:
    """Offset of the network header and its EtherType (IPv4/IPv6 for link types without one)."""
    c = clip
    n = len(start)
    l3 = start.copy()
    etype = np.zeros(n, np.uint16)

    ether = (link == LINK_ETHERNET) & (end - start >= 14)
    if ether.any():
        l3 = np.where(ether, start + 14, l3)
        etype = np.where(ether, gather_u16(buf, c(start + 12)), etype)
        for _ in range(MAX_VLAN_TAGS):
            tagged = ether & np.isin(etype, VLAN_TAGS) & (l3 + 4 <= end)
            if not tagged.any():
                break
            etype = np.where(tagged, gather_u16(buf, c(l3 + 2)), etype)
            l3 = np.where(tagged, l3 + 4, l3)

    sll = (link == LINK_SLL) & (end - start >= 16)
    if sll.any():
        l3 = np.where(sll, start + 16, l3)
        etype = np.where(sll, gather_u16(buf, c(start + 14)), etype)
    sll2 = (link == LINK_SLL2) & (end - start >= 20)
    if sll2.any():
        l3 = np.where(sll2, start + 20, l3)
        etype = np.where(sll2, gather_u16(buf, c(start)), etype)

    loop = np.isin(link, (LINK_NULL, LINK_LOOP))
    l3 = np.where(loop, start + 4, l3)
    raw = np.isin(link, NO_LINK_LAYER) & (l3 < end)
    if raw.any():
        version = gather_u8(buf, c(l3)) >> 4
        etype = np.where(raw & (version == 4), ETH_IPV4, etype).astype(np.uint16)
        etype = np.where(raw & (version == 6), ETH_IPV6, etype).astype(np.uint16)
    etype = np.where((link == LINK_IPV4) & (l3 < end), ETH_IPV4, etype).astype(np.uint16)
    etype = np.where((link == LINK_IPV6) & (l3 < end), ETH_IPV6, etype).astype(np.uint16)
    return l3, etype


def _ipv4(
    buf: npt.NDArray[np.uint8], idx: I64, l3: I64, end: I64, ip_end: I64, h: Headers, clip: Clip
) -> None:
    c = clip
    base, stop = l3[idx], end[idx]
    vihl = gather_u8(buf, c(base))
    ihl = (vihl & 0x0F).astype(np.int64) * 4
    ok = ((vihl >> 4) == 4) & (ihl >= 20) & (base + ihl <= stop)
    total = gather_u16(buf, c(base + 2)).astype(np.int64)
    frag = gather_u16(buf, c(base + 6))
    offset = frag & 0x1FFF
    more = (frag & 0x2000) != 0
    src = gather_u32(buf, c(base + 12)).astype(np.uint64)
    dst = gather_u32(buf, c(base + 16)).astype(np.uint64)
    h.malformed[idx] = ~ok
    h.src_hi[idx] = np.where(ok, MAPPED_HI, 0)
    h.src_lo[idx] = np.where(ok, MAPPED_LO | src, 0)
    h.dst_hi[idx] = np.where(ok, MAPPED_HI, 0)
    h.dst_lo[idx] = np.where(ok, MAPPED_LO | dst, 0)
    h.proto[idx] = np.where(ok, gather_u8(buf, c(base + 9)), 0)
    h.fragment[idx] = ok & (more | (offset > 0))
    h.later_fragment[idx] = ok & (offset > 0)
    h.l4[idx] = np.where(ok, base + ihl, base)
    # The IP total length bounds the payload (Ethernet pads short frames to 60 bytes).
    ip_end[idx] = np.where(ok & (total >= ihl), np.minimum(stop, base + total), stop)


def _ipv6(
    buf: npt.NDArray[np.uint8], idx: I64, l3: I64, end: I64, ip_end: I64, h: Headers, clip: Clip
) -> None:
    c = clip
    base, stop = l3[idx], end[idx]
    ok = (base + 40 <= stop) & ((gather_u8(buf, c(base)) >> 4) == 6)
    plen = gather_u16(buf, c(base + 4)).astype(np.int64)
    nh = gather_u8(buf, c(base + 6))
    s_hi, s_lo = gather_u64_pair(buf, c(base + 8))
    d_hi, d_lo = gather_u64_pair(buf, c(base + 24))
    l4 = base + 40
    frag = np.zeros(len(idx), np.bool_)
    later = np.zeros(len(idx), np.bool_)
    for _ in range(MAX_IPV6_EXT):
        ext = ok & (np.isin(nh, IPV6_EXT) | (nh == IPPROTO_FRAGMENT) | (nh == IPPROTO_AH))
        if not ext.any():
            break
        fits = l4 + 8 <= stop
        ok &= ~ext | fits
        ext &= fits
        hdr_len = (gather_u8(buf, c(l4 + 1)).astype(np.int64) + 1) * 8
        hdr_len = np.where(nh == IPPROTO_AH, (gather_u8(buf, c(l4 + 1)).astype(np.int64) + 2) * 4, hdr_len)
        is_frag = ext & (nh == IPPROTO_FRAGMENT)
        hdr_len = np.where(is_frag, 8, hdr_len)
        foff = gather_u16(buf, c(l4 + 2)) >> 3
        frag |= is_frag
        later |= is_frag & (foff > 0)
        nh = np.where(ext, gather_u8(buf, c(l4)), nh)
        l4 = np.where(ext, l4 + hdr_len, l4)
    else:
        ok &= ~(np.isin(nh, IPV6_EXT) | (nh == IPPROTO_FRAGMENT) | (nh == IPPROTO_AH))
    ok &= l4 <= stop
    h.malformed[idx] = ~ok
    h.src_hi[idx] = np.where(ok, s_hi, 0)
    h.src_lo[idx] = np.where(ok, s_lo, 0)
    h.dst_hi[idx] = np.where(ok, d_hi, 0)
    h.dst_lo[idx] = np.where(ok, d_lo, 0)
    h.proto[idx] = np.where(ok, nh, 0)
    h.fragment[idx] = ok & frag
    h.later_fragment[idx] = ok & later
    h.l4[idx] = np.where(ok, l4, base)
    ip_end[idx] = np.where(ok & (plen > 0), np.minimum(stop, base + 40 + plen), stop)


def _transport(buf: npt.NDArray[np.uint8], end: I64, ip_end: I64, h: Headers, clip: Clip) -> None:
    """Ports once their 4 bytes are captured (a short snaplen cuts the rest); payload after a whole header."""
    c = clip
    usable = h.is_ip & ~h.malformed & ~h.later_fragment & (h.l4 + 4 <= end)
    ports = usable & ((h.proto == IPPROTO_TCP) | (h.proto == IPPROTO_UDP))
    if not ports.any():
        return
    idx = np.flatnonzero(ports)
    l4, stop = h.l4[idx], end[idx]
    h.sport[idx] = gather_u16(buf, c(l4))
    h.dport[idx] = gather_u16(buf, c(l4 + 2))
    is_tcp = h.proto[idx] == IPPROTO_TCP
    doff = (gather_u8(buf, c(l4 + 12)) >> 4).astype(np.int64) * 4
    whole = np.where(is_tcp, (l4 + 20 <= stop) & (doff >= 20) & (l4 + doff <= stop), l4 + 8 <= stop)
    h.tcp_flags[idx] = np.where(is_tcp & (l4 + 14 <= stop), gather_u8(buf, c(l4 + 13)), 0)
    pay = np.where(is_tcp, l4 + np.maximum(doff, 20), l4 + 8)
    h.payload[idx] = np.where(whole, pay, l4)
    h.payload_len[idx] = np.where(whole, np.maximum(ip_end[idx] - pay, 0), 0)
