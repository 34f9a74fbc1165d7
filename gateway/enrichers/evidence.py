"""What devices say about themselves on the LAN: mDNS announcements, DHCP requests, their addresses.

Collected passively from the same packet batches as traffic (a capture file or the live interface).
Only the few packets on UDP 5353 (mDNS responses a device sends about itself) and 67/68 (DHCP from
clients) reach a per-packet parser. Everything is bounded: a device announcing thousands of
services or TXT keys cannot grow the tables. Each entry is charged what it costs in memory, to its
device (up to `DEVICE_SHARE`) and to the total of all devices (up to `EVIDENCE_BUDGET`); what would
not fit is refused and counted.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields

import numpy as np
import numpy.typing as npt

from gateway.aggregators.grouping import group_rows
from gateway.aggregators.traffic import KIND_IP, KIND_MAC
from gateway.enrichers.lan import address_text
from gateway.enrichers.packetkeys import DeviceKey, payload, sender
from gateway.parsers.dhcp import parse_dhcp
from gateway.parsers.headers import IPPROTO_UDP, Headers
from gateway.parsers.mdns import MdnsMessage, parse_mdns
from gateway.sources.capfile import PacketBatch

B = npt.NDArray[np.bool_]

MDNS_PORT, DHCP_SERVER, DHCP_CLIENT = 5353, 67, 68
# Per device: a printer announces ~10 services, an Apple TV ~15; 64 leaves room and bounds a flood.
MAX_SERVICES = 64
MAX_TXT_KEYS = 64
# TXT keys are short by convention (RFC 6763 §6.4: nine characters or fewer); profiles match keys
# like "md" or "ty", so longer ones are cut at 64 characters, values at 255 (one DNS string).
MAX_TXT_KEY = 64
MAX_TXT_VALUE = 255
# Names a device asked for that profiles may match ("destinations the device talks to"): the first
# ones are its own cloud. Real devices of the test captures ask for up to 16; `DOMAIN_SHARE` holds
# about 45 names of 20 characters, so 64 only bounds the count (256, as before the budget, would need
# 48 KB of names of 30 characters: more than a device may hold).
MAX_DOMAINS = 64
# Devices with evidence; a spoofed-MAC flood stops here (the traffic of known devices still counts).
MAX_DEVICES = 10_000
# What all devices say about themselves, together, is charged to one total: 64 MiB. A lab has tens or
# hundreds of devices and the largest real one of the test captures is charged 6.7 KB, so only a
# flood reaches it; then further entries are refused and counted. Room for the record of every device
# not seen yet (`BASE_CHARGE`, up to MAX_DEVICES: 21 MiB) is kept aside, so a flood of announcements
# never costs a later device its address, times and DHCP names. Charged as the bytes Python holds:
# each string, plus what it adds to its set or dict (a set's table grows by up to 108 bytes an entry,
# a dict's by 35).
EVIDENCE_BUDGET = 64 * 2**20
# One device may be charged 32 KiB, five times the largest real one (an Apple TV's fifteen services
# and their TXT records, 17 KB, fit whole), so that it cannot take the total: it takes about 1,400
# devices at this cap to spend what the records leave.
DEVICE_SHARE = 32 * 2**10
# Of a device's share, names it asked for may take a quarter: they never crowd out its announcements.
DOMAIN_SHARE = DEVICE_SHARE // 4
SET_ENTRY, DICT_ENTRY = 110, 40
# DHCP host name, vendor class and fingerprint are kept up to 128 characters each (a host name is
# at most 63, a vendor class such as "dhcpcd-9.4.1:Linux-6.1.21:armv7l:BCM2835" about 40).
MAX_DHCP_TEXT = 128


@dataclass(slots=True)
class Evidence:
    """Everything a device said about itself so far; ``version`` grows with each change."""

    services: set[str] = field(default_factory=set)  # "_googlecast._tcp"
    instances: dict[str, str] = field(default_factory=dict)  # instance name -> service type
    properties: dict[str, str] = field(default_factory=dict)  # TXT, first value wins
    mdns_hosts: set[str] = field(default_factory=set)  # "Living-Room.local"
    dhcp_hostname: str | None = None
    dhcp_vendor_class: str | None = None
    dhcp_fingerprint: str | None = None
    ipv4: str | None = None
    domains: set[str] = field(default_factory=set)  # names it asked DNS for
    first_seen: int = 0  # capture time, seconds
    last_seen: int = 0
    version: int = 0
    charged: int = 0  # bytes charged to this device (at most `DEVICE_SHARE`), domains included
    domains_charged: int = 0


def _empty_size() -> int:
    """Bytes an empty record holds, its dicts counted with the table of their first entries."""
    ev = Evidence()
    held = sys.getsizeof(ev) + sum(sys.getsizeof(getattr(ev, f.name)) for f in fields(ev))
    return held + 2 * (sys.getsizeof({"": ""}) - sys.getsizeof({})) + 4 * 8  # ints may grow to 32 bytes


# A device's key (kind, hi, lo) and its slot in the collector's table, which grows by up to 54 bytes
# an entry: 228 bytes.
DEVICE_ENTRY = sys.getsizeof((0, 0, 0)) + 3 * sys.getsizeof(2**64 - 1) + 56
# An empty record, its DHCP strings and address, and its entry: charged when a device's record is
# made (2.2 KB), so what remains for services, TXT and names is what the device's share leaves.
BASE_CHARGE = (
    _empty_size() + 3 * sys.getsizeof("x" * MAX_DHCP_TEXT) + sys.getsizeof("255.255.255.255") + DEVICE_ENTRY
)


@dataclass(slots=True)
class EvidenceStats:
    mdns_messages: int = 0
    mdns_malformed: int = 0
    dhcp_messages: int = 0
    overflow: int = 0  # records refused: MAX_DEVICES reached
    refused: int = 0  # services, TXT keys, names... refused: their device's share or the total was full


def _set_cost(text: str) -> int:
    return sys.getsizeof(text) + SET_ENTRY


def _dict_cost(key: str, value: str) -> int:
    return sys.getsizeof(key) + sys.getsizeof(value) + DICT_ENTRY


class EvidenceCollector:
    def __init__(self) -> None:
        self.devices: dict[DeviceKey, Evidence] = {}
        self.stats = EvidenceStats()
        # Bytes charged to all records (at most `EVIDENCE_BUDGET`). Records are never dropped (the
        # collector lives as long as its Gateway, MAX_DEVICES bounds them), so nothing is released.
        self.charged = 0

    def get(self, key: DeviceKey) -> Evidence | None:
        return self.devices.get(key)

    def _evidence(self, key: DeviceKey) -> Evidence | None:
        found = self.devices.get(key)
        if found is None:
            if len(self.devices) >= MAX_DEVICES:
                self.stats.overflow += 1
                return None
            found = self.devices[key] = Evidence(charged=BASE_CHARGE)
            self.charged += BASE_CHARGE  # kept aside until now: see `charge`
        return found

    def charge(self, ev: Evidence, cost: int) -> bool:
        """Charge ``cost`` bytes to ``ev`` and the total when both have room; False when refused.

        The total keeps room for the record of each device not seen yet, so a record is refused only
        at MAX_DEVICES.
        """
        unseen = (MAX_DEVICES - len(self.devices)) * BASE_CHARGE
        if ev.charged + cost > DEVICE_SHARE or self.charged + unseen + cost > EVIDENCE_BUDGET:
            return False
        ev.charged += cost
        self.charged += cost
        return True

    def add_sighting(
        self,
        addresses: tuple[str, ...],
        service_type: str,
        instance: str,
        host: str,
        properties: dict[str, str],
    ) -> bool:
        """An instance the active mDNS browser resolved; it joins the device that uses its address.

        Returns False when no device is known at those addresses yet (it is seen again later).
        """
        key = next((k for k, ev in self.devices.items() if ev.ipv4 and ev.ipv4 in addresses), None)
        if key is None:
            return False
        ev = self.devices[key]
        stype = service_type.removesuffix(".local.").removesuffix(".")
        merged = _Merge(self, ev)
        merged.service(stype)
        if instance:
            merged.instance(instance, stype)
        for k, v in properties.items():
            merged.property(k, v)
        if host:
            merged.host(host)
        self.stats.refused += merged.refused
        if merged.changed:
            ev.version += 1
        return True

    def add_domain(self, key: DeviceKey, name: str) -> None:
        ev = self._evidence(key)
        # No version bump: names only support a match, so they wait for the next identifying change
        # (re-matching at every new name would cost a profile match per DNS query).
        if ev is None or name in ev.domains or len(ev.domains) >= MAX_DOMAINS:
            return
        cost = _set_cost(name)
        if ev.domains_charged + cost <= DOMAIN_SHARE and self.charge(ev, cost):
            ev.domains_charged += cost
            ev.domains.add(name)
        else:
            self.stats.refused += 1

    def observe(self, batch: PacketBatch, h: Headers, src_lan: B) -> None:
        ok = h.is_ip & ~h.malformed & ~h.later_fragment
        self._seen(batch, h, ok & src_lan)
        udp = ok & (h.proto == IPPROTO_UDP) & (h.payload_len > 0)
        for i in np.flatnonzero(udp & (h.sport == MDNS_PORT)).tolist():
            self._mdns(sender(h, i), payload(batch, h, i))
        for i in np.flatnonzero(udp & (h.sport == DHCP_CLIENT) & (h.dport == DHCP_SERVER)).tolist():
            self._dhcp(h, i, payload(batch, h, i))

    def _seen(self, batch: PacketBatch, h: Headers, lan: B) -> None:
        """First and last time, and IPv4 address, of every LAN sender in the batch (vectorised)."""
        if not lan.any():
            return
        has_mac, src_hi, src_lo = h.has_mac[lan], h.src_hi[lan], h.src_lo[lan]
        kind = np.where(has_mac, KIND_MAC, KIND_IP).astype(np.uint64)
        hi = np.where(has_mac, np.uint64(0), src_hi)
        lo = np.where(has_mac, h.src_mac[lan], src_lo)
        ts = (batch.ts_ns[lan] // 1_000_000_000).astype(np.int64)
        # IPv4 sources other than 0.0.0.0 (a DHCP client before it has an address)
        v4 = (src_hi == 0) & ((src_lo >> np.uint64(32)) == 0xFFFF)
        v4 &= (src_lo & np.uint64(0xFFFF_FFFF)) != 0
        # group numbers follow no order: only `first` (each sender's first packet) and `inverse` count
        first, inverse = group_rows([kind, hi, lo])
        last_ts = np.zeros(len(first), np.int64)
        np.maximum.at(last_ts, inverse, ts)
        # the IPv4 source of the last IPv4 packet of each sender
        v4_idx = np.full(len(first), -1, np.int64)
        positions = np.flatnonzero(v4)
        np.maximum.at(v4_idx, inverse[positions], positions)
        order = np.argsort(first)  # senders in the order they appear: the first are admitted first
        at = first[order]
        keys = zip(kind[at].tolist(), hi[at].tolist(), lo[at].tolist(), strict=True)
        for g, key in zip(order.tolist(), keys, strict=True):
            ev = self._evidence(key)
            if ev is None:
                continue
            if not ev.first_seen:
                ev.first_seen = int(ts[first[g]])
            ev.last_seen = max(ev.last_seen, int(last_ts[g]))
            if v4_idx[g] >= 0:
                ip = address_text(0, int(src_lo[v4_idx[g]]))
                if ip != ev.ipv4:
                    ev.ipv4 = ip
                    ev.version += 1

    def _mdns(self, key: DeviceKey, payload: bytes) -> None:
        msg = parse_mdns(payload)
        self.stats.mdns_messages += 1
        if msg is None or msg.malformed:
            self.stats.mdns_malformed += 1
        if msg is None or not msg.is_response:
            return
        ev = self._evidence(key)
        if ev is None:
            return
        merged = _merge_mdns(self, ev, msg)
        self.stats.refused += merged.refused
        if merged.changed:
            ev.version += 1

    def _dhcp(self, h: Headers, i: int, payload: bytes) -> None:
        msg = parse_dhcp(payload)
        if msg is None:
            return
        self.stats.dhcp_messages += 1
        key = sender(h, i)
        ev = self._evidence(key)
        if ev is None:
            return
        before = (ev.dhcp_hostname, ev.dhcp_vendor_class, ev.dhcp_fingerprint)
        # Their room is in BASE_CHARGE, for strings cut at MAX_DHCP_TEXT.
        ev.dhcp_hostname = _cut(msg.hostname) or ev.dhcp_hostname
        ev.dhcp_vendor_class = _cut(msg.vendor_class) or ev.dhcp_vendor_class
        ev.dhcp_fingerprint = _cut(msg.fingerprint) or ev.dhcp_fingerprint
        if before != (ev.dhcp_hostname, ev.dhcp_vendor_class, ev.dhcp_fingerprint):
            ev.version += 1


def _cut(text: str | None) -> str | None:
    return text[:MAX_DHCP_TEXT] if text else text


class _Merge:
    """Adds announced facts within a record's caps, share and the total; says what changed and was refused."""

    def __init__(self, collector: EvidenceCollector, ev: Evidence) -> None:
        self.collector, self.ev = collector, ev
        self.changed = False
        self.refused = 0

    def _fits(self, cost: int) -> bool:
        if self.collector.charge(self.ev, cost):
            self.changed = True
            return True
        self.refused += 1
        return False

    def service(self, stype: str) -> None:
        services = self.ev.services
        if stype not in services and len(services) < MAX_SERVICES and self._fits(_set_cost(stype)):
            services.add(stype)

    def instance(self, name: str, stype: str) -> None:
        instances = self.ev.instances
        if name not in instances and len(instances) < MAX_SERVICES and self._fits(_dict_cost(name, stype)):
            instances[name] = stype

    def property(self, key: str, value: str) -> None:
        key, value = key[:MAX_TXT_KEY], value[:MAX_TXT_VALUE]
        props = self.ev.properties
        if key not in props and len(props) < MAX_TXT_KEYS and self._fits(_dict_cost(key, value)):
            props[key] = value

    def host(self, host: str) -> None:
        name, hosts = host.removesuffix("."), self.ev.mdns_hosts
        if name not in hosts and len(hosts) < MAX_SERVICES and self._fits(_set_cost(name)):
            hosts.add(name)


def _merge_mdns(collector: EvidenceCollector, ev: Evidence, msg: MdnsMessage) -> _Merge:
    merged = _Merge(collector, ev)
    for stype in msg.service_types:
        short = stype.removesuffix(".local.").removesuffix(".")
        if short != "_services._dns-sd._udp":
            merged.service(short)
    for inst in msg.instances:
        merged.instance(inst.instance, inst.service_type.removesuffix(".local.").removesuffix("."))
    for key, value in msg.properties().items():
        merged.property(key, value)
    for host in msg.addresses:
        merged.host(host)
    return merged
