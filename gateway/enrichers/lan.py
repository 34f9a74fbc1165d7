"""Which addresses belong to the lab's own network, vectorised over 128-bit (hi, lo) addresses."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
B = npt.NDArray[np.bool_]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Sources that are always the LAN, whatever the configuration: unspecified (DHCP discover, DAD)
# and link-local addresses never come from beyond the router.
ALWAYS_LAN = ("0.0.0.0/32", "::/128", "169.254.0.0/16", "fe80::/10")
# Destinations that never leave the link: multicast and the limited broadcast.
LINK_SCOPE = ("224.0.0.0/4", "255.255.255.255/32", "ff00::/8")
# Router advertisements may announce prefixes; a hostile RA flood must not grow this list forever.
MAX_DYNAMIC_PREFIXES = 64
_ALL = (1 << 64) - 1


def to_int128(net: Network) -> tuple[int, int]:
    """Network address and mask as 128-bit integers (IPv4 as IPv4-mapped IPv6)."""
    if isinstance(net, ipaddress.IPv4Network):
        addr = 0xFFFF_0000_0000 | int(net.network_address)
        bits = 96 + net.prefixlen
    else:
        addr, bits = int(net.network_address), net.prefixlen
    mask = ((1 << 128) - 1) ^ ((1 << (128 - bits)) - 1)
    return addr & mask, mask


def address_text(hi: int, lo: int) -> str:
    """The usual text form of a (hi, lo) address; IPv4-mapped values print as IPv4."""
    if hi == 0 and (lo >> 32) == 0xFFFF:
        return str(ipaddress.IPv4Address(lo & 0xFFFF_FFFF))
    return str(ipaddress.IPv6Address((hi << 64) | lo))


class NetworkSet:
    """A small set of prefixes tested against whole arrays of addresses."""

    def __init__(self, networks: Iterable[Network | str]) -> None:
        self._nets: list[tuple[np.uint64, np.uint64, np.uint64, np.uint64]] = []
        self._seen: set[tuple[int, int]] = set()
        for net in networks:
            self.add(ipaddress.ip_network(net, strict=False) if isinstance(net, str) else net)

    def __len__(self) -> int:
        return len(self._nets)

    def add(self, net: Network) -> bool:
        addr, mask = to_int128(net)
        if (addr, mask) in self._seen:
            return False
        self._seen.add((addr, mask))
        self._nets.append(
            (np.uint64(addr >> 64), np.uint64(addr & _ALL), np.uint64(mask >> 64), np.uint64(mask & _ALL))
        )
        return True

    def contains(self, hi: U64, lo: U64) -> B:
        out = np.zeros(hi.shape, np.bool_)
        for n_hi, n_lo, m_hi, m_lo in self._nets:
            out |= ((hi & m_hi) == n_hi) & ((lo & m_lo) == n_lo)
        return out


class Lan:
    """The lab's networks from the configuration, plus prefixes its routers announce."""

    def __init__(self, networks: Iterable[Network | str]) -> None:
        self.configured = NetworkSet(networks)
        self.always = NetworkSet(ALWAYS_LAN)
        self.link_scope = NetworkSet(LINK_SCOPE)
        self.announced = NetworkSet(())

    def add_announced(self, net: Network) -> None:
        if len(self.announced) < MAX_DYNAMIC_PREFIXES:
            self.announced.add(net)

    def is_lan(self, hi: U64, lo: U64) -> B:
        out = self.configured.contains(hi, lo) | self.always.contains(hi, lo)
        if len(self.announced):
            out |= self.announced.contains(hi, lo)
        return out

    def is_local(self, hi: U64, lo: U64) -> B:
        """LAN addresses and link-scope destinations (multicast, broadcast): traffic that stays home."""
        return self.is_lan(hi, lo) | self.link_scope.contains(hi, lo)
