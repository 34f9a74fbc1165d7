"""Router mode: per-flow byte and packet counters from the kernel's connection tracking.

When Mouchard is the lab's router, the kernel already counts every flow it forwards
(``nf_conntrack_acct=1``): Mouchard reads those counters over ctnetlink instead of counting packets,
so traffic costs nothing per packet in Python. Two readings feed one table of last-seen counters:

- **events**: the kernel multicasts a DESTROY message with the final counters of each flow that ends;
- **dumps**: every aggregation interval, the whole table is read, so long flows show up while they last.

Each reading reports what a flow did since the previous reading (final minus already reported), once.
The original tuple names the LAN end of a flow even behind NAT; the LAN address becomes the device's
MAC through the kernel's neighbour table (else the address itself, ``ip:<address>``). The original
direction of a device's flow is ``bytes_out``, the reply ``bytes_in`` (the other way round when the
flow came in from outside). The kernel counts IP bytes: each packet gets its link-layer header
(14 bytes on Ethernet) added, so totals equal pcap mode's, which counts whole frames.

Names still come from packets: a narrow capture (`NAMES_BPF`: DNS, mDNS, DHCP, TLS ClientHellos,
QUIC Initials, HTTP requests, router advertisements) is fed to `Gateway.observe_names`, which names
without counting. The same capture takes what connection tracking never counts, and those packets
(`split_untracked`) go through `Gateway.process` like pcap mode's: frames to multicast and broadcast
addresses (mDNS, SSDP, DHCP, IGMP, neighbour discovery: the kernel confirms no entry for a group the
gateway has not joined), and ICMP errors (accounted to no flow). Conntrack entries to multicast or
broadcast addresses are skipped, so nothing is counted twice.

In a network namespace (and on a host whose firewall never asks for connection state) the kernel
tracks nothing until a rule uses ``ct state``: `prepare_kernel` adds a table ``inet mouchard`` with
an ``established,related accept`` rule in ``forward``, which changes no verdict of other tables.

The messages are parsed here (bounds-checked ``struct`` reads over the netlink attributes) rather
than by pyroute2: its NFCTSocket decodes about 6,000 entries/s (3.2 s for 20,000 entries, which
would stall the loop), and its synchronous API cannot run inside the gateway's asyncio loop.
pyroute2 encodes and decodes the test messages as an independent oracle.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from gateway.aggregators.traffic import KIND_IP, KIND_MAC
from gateway.parsers.headers import IPPROTO_ICMPV6, Headers, decode
from gateway.parsers.packed import gather_u8
from gateway.sources.capfile import PacketBatch

log = logging.getLogger(__name__)

Array = npt.NDArray[np.generic]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

# ---------------------------------------------------------------- netlink and ctnetlink numbers
# (linux/netlink.h, linux/rtnetlink.h, linux/netfilter/nfnetlink*.h)

NETLINK_ROUTE, NETLINK_NETFILTER = 0, 12
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_DUMP_INTR, NLM_F_DUMP = 0x1, 0x2, 0x10, 0x300
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_NEW, IPCTNL_MSG_CT_GET, IPCTNL_MSG_CT_DELETE = 0, 1, 2
NFNLGRP_CONNTRACK_DESTROY = 3
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_STATUS = 1, 2, 3
CTA_COUNTERS_ORIG, CTA_COUNTERS_REPLY, CTA_ID, CTA_ZONE = 9, 10, 12, 18
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST = 1, 2, 3, 4
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
CTA_COUNTERS_PACKETS, CTA_COUNTERS_BYTES, CTA_COUNTERS32_PACKETS, CTA_COUNTERS32_BYTES = 1, 2, 3, 4
IPS_DYING = 1 << 9
RTM_NEWADDR, RTM_GETADDR, RTM_NEWNEIGH, RTM_GETNEIGH = 20, 22, 28, 30
IFA_ADDRESS, IFA_LOCAL = 1, 2
NDA_DST, NDA_LLADDR = 1, 2
NUD_INCOMPLETE, NUD_FAILED, NUD_NOARP = 0x01, 0x20, 0x40
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER
NETLINK_BROADCAST_ERROR = 4
SOL_NETLINK = 270

_NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_NLATTR = struct.Struct("=HH")
_NFGENMSG = struct.Struct("=BBH")  # family, version, resource id (big-endian, unused)
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, interface index
_NDMSG = struct.Struct("=BxxxiHBB")  # family, interface index, state, flags, type
_BE16, _BE32, _BE64 = struct.Struct(">H"), struct.Struct(">I"), struct.Struct(">Q")

# ---------------------------------------------------------------- bounds, and why

ETHERNET_HEADER = 14  # link-layer bytes added to each packet on an Ethernet (or Wi-Fi AP) interface
# Flows whose last-seen counters are kept. The kernel's own table (nf_conntrack_max) is 65,536 to
# 262,144 entries by memory; a flow beyond this bound is reported only when it ends (never twice).
MAX_FLOWS = 262_144
# Neighbour entries (LAN address -> MAC) kept between refreshes; a lab has hundreds, a flood of
# spoofed addresses clears the cache (it is re-read from the kernel).
MAX_NEIGHBOURS = 16_384
# Event messages handled per wake-up, so a burst of ending flows cannot starve the loop.
MAX_EVENTS_PER_READ = 50_000
# Socket buffers: DESTROY messages are about 250 bytes; 8 MiB holds a few seconds of a busy router.
EVENT_RCVBUF = 8 << 20
DUMP_RCVBUF = 4 << 20
RECV_BYTES = 1 << 16
# The neighbour table is re-read at most this often on a miss (a device not yet resolved).
NEIGHBOUR_RETRY_S = 1.0
SYSCTL = Path("/proc/sys/net/netfilter")
NFT_TABLE = "mouchard"
NFT_RULESET = f"""table inet {NFT_TABLE} {{
    chain forward {{
        type filter hook forward priority filter; policy accept;
        ct state established,related accept comment "makes the kernel track flows for Mouchard"
    }}
}}
"""

# The few packets that carry names, for `Gateway.observe_names`. libpcap's ``tcp[]`` reads only
# IPv4, so IPv6 payloads are read at fixed offsets (no extension headers: the usual case).
_HTTP_WORDS = (b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN")
_TCP4_PAYLOAD = "tcp[((tcp[12] & 0xf0) >> 2):{n}]"
_TCP6_PAYLOAD = "ip6[(40 + ((ip6[52] & 0xf0) >> 2)):{n}]"


def _starts(words: list[tuple[int, int]]) -> str:
    v4 = " or ".join(f"{_TCP4_PAYLOAD.format(n=n)} = 0x{w:0{2 * n}x}" for w, n in words)
    v6 = " or ".join(f"{_TCP6_PAYLOAD.format(n=n)} = 0x{w:0{2 * n}x}" for w, n in words)
    return f"(ip and tcp and ({v4})) or (ip6 and ip6[6] = 6 and ({v6}))"


# ICMP types connection tracking follows as flows (echo, timestamp, information, address mask; ICMPv6
# echo and node information); any other ICMP packet, errors above all, is counted by no entry.
TRACKED_ICMP = (0, 8, 13, 14, 15, 16, 17, 18)
TRACKED_ICMPV6 = (128, 129, 139, 140)
UNTRACKED_BPF = (
    "ether multicast"  # group bit of the destination MAC: multicast and broadcast frames
    f" or (icmp and not ({' or '.join(f'icmp[0] = {t}' for t in TRACKED_ICMP)}))"
    f" or (ip6 and ip6[6] = 58 and not ({' or '.join(f'ip6[40] = {t}' for t in TRACKED_ICMPV6)}))"
)
NAMES_BPF = " or ".join(
    (
        UNTRACKED_BPF,
        "port 53",  # DNS answers name addresses; queries feed the dns measurement
        "udp port 5353 or udp port 67 or udp port 68",  # mDNS and DHCP: what devices say they are
        "tcp dst port 853",  # DNS over TLS: a device resolving on its own
        "(icmp6 and ip6[40] = 134)",  # router advertisements: their prefixes are LAN
        # TLS handshake records (0x16 0x03) and HTTP/1.x request lines
        _starts([(0x1603, 2)] + [(int.from_bytes(w, "big"), 4) for w in _HTTP_WORDS]),
        # QUIC long-header packets (Initials) of at least 1,200 bytes
        "(greater 1200 and ((ip and udp port 443 and udp[8] & 0xc0 = 0xc0)"
        " or (ip6 and ip6[6] = 17 and (ip6[40:2] = 443 or ip6[42:2] = 443) and ip6[48] & 0xc0 = 0xc0)))",
    )
)


def names_filter(extra: str = "") -> str:
    """The narrow capture's BPF filter, ANDed with the user's ``capture.bpf_filter``."""
    return f"({NAMES_BPF}) and ({extra})" if extra.strip() else NAMES_BPF


class ConntrackSetupError(Exception):
    """Router mode cannot start; the message says what the user must do (exit 2)."""


class ConntrackError(Exception):
    """A ctnetlink request failed while running (the stage is retried on the next period)."""


# ---------------------------------------------------------------- parsing (pure, never raises)
# Records here are NamedTuples, not frozen dataclasses: a dump builds three per entry, tens of
# thousands at a time, and a NamedTuple is several times cheaper to build (and hashes as a key).


class Counters(NamedTuple):
    packets_orig: int
    bytes_orig: int
    packets_reply: int
    bytes_reply: int


ZERO = Counters(0, 0, 0, 0)


class CtTuple(NamedTuple):
    src: bytes  # 4 or 16 bytes
    dst: bytes
    proto: int
    sport: int  # 0 without ports (ICMP, others)
    dport: int


FlowKey = tuple[int, int, CtTuple]  # (kernel id, zone, original tuple)


class CtFlow(NamedTuple):
    """One conntrack entry as a ctnetlink message describes it."""

    orig: CtTuple
    reply: CtTuple
    ct_id: int
    zone: int
    status: int
    counters: Counters | None  # None: the entry has no counters (acct was off when it was created)
    destroyed: bool  # a DESTROY event: these are the final counters

    @property
    def key(self) -> FlowKey:
        """Identifies the entry while it lives (the kernel's id alone may come back for a new entry)."""
        return (self.ct_id, self.zone, self.orig)


class NetlinkMessage(NamedTuple):
    """One message of a datagram: its header fields and where its body lies in ``data``."""

    type: int
    flags: int
    data: bytes  # the whole datagram (not copied)
    start: int  # first byte after the 16-byte header
    end: int


def split_messages(data: bytes) -> Iterator[NetlinkMessage]:
    """The netlink messages of one datagram; stops at the first whose length does not fit."""
    pos, size = 0, len(data)
    while pos + _NLMSGHDR.size <= size:
        length, mtype, flags, _seq, _port = _NLMSGHDR.unpack_from(data, pos)
        if length < _NLMSGHDR.size or pos + length > size:
            return
        yield NetlinkMessage(mtype, flags, data, pos + _NLMSGHDR.size, pos + length)
        pos += (length + 3) & ~3


def _attrs(data: bytes, pos: int, end: int) -> dict[int, tuple[int, int]]:
    """Attribute type -> (payload start, payload end); a damaged attribute ends the walk."""
    out: dict[int, tuple[int, int]] = {}
    while pos + 4 <= end:
        length, atype = _NLATTR.unpack_from(data, pos)
        if length < 4 or pos + length > end:
            break
        out[atype & NLA_TYPE_MASK] = (pos + 4, pos + length)
        pos += (length + 3) & ~3
    return out


def _tuple(data: bytes, pos: int, end: int) -> CtTuple | None:
    """CTA_TUPLE_*: addresses (CTA_TUPLE_IP) and protocol with ports (CTA_TUPLE_PROTO)."""
    attr = _NLATTR.unpack_from
    src = dst = b""
    proto = -1
    sport = dport = 0
    while pos + 4 <= end:
        length, atype = attr(data, pos)
        stop = pos + length
        if length < 4 or stop > end:
            return None
        atype &= NLA_TYPE_MASK
        p = pos + 4
        while p + 4 <= stop and atype in (CTA_TUPLE_IP, CTA_TUPLE_PROTO):
            n, inner = attr(data, p)
            if n < 4 or p + n > stop:
                return None
            inner &= NLA_TYPE_MASK
            if atype == CTA_TUPLE_IP:
                if inner in (CTA_IP_V4_SRC, CTA_IP_V6_SRC):
                    src = data[p + 4 : p + n]
                elif inner in (CTA_IP_V4_DST, CTA_IP_V6_DST):
                    dst = data[p + 4 : p + n]
            elif inner == CTA_PROTO_NUM and n >= 5:
                proto = data[p + 4]
            elif inner == CTA_PROTO_SRC_PORT and n >= 6:
                sport = _BE16.unpack_from(data, p + 4)[0]
            elif inner == CTA_PROTO_DST_PORT and n >= 6:
                dport = _BE16.unpack_from(data, p + 4)[0]
            p += (n + 3) & ~3
        pos += (length + 3) & ~3
    if proto < 0 or len(src) not in (4, 16) or len(dst) != len(src):
        return None
    return CtTuple(src, dst, proto, sport, dport)


def _counters(data: bytes, pos: int, end: int) -> tuple[int, int] | None:
    """(packets, bytes) of one direction; 64-bit values (32-bit ones from old kernels)."""
    packets = octets = -1
    while pos + 4 <= end:
        length, atype = _NLATTR.unpack_from(data, pos)
        if length < 4 or pos + length > end:
            return None
        atype &= NLA_TYPE_MASK
        if atype == CTA_COUNTERS_PACKETS and length >= 12:
            packets = _BE64.unpack_from(data, pos + 4)[0]
        elif atype == CTA_COUNTERS_BYTES and length >= 12:
            octets = _BE64.unpack_from(data, pos + 4)[0]
        elif atype == CTA_COUNTERS32_PACKETS and length >= 8 and packets < 0:
            packets = _BE32.unpack_from(data, pos + 4)[0]
        elif atype == CTA_COUNTERS32_BYTES and length >= 8 and octets < 0:
            octets = _BE32.unpack_from(data, pos + 4)[0]
        pos += (length + 3) & ~3
    return (packets, octets) if packets >= 0 and octets >= 0 else None


def parse_conntrack(msg: NetlinkMessage) -> CtFlow | None:
    """A ctnetlink NEW/DELETE message (an event or a dump entry) as a flow; None for anything else."""
    subsystem, command = msg.type >> 8, msg.type & 0xFF
    if subsystem != NFNL_SUBSYS_CTNETLINK or command not in (IPCTNL_MSG_CT_NEW, IPCTNL_MSG_CT_DELETE):
        return None
    data, pos, end = msg.data, msg.start + _NFGENMSG.size, msg.end
    orig = reply = None
    c_orig = c_reply = None
    ct_id = zone = status = 0
    while pos + 4 <= end:
        length, atype = _NLATTR.unpack_from(data, pos)
        stop = pos + length
        if length < 4 or stop > end:
            break
        atype &= NLA_TYPE_MASK
        if atype == CTA_TUPLE_ORIG:
            orig = _tuple(data, pos + 4, stop)
        elif atype == CTA_TUPLE_REPLY:
            reply = _tuple(data, pos + 4, stop)
        elif atype == CTA_COUNTERS_ORIG:
            c_orig = _counters(data, pos + 4, stop)
        elif atype == CTA_COUNTERS_REPLY:
            c_reply = _counters(data, pos + 4, stop)
        elif atype == CTA_STATUS and length >= 8:
            status = _BE32.unpack_from(data, pos + 4)[0]
        elif atype == CTA_ID and length >= 8:
            ct_id = _BE32.unpack_from(data, pos + 4)[0]
        elif atype == CTA_ZONE and length >= 6:
            zone = _BE16.unpack_from(data, pos + 4)[0]
        pos += (length + 3) & ~3
    if orig is None or reply is None or len(orig.src) != len(reply.src):
        return None
    counters = None
    if c_orig is not None and c_reply is not None:
        counters = Counters(c_orig[0], c_orig[1], c_reply[0], c_reply[1])
    return CtFlow(orig, reply, ct_id, zone, status, counters, command == IPCTNL_MSG_CT_DELETE)


def netlink_error(msg: NetlinkMessage) -> int:
    """The (positive) errno of an NLMSG_ERROR message; 0 is an acknowledgement."""
    if msg.end - msg.start < 4:
        return errno.EPROTO
    code: int = struct.unpack_from("=i", msg.data, msg.start)[0]
    return -code


# ---------------------------------------------------------------- deltas


@dataclass(slots=True)
class FlowStats:
    events: int = 0  # DESTROY events read
    events_lost: int = 0  # times the kernel said events were dropped (socket buffer full)
    dumps: int = 0
    dump_entries: int = 0  # entries in the last dump
    dump_ms: int = 0  # duration of the last dump
    uncounted: int = 0  # entries without counters (created before nf_conntrack_acct was on)
    untracked: int = 0  # flows beyond MAX_FLOWS, reported when they end
    swept: int = 0  # flows gone from a dump without their DESTROY event (lost events)
    skipped: int = 0  # flows with no LAN end (the gateway's own, transit between outside hosts)
    group: int = 0  # readings of flows to multicast or broadcast addresses (the capture counts those)
    rows: int = 0  # flow readings handed to the gateway


@dataclass(slots=True)
class FlowTable:
    """Last counters reported per live flow, so each byte is reported once.

    A dump reports ``current - last``; a DESTROY event ``final - last`` and forgets the flow. A flow
    first seen when it ends reports all its counters. Counters below the last reading (someone zeroed
    them, `conntrack -Z`) count from zero again. The table is bounded: a flow that does not fit is
    not remembered, so it reports nothing from dumps and everything when it ends.
    """

    max_flows: int = MAX_FLOWS
    last: dict[FlowKey, Counters] = field(default_factory=dict)
    stats: FlowStats = field(default_factory=FlowStats)

    def update(self, flow: CtFlow, final: bool = False) -> Counters | None:
        """What ``flow`` did since its last reading (None: nothing); ``final``: the gateway stops."""
        now = flow.counters
        if now is None:
            self.stats.uncounted += 1
            return None
        key = flow.key
        if flow.destroyed:
            before = self.last.pop(key, ZERO)
        elif flow.status & IPS_DYING:
            return None  # its DESTROY event carries the final counters
        else:
            known = self.last.get(key)
            if known is not None or len(self.last) < self.max_flows:
                self.last[key] = now
            elif not final:
                self.stats.untracked += 1
                return None
            before = ZERO if known is None else known
        delta = _minus(now, before)
        return delta if any(delta) else None

    def baseline(self, flow: CtFlow) -> None:
        """Counters before Mouchard started belong to no bin of this run: remember, report nothing."""
        if flow.counters is not None and not flow.status & IPS_DYING and len(self.last) < self.max_flows:
            self.last[flow.key] = flow.counters

    def sweep(self, alive: set[FlowKey]) -> None:
        """After a complete dump (and the events queued meanwhile): forget flows that are gone."""
        gone = [k for k in self.last if k not in alive]
        for k in gone:
            del self.last[k]
        self.stats.swept += len(gone)


def _minus(now: Counters, before: Counters) -> Counters:
    if now.packets_orig < before.packets_orig or now.packets_reply < before.packets_reply:
        return now  # counters were zeroed since the last reading
    return Counters(*(a - b for a, b in zip(now, before, strict=True)))


# ---------------------------------------------------------------- the LAN side of a flow


def address_key(raw: bytes) -> tuple[int, int]:
    """(hi, lo) of a packed address as the headers decoder keeps it (IPv4 as IPv4-mapped)."""
    if len(raw) == 4:
        return 0, 0xFFFF_0000_0000 | int.from_bytes(raw, "big")
    value = int.from_bytes(raw, "big")
    return value >> 64, value & 0xFFFF_FFFF_FFFF_FFFF


@dataclass(slots=True)
class LanView:
    """What the kernel knows about the LAN interface: its subnets, the gateway's own addresses,
    and its neighbours (LAN address -> MAC). A flow's device end is an address on the LAN
    interface's subnets or among its neighbours, never one of the gateway's own."""

    subnets: list[tuple[int, int, int]] = field(default_factory=list)  # (length, network, mask)
    own: set[bytes] = field(default_factory=set)
    macs: dict[bytes, int] = field(default_factory=dict)

    def is_device(self, addr: bytes) -> bool:
        if addr in self.own:
            return False
        if addr in self.macs:
            return True
        value = int.from_bytes(addr, "big")
        return any(n == len(addr) and value & mask == net for n, net, mask in self.subnets)

    def is_group(self, addr: bytes) -> bool:
        """A multicast or broadcast address (limited, or of one of the LAN interface's subnets)."""
        if len(addr) == 16:
            return addr[0] == 0xFF
        if addr[0] >> 4 == 0xE or addr == b"\xff\xff\xff\xff":
            return True
        value = int.from_bytes(addr, "big")
        return any(
            n == 4 and mask != 0xFFFF_FFFF and value == net | (~mask & 0xFFFF_FFFF)
            for n, net, mask in self.subnets
        )

    def add_subnet(self, addr: bytes, prefix: int) -> None:
        bits = len(addr) * 8
        mask = ((1 << bits) - 1) ^ ((1 << (bits - min(prefix, bits))) - 1)
        entry = (len(addr), int.from_bytes(addr, "big") & mask, mask)
        if entry not in self.subnets:
            self.subnets.append(entry)

    def add_neighbour(self, addr: bytes, mac: int) -> None:
        if len(self.macs) >= MAX_NEIGHBOURS and addr not in self.macs:
            self.macs.clear()  # bounded: re-read from the kernel on the next refresh
        self.macs[addr] = mac


def parse_address(msg: NetlinkMessage) -> tuple[int, int, bytes] | None:
    """An RTM_NEWADDR message: (interface index, prefix length, address)."""
    if msg.type != RTM_NEWADDR or msg.end - msg.start < _IFADDRMSG.size:
        return None
    _family, prefix, _flags, _scope, index = _IFADDRMSG.unpack_from(msg.data, msg.start)
    a = _attrs(msg.data, msg.start + _IFADDRMSG.size, msg.end)
    span = a.get(IFA_LOCAL) or a.get(IFA_ADDRESS)  # IFA_LOCAL is ours on point-to-point links
    if span is None or span[1] - span[0] not in (4, 16):
        return None
    return index, prefix, msg.data[span[0] : span[1]]


def parse_neighbour(msg: NetlinkMessage) -> tuple[int, bytes, int] | None:
    """An RTM_NEWNEIGH message with a usable MAC: (interface index, address, MAC as an int)."""
    if msg.type != RTM_NEWNEIGH or msg.end - msg.start < _NDMSG.size:
        return None
    _family, index, state, _flags, _type = _NDMSG.unpack_from(msg.data, msg.start)
    if state & (NUD_INCOMPLETE | NUD_FAILED | NUD_NOARP):
        return None
    a = _attrs(msg.data, msg.start + _NDMSG.size, msg.end)
    dst, mac = a.get(NDA_DST), a.get(NDA_LLADDR)
    if dst is None or mac is None or dst[1] - dst[0] not in (4, 16) or mac[1] - mac[0] != 6:
        return None
    return index, msg.data[dst[0] : dst[1]], int.from_bytes(msg.data[mac[0] : mac[1]], "big")


def read_lan(interface: str) -> LanView:
    """The LAN interface's subnets and neighbours, and every address of the gateway (rtnetlink)."""
    index = socket.if_nametoindex(interface)
    view = LanView()
    for msg in _dump(NETLINK_ROUTE, RTM_GETADDR, struct.pack("=BBBBI", 0, 0, 0, 0, 0)):
        found = parse_address(msg)
        if found is not None:
            ifindex, prefix, addr = found
            view.own.add(addr)
            if ifindex == index:
                view.add_subnet(addr, prefix)
    for msg in _dump(NETLINK_ROUTE, RTM_GETNEIGH, struct.pack("=BxxxiHBB", 0, 0, 0, 0, 0)):
        neighbour = parse_neighbour(msg)
        if neighbour is not None and neighbour[0] == index:
            view.add_neighbour(neighbour[1], neighbour[2])
    return view


# ---------------------------------------------------------------- readings to flow columns


# The dtypes of the packet path's headers (gateway/parsers/headers.py); values are int64.
_DTYPES: dict[str, type[np.generic]] = {
    "kind": np.uint8,
    "dhi": np.uint64,
    "dlo": np.uint64,
    "rhi": np.uint64,
    "rlo": np.uint64,
    "proto": np.uint8,
    "lport": np.uint16,
    "rport": np.uint16,
}
VALUE_COLUMNS = ("bytes_out", "bytes_in", "packets_out", "packets_in")


@dataclass(slots=True)
class FlowRows:
    """Columns for `Gateway.process_flows`, built one flow reading at a time."""

    link_header: int
    cols: dict[str, list[int]] = field(default_factory=lambda: {k: [] for k in (*_DTYPES, *VALUE_COLUMNS)})

    def __len__(self) -> int:
        return len(self.cols["kind"])

    def add(
        self, device: tuple[int, int, int], local: CtTuple, sent: tuple[int, int], got: tuple[int, int]
    ) -> None:
        """``local``: the tuple in the device's sending direction; ``sent``/``got``: (packets, bytes)."""
        c = self.cols
        rhi, rlo = address_key(local.dst)
        for name, value in (
            ("kind", device[0]),
            ("dhi", device[1]),
            ("dlo", device[2]),
            ("rhi", rhi),
            ("rlo", rlo),
            ("proto", local.proto),
            ("lport", local.sport),
            ("rport", local.dport),
            ("packets_out", sent[0]),
            ("bytes_out", sent[1] + self.link_header * sent[0]),
            ("packets_in", got[0]),
            ("bytes_in", got[1] + self.link_header * got[0]),
        ):
            c[name].append(value)

    def columns(self) -> dict[str, Array]:
        return {k: np.array(v, dtype=_DTYPES.get(k, np.int64)) for k, v in self.cols.items()}


@dataclass(frozen=True, slots=True)
class FlowBatch:
    ts_ns: I64
    flows: dict[str, Array]

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])


