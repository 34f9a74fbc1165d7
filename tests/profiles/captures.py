"""Evidence per device from real captures, read with the project's own reader and parsers."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from gateway.enrichers.macvendor import MacVendorDB
from gateway.parsers.dhcp import parse_dhcp
from gateway.parsers.dns import parse_dns_query
from gateway.parsers.headers import Headers, decode
from gateway.parsers.mdns import parse_mdns
from gateway.profiles.evidence import Evidence
from gateway.sources.capfile import open_capture

MDNS_PORT = 5353
DNS_PORT = 53
DHCP_PORTS = frozenset({67, 68})
UDP = 17


@dataclass(frozen=True)
class Sighting:
    device: str  # "aa:bb:cc:dd:ee:ff", or the source address where the capture has no link layer
    evidence: Evidence
    malformed: bool


def mac_text(value: int) -> str:
    return ":".join(f"{(value >> shift) & 0xFF:02x}" for shift in range(40, -8, -8))


def address_text(hi: int, lo: int) -> str:
    address = ipaddress.IPv6Address(hi << 64 | lo)
    return str(address.ipv4_mapped or address)


def sightings(path: Path) -> Iterator[Sighting]:
    """One `Sighting` per mDNS, DHCP or DNS-query packet, keyed like the gateway keys devices."""
    for batch in open_capture(path):
        h = decode(batch)
        for i in range(len(batch)):
            if int(h.proto[i]) != UDP:
                continue
            start = int(h.payload[i]) - int(batch.offset[i])
            payload = batch.payload(i, start, start + int(h.payload_len[i]))
            found = _parse(payload, int(h.sport[i]), int(h.dport[i]))
            if found is not None:
                evidence, malformed = found
                yield Sighting(evidence.mac or _source(h, i), evidence, malformed)


def _source(h: Headers, i: int) -> str:
    if h.has_mac[i]:
        return mac_text(int(h.src_mac[i]))
    return address_text(int(h.src_hi[i]), int(h.src_lo[i]))


def _parse(payload: bytes, sport: int, dport: int) -> tuple[Evidence, bool] | None:
    if MDNS_PORT in (sport, dport):
        message = parse_mdns(payload)
        return None if message is None else (Evidence.from_mdns(message), message.malformed)
    if {sport, dport} & DHCP_PORTS:
        dhcp = parse_dhcp(payload)
        return None if dhcp is None else (Evidence.from_dhcp(dhcp), dhcp.malformed)
    if dport == DNS_PORT:
        name = parse_dns_query(payload)
        return None if name is None else (Evidence().with_domains([name]), False)
    return None


def source_macs(path: Path) -> set[str]:
    """Every source MAC of the capture (for captures whose devices show no mDNS or DHCP)."""
    found: set[str] = set()
    for batch in open_capture(path):
        h = decode(batch)
        found.update(mac_text(int(v)) for v in h.src_mac[h.has_mac])
    return found


@cache
def vendors() -> MacVendorDB:
    return MacVendorDB.load()


@cache
def devices(path: Path) -> dict[str, Evidence]:
    """Evidence merged per device over the whole capture, with the MAC and its vendor."""
    merged: dict[str, Evidence] = {}
    for sighting in sightings(path):
        merged[sighting.device] = merged.get(sighting.device, Evidence()).merge(sighting.evidence)
    return {device: _with_mac(device, evidence) for device, evidence in merged.items()}


def _with_mac(device: str, evidence: Evidence) -> Evidence:
    if ":" not in device or "." in device or len(device) != 17:
        return evidence
    return evidence.merge(Evidence(mac=device, mac_vendor=vendors().lookup(device)))
