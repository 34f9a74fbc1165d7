"""What devices say about themselves on the LAN: mDNS announcements, DHCP requests, their addresses.

Collected passively from the same packet batches as traffic (a capture file or the live interface).
Only the few packets on UDP 5353 (mDNS responses a device sends about itself) and 67/68 (DHCP from
clients) reach a per-packet parser. Everything is bounded: a device announcing thousands of
services or TXT keys cannot grow the tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

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
MAX_TXT_VALUE = 255
# Names a device asked for that profiles may match ("destinations the device talks to").
MAX_DOMAINS = 256
# Devices with evidence; a spoofed-MAC flood stops here (the traffic of known devices still counts).
MAX_DEVICES = 10_000


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


@dataclass(slots=True)
class EvidenceStats:
    mdns_messages: int = 0
    mdns_malformed: int = 0
    dhcp_messages: int = 0
    overflow: int = 0


class EvidenceCollector:
    def __init__(self) -> None:
        self.devices: dict[DeviceKey, Evidence] = {}
        self.stats = EvidenceStats()

    def get(self, key: DeviceKey) -> Evidence | None:
        return self.devices.get(key)

    def _evidence(self, key: DeviceKey) -> Evidence | None:
        found = self.devices.get(key)
        if found is None:
            if len(self.devices) >= MAX_DEVICES:
                self.stats.overflow += 1
                return None
            found = self.devices[key] = Evidence()
        return found

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
        before = (len(ev.services), len(ev.instances), len(ev.properties), len(ev.mdns_hosts))
        if len(ev.services) < MAX_SERVICES:
            ev.services.add(stype)
        if instance and len(ev.instances) < MAX_SERVICES:
            ev.instances.setdefault(instance, stype)
        for k, v in properties.items():
            if len(ev.properties) < MAX_TXT_KEYS:
                ev.properties.setdefault(k, v[:MAX_TXT_VALUE])
        if host and len(ev.mdns_hosts) < MAX_SERVICES:
            ev.mdns_hosts.add(host.removesuffix("."))
        if before != (len(ev.services), len(ev.instances), len(ev.properties), len(ev.mdns_hosts)):
            ev.version += 1
        return True

    def add_domain(self, key: DeviceKey, name: str) -> None:
        ev = self._evidence(key)
        # No version bump: names only support a match, so they wait for the next identifying change
        # (re-matching at every new name would cost a profile match per DNS query).
        if ev is not None and len(ev.domains) < MAX_DOMAINS:
            ev.domains.add(name)

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
        kind = np.where(h.has_mac, KIND_MAC, KIND_IP)[lan]
        hi = np.where(h.has_mac, 0, h.src_hi)[lan]
        lo = np.where(h.has_mac, h.src_mac, h.src_lo)[lan]
        ts = (batch.ts_ns[lan] // 1_000_000_000).astype(np.int64)
        # IPv4 sources other than 0.0.0.0 (a DHCP client before it has an address)
        v4 = (h.src_hi[lan] == 0) & ((h.src_lo[lan] >> np.uint64(32)) == 0xFFFF)
        v4 &= (h.src_lo[lan] & np.uint64(0xFFFF_FFFF)) != 0
        keys = np.stack([kind.astype(np.uint64), hi, lo], axis=1)
        uniq, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        last_ts = np.zeros(len(uniq), np.int64)
        np.maximum.at(last_ts, inverse, ts)
        # the IPv4 source of the last IPv4 packet of each sender
        v4_idx = np.full(len(uniq), -1, np.int64)
        positions = np.flatnonzero(v4)
        v4_idx[inverse[positions]] = positions
        src_lo = h.src_lo[lan]
        for g, (k, a, b) in enumerate(uniq.tolist()):
            ev = self._evidence((int(k), int(a), int(b)))
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
        if ev is not None and _merge_mdns(ev, msg):
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
        ev.dhcp_hostname = msg.hostname or ev.dhcp_hostname
        ev.dhcp_vendor_class = msg.vendor_class or ev.dhcp_vendor_class
        ev.dhcp_fingerprint = msg.fingerprint or ev.dhcp_fingerprint
        if before != (ev.dhcp_hostname, ev.dhcp_vendor_class, ev.dhcp_fingerprint):
            ev.version += 1


def _merge_mdns(ev: Evidence, msg: MdnsMessage) -> bool:
    changed = False
    for stype in msg.service_types:
        short = stype.removesuffix(".local.").removesuffix(".")
        if short not in ev.services and len(ev.services) < MAX_SERVICES and short != "_services._dns-sd._udp":
            ev.services.add(short)
            changed = True
    for inst in msg.instances:
        if inst.instance not in ev.instances and len(ev.instances) < MAX_SERVICES:
            ev.instances[inst.instance] = inst.service_type.removesuffix(".local.").removesuffix(".")
            changed = True
    for key, value in msg.properties().items():
        if key not in ev.properties and len(ev.properties) < MAX_TXT_KEYS:
            ev.properties[key] = value[:MAX_TXT_VALUE]
            changed = True
    for host in msg.addresses:
        name = host.removesuffix(".")
        if name not in ev.mdns_hosts and len(ev.mdns_hosts) < MAX_SERVICES:
            ev.mdns_hosts.add(name)
            changed = True
    return changed