# ---------------------------------------------------------------- kernel set-up


def prepare_kernel() -> list[str]:
    """Make the kernel track and count flows; what was done or could not be, for the user.

    Raises ConntrackSetupError when flows cannot be counted at all (acct off and not settable).
    """
    notes = [ensure_tracking()]
    notes.append(_ensure_sysctl("nf_conntrack_acct", "1", "per-flow byte counters"))
    events = _read_sysctl("nf_conntrack_events")
    if events == "0":
        notes.append(_ensure_sysctl("nf_conntrack_events", "1", "events of ending flows"))
    return [n for n in notes if n]


def ensure_tracking() -> str:
    """Create the ``inet mouchard`` nftables table whose ``ct state`` rule turns tracking on."""
    nft = shutil.which("nft")
    advice = (
        "the kernel tracks connections only when a firewall rule uses their state (in a network namespace "
        "always): if none does, router mode counts nothing. Add one as root: `nft -f -` with\n" + NFT_RULESET
    )
    if nft is None:
        return f"nft not found (apt-get install nftables); {advice}"
    listed = subprocess.run(
        [nft, "list", "table", "inet", NFT_TABLE], capture_output=True, text=True, check=False
    )
    if listed.returncode == 0:
        return ""
    made = subprocess.run([nft, "-f", "-"], input=NFT_RULESET, capture_output=True, text=True, check=False)
    if made.returncode != 0:
        why = made.stderr.strip().splitlines()[-1] if made.stderr.strip() else f"exit {made.returncode}"
        return f"could not create nftables table inet {NFT_TABLE} ({why}; needs CAP_NET_ADMIN); {advice}"
    return (
        f"created nftables table inet {NFT_TABLE} (forward: ct state established,related accept) so that the "
        "kernel tracks connections; it changes no verdict. Remove it with `nft delete table inet mouchard`."
    )


