"""Which MACs (or, without a link layer, which LAN addresses) are the lab's devices, and which are routers.

A device is a unicast MAC that sends frames with a LAN source address. A router forwards for the
outside world: it sends IPv4 frames with public source addresses, IPv6 frames from several outside
prefixes, or router advertisements, or the configuration names it. Routers are never devices.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from gateway.aggregators.grouping import unique_pairs
from gateway.enrichers.lan import Lan, address_text
from gateway.parsers.headers import Headers

B = npt.NDArray[np.bool_]
U64 = npt.NDArray[np.uint64]

# A host with IPv6 uses one or two global prefixes of its own; a router forwards from the whole
# internet. Three distinct outside /64 source prefixes from one MAC mark it as a router.
ROUTER_V6_PREFIXES = 3
# Spoofed-MAC floods must not grow the tables without end: beyond this many devices, new ones are
# counted as overflow (their traffic is still counted under the devices already known).
MAX_DEVICES = 10_000
# DHCP servers announce one or two routers; hostile DHCP traffic must not grow the set.
MAX_ROUTER_IPS = 16
MULTICAST_BIT = np.uint64(1 << 40)  # I/G bit of the first octet of a 48-bit MAC


def mac_text(mac: int) -> str:
    return ":".join(f"{(mac >> s) & 0xFF:02x}" for s in range(40, -8, -8))


def mac_int(text: str) -> int:
    return int(text.replace(":", "").replace("-", ""), 16)


def is_unicast_mac(mac: U64) -> B:
    unicast: B = (mac & MULTICAST_BIT) == 0
    return unicast


class DeviceTracker:
    """Learns devices and routers from batches of decoded headers."""

    def __init__(self, lan: Lan, router_macs: Iterable[str] = ()) -> None:
        self.lan = lan
        self.configured_routers = {mac_int(m) for m in router_macs}
        self.routers: set[int] = set(self.configured_routers)
        self.lan_senders: set[int] = set()
        self.ip_senders: set[tuple[int, int]] = set()
        self._v6_prefixes: dict[int, set[int]] = {}
        self.router_ips: set[int] = set()  # IPv4-mapped low halves of DHCP-announced routers
        self.router_addrs: set[tuple[int, int]] = set()  # routers' own addresses (DHCP option 3, RA source)
        self.overflow = 0

    def observe(self, h: Headers, src_lan: B) -> None:
        """Update devices and routers from one batch; ``src_lan`` says which sources are LAN."""
        ok = h.is_ip & ~h.malformed
        with_mac = ok & h.has_mac & is_unicast_mac(h.src_mac)
        self._add_macs(self.lan_senders, np.unique(h.src_mac[with_mac & src_lan]))
        outside = with_mac & ~src_lan
        self.routers.update(int(m) for m in np.unique(h.src_mac[outside & (h.ipver == 4)]))
        if self.router_ips:
            known = np.fromiter(self.router_ips, dtype=np.uint64)
            from_router = with_mac & (h.src_hi == 0) & np.isin(h.src_lo, known)
            self.routers.update(int(m) for m in np.unique(h.src_mac[from_router]))
        v6 = outside & (h.ipver == 6)
        if v6.any():
            self._observe_v6(h.src_mac[v6], h.src_hi[v6])
        no_mac = ok & ~h.has_mac & src_lan & ((h.src_hi != 0) | ((h.src_lo & np.uint64(0xFFFF_FFFF)) != 0))
        if no_mac.any():
            for hi, lo in unique_pairs(h.src_hi[no_mac], h.src_lo[no_mac]):
                if len(self.ip_senders) >= MAX_DEVICES:
                    self.overflow += 1
                    break
                self.ip_senders.add((hi, lo))

    def add_lan_senders(self, macs: U64) -> None:
        """MACs known to send from the LAN by other means (the LAN side of conntrack flows)."""
        self._add_macs(self.lan_senders, macs)

    def _add_macs(self, table: set[int], macs: U64) -> None:
        for m in macs:
            if len(table) >= MAX_DEVICES and int(m) not in table:
                self.overflow += 1
                continue
            table.add(int(m))

    def _observe_v6(self, macs: U64, prefixes: U64) -> None:
        for mac, prefix in unique_pairs(macs, prefixes):
            seen = self._v6_prefixes.setdefault(mac, set())
            if len(seen) < ROUTER_V6_PREFIXES:
                seen.add(prefix)
            if len(seen) >= ROUTER_V6_PREFIXES:
                self.routers.add(mac)
            if len(self._v6_prefixes) > MAX_DEVICES:
                self._v6_prefixes.clear()  # bounded: forget, at worst a router is learned later

    def add_router_ip(self, address: str) -> None:
        """An IPv4 address that DHCP names as the router; the MAC sending from it is a router."""
        if len(self.router_ips) < MAX_ROUTER_IPS:
            lo = 0xFFFF_0000_0000 | int(ipaddress.IPv4Address(address))
            self.router_ips.add(lo)
            self.router_addrs.add((0, lo))

    def add_router_addr(self, hi: int, lo: int) -> None:
        """Without a link layer, a router is known by its address (e.g. the source of an RA)."""
        if len(self.router_addrs) < MAX_ROUTER_IPS:
            self.router_addrs.add((hi, lo))

    def add_router(self, mac: int) -> None:
        self.routers.add(mac)

    def is_device_mac(self, mac: int) -> bool:
        return mac in self.lan_senders and mac not in self.routers

    def is_device_ip(self, hi: int, lo: int, sent: bool) -> bool:
        """A LAN address that sends, and is no router's.

        ``sent``: the address sent something in the rows being flushed. It counts when the address is
        LAN *now* — an IPv6 address in a prefix that a router advertisement announced after the
        address's first packets is a device from its first packet on.
        """
        key = (hi, lo)
        if key in self.router_addrs:
            return False
        if key in self.ip_senders:
            return True
        if not sent or (hi == 0 and lo in (0, 0xFFFF_0000_0000)):
            return False
        one_hi, one_lo = np.array([hi], np.uint64), np.array([lo], np.uint64)
        if not bool(self.lan.is_lan(one_hi, one_lo)[0]) or len(self.ip_senders) >= MAX_DEVICES:
            return False
        self.ip_senders.add(key)
        return True

    @staticmethod
    def key_text(kind: int, hi: int, lo: int) -> str:
        """The ``device`` tag: a lowercase MAC, or ``ip:<address>`` without a link layer."""
        return mac_text(lo) if kind == 1 else "ip:" + address_text(hi, lo)
