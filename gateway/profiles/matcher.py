"""Which profile a device's evidence points to, how strongly, and why.

Every kind of evidence is a *category*; a profile scores, in each category, the points of the best
rule that matched there, and its score is the sum over categories. Points follow specificity: a TXT
property names a model, an instance name or a host name names a product, a service type a product
family, a MAC prefix a maker (who may make many things), a destination a cloud (which phones with the
maker's app reach too). So destinations add to a match but never make one on their own.

Matching is dict lookups (service types, MAC prefixes, destination suffixes, fingerprints) and a few
dozen anchored regexes over a handful of host names; the index is loaded once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from gateway.enrichers.macvendor import mac_value
from gateway.profiles.evidence import Evidence, ServiceSighting
from gateway.profiles.index import CompiledPattern, ProfileIndex
from gateway.profiles.model import Profile, ServiceRule

__all__ = ["Match", "Matcher", "Points"]


class Points:
    """Points per rule, by specificity (docs/profiles.md explains the order)."""

    MDNS_TYPE = 40  # a service type is a product family (_sonos._tcp)
    MDNS_NAME = 30  # added when the instance name matches too ("shelly1pm-...")
    MDNS_TXT = 60  # added when TXT properties match: a model (md=Google Home Mini)
    HOSTNAME = 50  # a host name that names a product (HS100(EU), Caitlins-iPhone)
    VENDOR_CLASS = 35  # a DHCP client's identity (android-dhcp-11, MSFT 5.0)
    MAC_PREFIX = 30  # an IEEE assignment listed in the profile
    FINGERPRINT = 25  # a DHCP stack, shared by every device built on it
    MAC_VENDOR = 20  # the registry's vendor name: a maker, not a product
    DOMAIN = 10  # per listed destination reached...
    DOMAIN_CAP = 20  # ...up to this: support only


class Category(StrEnum):
    MDNS = "mdns"
    HOSTNAME = "hostname"
    VENDOR_CLASS = "vendor_class"
    FINGERPRINT = "fingerprint"
    MAC = "mac"
    DOMAINS = "domains"


MAX_SHOWN = 60  # characters of a device's own text quoted in a reason


@dataclass(frozen=True, slots=True)
class Match:
    """The best profile for a device, its score, why (for the workshop UI), and equal runners-up."""

    profile: Profile
    score: int
    reasons: tuple[str, ...]
    alternatives: tuple[str, ...] = ()  # ids of other profiles with the same score


@dataclass(slots=True)
class _Tally:
    best: dict[Category, tuple[int, str]] = field(default_factory=dict)
    domains: set[str] = field(default_factory=set)

    def add(self, category: Category, points: int, reason: str) -> None:
        if points > self.best.get(category, (0, ""))[0]:
            self.best[category] = (points, reason)

    @property
    def identified(self) -> bool:
        return bool(self.best)

    def score(self) -> int:
        return sum(points for points, _ in self.best.values()) + self._domain_points()

    def reasons(self) -> tuple[str, ...]:
        ranked = sorted(self.best.values(), key=lambda pr: -pr[0])
        found = [f"{reason} (+{points})" for points, reason in ranked]
        if self.domains:
            shown = ", ".join(sorted(self.domains)[:3])
            found.append(f"talks to {shown} (+{self._domain_points()})")
        return tuple(found)

    def _domain_points(self) -> int:
        return min(Points.DOMAIN_CAP, Points.DOMAIN * len(self.domains))


class Matcher:
    """Matches `Evidence` against a `ProfileIndex` (the committed one by default)."""

    __slots__ = ("index",)

    def __init__(self, index: ProfileIndex | None = None) -> None:
        self.index = ProfileIndex.load() if index is None else index

    def activation_threshold(self, profile_id: str) -> int | None:
        """The upload rate (bytes/s) above which a second is an activation's, for a profile's devices."""
        found = self.index.get(profile_id)
        return found.activation_threshold_bps if found is not None else None

    def match(self, evidence: Evidence) -> Match | None:
        """The best match, or None when no rule but destinations (or nothing) matched."""
        ranked = self.rank(evidence, limit=1)
        return ranked[0] if ranked else None

    def rank(self, evidence: Evidence, limit: int = 5) -> tuple[Match, ...]:
        """Up to ``limit`` matches, best first; ties broken by breadth of evidence, then id."""
        tallies = self._tallies(evidence)
        scored = sorted(
            ((t.score(), len(t.best), pid) for pid, t in tallies.items() if t.identified),
            key=lambda s: (-s[0], -s[1], s[2]),
        )
        matches = []
        for score, _, pid in scored[:limit]:
            tied = tuple(other for s, _, other in scored if s == score and other != pid)
            matches.append(Match(self.index.profiles[pid], score, tallies[pid].reasons(), tied))
        return tuple(matches)

    def _tallies(self, evidence: Evidence) -> dict[str, _Tally]:
        tallies: dict[str, _Tally] = {}

        def tally(profile_id: str) -> _Tally:
            return tallies.setdefault(profile_id, _Tally())

        for pid, category, points, reason in self._hits(evidence):
            tally(pid).add(category, points, reason)
        for pid, name in self._domain_hits(evidence):
            tally(pid).domains.add(name)
        return tallies

    def _hits(self, e: Evidence) -> Iterator[tuple[str, Category, int, str]]:
        yield from self._service_hits(e)
        yield from self._type_hits(e)
        for host in sorted(e.hostnames):
            for pid in _matching(self.index.hostnames, host):
                yield pid, Category.HOSTNAME, Points.HOSTNAME, f"host name {_quote(host)}"
        if e.vendor_class:
            for pid in _matching(self.index.vendor_classes, e.vendor_class):
                yield (
                    pid,
                    Category.VENDOR_CLASS,
                    Points.VENDOR_CLASS,
                    f"DHCP vendor class {_quote(e.vendor_class)}",
                )
        if e.dhcp_fingerprint:
            for pid in self.index.dhcp_fingerprints.get(e.dhcp_fingerprint, ()):
                yield pid, Category.FINGERPRINT, Points.FINGERPRINT, f"DHCP fingerprint {e.dhcp_fingerprint}"
        yield from self._mac_hits(e)

    def _service_hits(self, e: Evidence) -> Iterator[tuple[str, Category, int, str]]:
        """Rules with an instance-name or TXT pattern, against each announced instance."""
        for sighting in e.services:
            rules = self.index.service_rules.get(sighting.service_type, ())
            txt = sighting.txt() if rules else {}
            for compiled in rules:
                if not compiled.type_only and compiled.matches(sighting.instance, txt):
                    rule = compiled.rule
                    yield (
                        compiled.profile,
                        Category.MDNS,
                        _service_points(rule),
                        _service_reason(rule, sighting, txt),
                    )

    def _type_hits(self, e: Evidence) -> Iterator[tuple[str, Category, int, str]]:
        for service_type in sorted(e.service_types):
            for compiled in self.index.service_rules.get(service_type, ()):
                if compiled.type_only:
                    yield compiled.profile, Category.MDNS, Points.MDNS_TYPE, f"mDNS service {service_type}"

    def _mac_hits(self, e: Evidence) -> Iterator[tuple[str, Category, int, str]]:
        value = mac_value(e.mac) if e.mac else None
        if value is not None:
            for bits, table in self.index.mac_prefixes:
                ids = table.get(value >> (48 - bits), ())
                for pid in ids:
                    yield pid, Category.MAC, Points.MAC_PREFIX, f"MAC prefix {_prefix_text(value, bits)}"
        if e.mac_vendor:
            for pid in _matching(self.index.mac_vendors, e.mac_vendor):
                yield pid, Category.MAC, Points.MAC_VENDOR, f"MAC vendor {_quote(e.mac_vendor)}"

    def _domain_hits(self, e: Evidence) -> Iterator[tuple[str, str]]:
        """(profile, listed name) for each destination; a destination counts once per profile."""
        for name in e.domains:
            credited: set[str] = set()
            for suffix in _suffixes(name):
                for pid in self.index.domains.get(suffix, ()):
                    if pid not in credited:
                        credited.add(pid)
                        yield pid, suffix


def _service_points(rule: ServiceRule) -> int:
    return Points.MDNS_TYPE + (Points.MDNS_NAME if rule.name else 0) + (Points.MDNS_TXT if rule.txt else 0)


def _service_reason(rule: ServiceRule, sighting: ServiceSighting, txt: dict[str, str]) -> str:
    parts = [f"mDNS {sighting.service_type}"]
    if rule.name:
        parts.append(f"instance {_quote(sighting.instance)}")
    parts += [f"{key}={_quote(txt[key])}" for key, _ in rule.txt]
    return " ".join(parts)


def _matching(patterns: tuple[CompiledPattern, ...], text: str) -> Iterator[str]:
    for pattern in patterns:
        if pattern.regex.fullmatch(text):
            yield from pattern.profiles


def _suffixes(name: str) -> Iterator[str]:
    """``a.b.c`` -> ``a.b.c``, ``b.c``, ``c``."""
    start = 0
    while True:
        yield name[start:]
        dot = name.find(".", start)
        if dot < 0:
            return
        start = dot + 1


def _prefix_text(value: int, bits: int) -> str:
    digits = f"{value >> (48 - bits):0{bits // 4}x}"
    return ":".join(digits[i : i + 2] for i in range(0, len(digits), 2)).upper()


def _quote(text: str) -> str:
    return repr(text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…")