def _read_sysctl(name: str) -> str | None:
    try:
        return (SYSCTL / name).read_text().strip()
    except OSError:
        return None


def _ensure_sysctl(name: str, value: str, what: str) -> str:
    current = _read_sysctl(name)
    if current is None:
        raise ConntrackSetupError(
            f"connection tracking is not available: {SYSCTL / name} is missing. Load it with "
            "`modprobe nf_conntrack` (the nftables rule above loads it too), or use capture.source: pcap."
        )
    if current == value:
        return ""
    try:
        (SYSCTL / name).write_text(value)
    except OSError as exc:
        raise ConntrackSetupError(
            f"net.netfilter.{name} is {current}, so the kernel keeps no {what}, and Mouchard cannot set it "
            f"({exc.strerror}; needs CAP_NET_ADMIN). Run `sysctl -w net.netfilter.{name}={value}` and add "
            f"`net.netfilter.{name} = {value}` to /etc/sysctl.d/90-mouchard.conf, or use capture.source pcap."
        ) from None
    return f"set net.netfilter.{name}={value} ({what}; it was {current}); flows older than this have none"


def link_header_bytes(interface: str) -> int:
    """Bytes of link-layer header per packet: 14 on Ethernet and Wi-Fi AP interfaces, 0 on IP tunnels."""
    try:
        kind = int(Path(f"/sys/class/net/{interface}/type").read_text())
    except (OSError, ValueError):
        return ETHERNET_HEADER
    return ETHERNET_HEADER if kind == 1 else 0  # ARPHRD_ETHER


