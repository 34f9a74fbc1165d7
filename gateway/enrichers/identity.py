"""Who a device is: its name, kind, vendor and model, from the strongest evidence available.

Name: the lab's own label, then the mDNS friendly name (TXT ``fn``, then the instance name), then the
DHCP host name, then the mDNS host name. Kind, vendor and model: the label, then a device profile
match, then the MAC's registered vendor. The maker (an organisation key) decides first-party traffic.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from gateway import profiles
from gateway.config import DeviceLabel
from gateway.enrichers.evidence import Evidence

UNKNOWN_KIND = "unknown"
# Instance names that are serial numbers or hashes (amzn.dmgr:9F2C6E2A8B7D4E1F, a UUID) name nothing a
# person would recognise: a DHCP host name is better then.
_LOOKS_LIKE_ID = re.compile(r"[0-9A-Fa-f]{12,}|[0-9a-f]{8}-[0-9a-f]{4}-")


@dataclass(frozen=True, slots=True)
class ProfileGuess:
    """What a device profile says (see gateway/profiles)."""

    profile: str
    kind: str
    vendor: str
    model: str
    maker: str | None


@dataclass(frozen=True, slots=True)
class Identity:
    name: str
    kind: str
    vendor: str
    model: str
    profile: str
    maker: str | None
    services: tuple[str, ...]
    ip: str


ProfileMatcher = Callable[[str, Evidence | None, str | None], ProfileGuess | None]


def identify(
    device: str,
    label: DeviceLabel | None,
    evidence: Evidence | None,
    mac_vendor: str | None,
    profiles: ProfileMatcher | None,
    maker_of: Callable[[str | None], str | None],
) -> Identity:
    guess = profiles(device, evidence, mac_vendor) if profiles is not None else None
    props = evidence.properties if evidence else {}
    vendor = _first(label.vendor if label else None, guess.vendor if guess else None, mac_vendor)
    model = _first(
        label.model if label else None, props.get("md"), props.get("model"), guess.model if guess else None
    )
    return Identity(
        name=_first(label.name if label else None, *_names(evidence)),
        kind=_first(label.kind if label else None, guess.kind if guess else None) or UNKNOWN_KIND,
        vendor=vendor,
        model=model,
        profile=guess.profile if guess else "",
        maker=maker_of(vendor) or (guess.maker if guess else None),
        services=tuple(sorted(evidence.services)) if evidence else (),
        ip=(evidence.ipv4 or "") if evidence else "",
    )


def _names(ev: Evidence | None) -> tuple[str | None, ...]:
    if ev is None:
        return ()
    instance = next((i for i in ev.instances if not _LOOKS_LIKE_ID.search(i)), None)
    host = next(iter(sorted(ev.mdns_hosts)), None)
    return ev.properties.get("fn"), instance, ev.dhcp_hostname, host.removesuffix(".local") if host else None


def _first(*values: str | None) -> str:
    return next((v.strip() for v in values if v and v.strip()), "")


def profile_matcher(matcher: profiles.Matcher) -> ProfileMatcher:
    """The declarative device profiles (gateway/profiles) as the identity stage's matcher."""

    def match(device: str, ev: Evidence | None, mac_vendor: str | None) -> ProfileGuess | None:
        found = matcher.match(profile_evidence(device, ev, mac_vendor))
        if found is None:
            return None
        p = found.profile
        return ProfileGuess(p.id, str(p.kind), p.vendor, p.model_family, p.maker)

    return match


def profile_evidence(device: str, ev: Evidence | None, mac_vendor: str | None) -> profiles.Evidence:
    """What the passive collector gathered, in the profiles' terms (TXT merged across instances)."""
    mac = None if device.startswith("ip:") else device
    if ev is None:
        return profiles.Evidence(mac=mac, mac_vendor=mac_vendor)
    props = ev.properties
    sightings = [profiles.ServiceSighting.of(stype, name, props) for name, stype in ev.instances.items()]
    sightings += [
        profiles.ServiceSighting.of(stype, "", props) for stype in ev.services - set(ev.instances.values())
    ]
    hosts = [h.removesuffix(".local") for h in ev.mdns_hosts]
    if ev.dhcp_hostname:
        hosts.append(ev.dhcp_hostname)
    return profiles.Evidence(
        services=tuple(sightings),
        service_types=frozenset(ev.services),
        hostnames=frozenset(h.lower() for h in hosts),
        vendor_class=ev.dhcp_vendor_class,
        dhcp_fingerprint=ev.dhcp_fingerprint,
        mac=mac,
        mac_vendor=mac_vendor,
        domains=frozenset(ev.domains),
    )
