"""ICMPv6 router advertisements: the prefixes a router announces for the LAN."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

ICMPV6_ROUTER_ADVERTISEMENT = 134
OPT_PREFIX_INFORMATION = 3
# An RA fits in one packet; more options than this means a hostile packet, not a router.
MAX_OPTIONS = 32


@dataclass(frozen=True, slots=True)
class RouterAdvert:
    prefixes: tuple[ipaddress.IPv6Network, ...]


def parse_router_advertisement(icmp: bytes) -> RouterAdvert | None:
    """Parse an ICMPv6 message (from its type byte); None unless it is a router advertisement."""
    if len(icmp) < 16 or icmp[0] != ICMPV6_ROUTER_ADVERTISEMENT:
        return None
    prefixes: list[ipaddress.IPv6Network] = []
    pos = 16
    for _ in range(MAX_OPTIONS):
        if pos + 8 > len(icmp):
            break
        opt_type, opt_len = icmp[pos], icmp[pos + 1] * 8
        if opt_len == 0 or pos + opt_len > len(icmp):
            break
        if opt_type == OPT_PREFIX_INFORMATION and opt_len == 32:
            plen = icmp[pos + 2]
            if plen <= 128:
                raw = int.from_bytes(icmp[pos + 16 : pos + 32], "big")
                net = ipaddress.IPv6Network((raw, plen), strict=False)
                if not net.is_link_local:
                    prefixes.append(net)
        pos += opt_len
    return RouterAdvert(prefixes=tuple(prefixes))