# ---------------------------------------------------------------- netlink sockets


def _socket(protocol: int, rcvbuf: int) -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
    try:
        sock.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)  # SO_RCVBUFFORCE: past rmem_max with CAP_NET_ADMIN
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    return sock


def _dump(protocol: int, mtype: int, body: bytes, rcvbuf: int = DUMP_RCVBUF) -> Iterator[NetlinkMessage]:
    """A netlink dump request and its answer, message by message (blocking; the kernel answers at once)."""
    with _socket(protocol, rcvbuf) as sock:
        sock.settimeout(10)
        sock.bind((0, 0))
        seq = int(time.monotonic_ns() & 0x7FFF_FFFF)
        header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), mtype, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
        sock.send(header + body)
        while True:
            data = sock.recv(RECV_BYTES)
            for msg in split_messages(data):
                if msg.type == NLMSG_DONE:
                    return
                if msg.type == NLMSG_ERROR:
                    code = netlink_error(msg)
                    raise ConntrackError(f"netlink dump failed: {os.strerror(code)}")
                yield msg


class ConntrackSource:
    """ctnetlink DESTROY events plus periodic dumps, as flow columns for `Gateway.process_flows`."""

    def __init__(self, interface: str, link_header: int | None = None) -> None:
        self.interface = interface
        self.link_header = link_header_bytes(interface) if link_header is None else link_header
        self.table = FlowTable()
        self.stats = self.table.stats
        try:
            self.lan = read_lan(interface)
        except OSError as exc:
            raise ConntrackSetupError(
                f"no interface named {interface} ({exc}): set capture.interface"
            ) from None
        self._lan_read = time.monotonic()
        try:
            events = _socket(NETLINK_NETFILTER, EVENT_RCVBUF)
            events.bind((0, 1 << (NFNLGRP_CONNTRACK_DESTROY - 1)))
        except OSError as exc:
            raise ConntrackSetupError(_explain(exc)) from None
        events.setblocking(False)
        self._events = events
        self._interrupted = False  # the last dump was interrupted by changes: no sweep after it

    def fileno(self) -> int:
        return self._events.fileno()

    def start(self) -> None:
        """The first dump: the counters so far are a baseline, not traffic of this run."""
        for flow in self._dump_flows():
            self.table.baseline(flow)

    def read_events(self, now_ns: int | None = None) -> FlowBatch | None:
        """The flows that ended since the last call (never blocks)."""
        rows = FlowRows(self.link_header)
        self._drain(rows)
        return self._batch(rows, now_ns)

    def dump(self, now_ns: int | None = None, final: bool = False) -> FlowBatch | None:
        """Every live flow's counters since its last reading; ``final``: the gateway is stopping."""
        rows = FlowRows(self.link_header)
        self._refresh_lan(force=True)
        alive: set[FlowKey] = set()
        started = time.perf_counter()
        for flow in self._dump_flows():
            alive.add(flow.key)
            self._add(rows, flow, final)
        self.stats.dumps += 1
        self.stats.dump_entries = len(alive)
        self.stats.dump_ms = int((time.perf_counter() - started) * 1000)
        self._drain(rows)  # flows that ended while the dump was read: before the sweep forgets them
        if not self._interrupted:
            self.table.sweep(alive)
        return self._batch(rows, now_ns)

    def close(self) -> None:
        self._events.close()

    # ---- internals

    def _drain(self, rows: FlowRows) -> None:
        for _ in range(MAX_EVENTS_PER_READ):
            try:
                data = self._events.recv(RECV_BYTES)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # the kernel dropped events: the next dump sweeps
                    self.stats.events_lost += 1
                    continue
                raise ConntrackError(f"reading conntrack events failed: {_explain(exc)}") from None
            for msg in split_messages(data):
                flow = parse_conntrack(msg)
                if flow is not None and flow.destroyed:
                    self.stats.events += 1
                    self._add(rows, flow, final=False)

    def _dump_flows(self) -> Iterator[CtFlow]:
        self._interrupted = False
        body = _NFGENMSG.pack(socket.AF_UNSPEC, 0, 0)
        mtype = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET
        try:
            for msg in _dump(NETLINK_NETFILTER, mtype, body):
                if msg.flags & NLM_F_DUMP_INTR:
                    self._interrupted = True
                flow = parse_conntrack(msg)
                if flow is not None:
                    yield flow
        except OSError as exc:
            raise ConntrackError(f"reading the conntrack table failed: {_explain(exc)}") from None

    def _add(self, rows: FlowRows, flow: CtFlow, final: bool) -> None:
        delta = self.table.update(flow, final)
        if delta is None:
            return
        if self.lan.is_group(flow.orig.dst):  # counted from the capture (`split_untracked`)
            self.stats.group += 1
            return
        orig, reply = flow.orig, flow.reply
        to_orig = (delta.packets_orig, delta.bytes_orig)
        to_reply = (delta.packets_reply, delta.bytes_reply)
        found = False
        if self._is_device(orig.src):
            rows.add(self._device_key(orig.src), orig, to_orig, to_reply)
            found = True
        if reply.src != orig.src and self._is_device(reply.src):
            rows.add(self._device_key(reply.src), reply, to_reply, to_orig)
            found = True
        if found:
            self.stats.rows += 1
        else:
            self.stats.skipped += 1

    def _is_device(self, addr: bytes) -> bool:
        """On the LAN side (the neighbour table is re-read at each dump, and on a MAC miss)."""
        return self.lan.is_device(addr)

    def _device_key(self, addr: bytes) -> tuple[int, int, int]:
        mac = self.lan.macs.get(addr)
        if mac is None and self._refresh_lan():
            mac = self.lan.macs.get(addr)
        if mac is not None:
            return KIND_MAC, 0, mac
        hi, lo = address_key(addr)
        return KIND_IP, hi, lo

    def _refresh_lan(self, force: bool = False) -> bool:
        """Re-read the neighbour table (on a miss, at most once per NEIGHBOUR_RETRY_S)."""
        now = time.monotonic()
        if not force and now - self._lan_read < NEIGHBOUR_RETRY_S:
            return False
        self._lan_read = now
        try:
            fresh = read_lan(self.interface)
        except OSError as exc:
            log.warning("neighbour table not read, the cached one stays: %s", exc)
            return False
        # keep addresses that left the table: their flows may still end after the entry expired
        old = self.lan.macs
        self.lan = fresh
        for addr, mac in old.items():
            if addr not in fresh.macs and len(fresh.macs) < MAX_NEIGHBOURS:
                fresh.macs[addr] = mac
        return True

    @staticmethod
    def _batch(rows: FlowRows, now_ns: int | None) -> FlowBatch | None:
        if not len(rows):
            return None
        ts = time.time_ns() if now_ns is None else now_ns
        return FlowBatch(np.full(len(rows), ts, dtype=np.int64), rows.columns())


def _explain(exc: OSError) -> str:
    if exc.errno in (errno.EPERM, errno.EACCES):
        return (
            "no permission to read connection tracking: Mouchard needs CAP_NET_ADMIN for ctnetlink. Run it "
            "from its systemd unit, as root, or `sudo setcap cap_net_raw,cap_net_admin+eip "
            "$(readlink -f .venv/bin/python)`"
        )
    return f"ctnetlink: {exc.strerror or exc}"


# ---------------------------------------------------------------- packets conntrack does not count

GROUP_BIT = np.uint64(1 << 40)  # I/G bit of a MAC's first octet (as the headers decoder packs MACs)


def untracked(batch: PacketBatch, h: Headers) -> B:
    """Packets no conntrack entry counts, as `UNTRACKED_BPF` selects them (pcap counts these)."""
    group = h.has_mac & ((h.dst_mac & GROUP_BIT) != 0)
    v4 = (h.dst_hi == 0) & ((h.dst_lo >> np.uint64(32)) == 0xFFFF)
    v4_dst = h.dst_lo & np.uint64(0xFFFF_FFFF)
    ip_group = h.is_ip & (
        (v4 & (((v4_dst >> np.uint64(28)) == 0xE) | (v4_dst == 0xFFFF_FFFF)))
        | (~v4 & ((h.dst_hi >> np.uint64(56)) == 0xFF))
    )
    icmp = h.is_ip & ~h.malformed & ~h.later_fragment & ((h.proto == 1) | (h.proto == IPPROTO_ICMPV6))
    icmp &= h.l4 < batch.offset + batch.caplen  # the type byte was captured
    kind = gather_u8(batch.buf, np.where(icmp, h.l4, 0))
    tracked = np.where(h.proto == 1, np.isin(kind, TRACKED_ICMP), np.isin(kind, TRACKED_ICMPV6))
    result: B = group | ip_group | (icmp & ~tracked)
    return result


def select(batch: PacketBatch, mask: B) -> PacketBatch:
    """The packets of ``batch`` under ``mask`` (sharing its buffer)."""
    return PacketBatch(
        buf=batch.buf,
        offset=batch.offset[mask],
        caplen=batch.caplen[mask],
        wirelen=batch.wirelen[mask],
        ts_ns=batch.ts_ns[mask],
        linktype=batch.linktype[mask],
    )


def split_untracked(batch: PacketBatch) -> tuple[PacketBatch | None, PacketBatch | None]:
    """(packets to count as pcap mode does, packets only to name) of a router-mode capture batch."""
    counted = untracked(batch, decode(batch))
    if counted.all():
        return batch, None
    if not counted.any():
        return None, batch
    return select(batch, counted), select(batch, ~counted)


# ---------------------------------------------------------------- naming without counting
