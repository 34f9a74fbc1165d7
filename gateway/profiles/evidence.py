"""What a device has shown about itself, as the matcher reads it: one small frozen record per device.

`Evidence` gathers mDNS services (type, instance name, TXT properties), the service types a device
announces, its host names (DHCP option 12 and 81, mDNS host names), its DHCP vendor class and
parameter-request-list fingerprint, its MAC and the vendor the IEEE registry gives for it, and the
destination names it talks to. Build it from parsed records (`Evidence.from_mdns`,
`Evidence.from_dhcp`, `ServiceSighting.of` for python-zeroconf's ``ServiceInfo``) and combine
sightings over time with `Evidence.merge`. Everything comes from untrusted traffic, so every
collection is bounded and every text is cut.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.parsers.dhcp import DhcpMessage, DhcpMessageType
from gateway.parsers.mdns import MdnsMessage, clean
from gateway.profiles.schema import normalise_service_type

# Distinct service instances kept per device. A busy Apple TV announces about a dozen; the cap only
# stops a hostile device from growing its record. Later instances beyond it are ignored.
MAX_SERVICES = 64
MAX_SERVICE_TYPES = 64  # same reasoning: real devices announce a few to a dozen types
# Host names kept per device: one DHCP name, an mDNS name or two, renamed after conflicts (-2, -3).
MAX_HOSTNAMES = 16
# Destination names kept for matching. A device names a few hundred destinations in a day; profiles
# only use them to support a match, so a device that resolves random names loses nothing useful.
MAX_DOMAINS = 1024
MAX_TEXT = 255  # a DNS label or a TXT string is at most 255 bytes; longer text is cut
MAX_TXT_KEYS = 64  # as gateway.parsers.mdns keeps per TXT record
QTYPE_ANY = 255  # an mDNS probe (RFC 6762 section 8.1) asks ANY for the name it wants to claim
CLIENT_MESSAGES = frozenset({DhcpMessageType.DISCOVER, DhcpMessageType.REQUEST, DhcpMessageType.INFORM})


def _cut(text: str) -> str:
    return clean(text[:MAX_TEXT])


def host_label(name: str) -> str:
    """``Caitlins-iPhone.local.`` -> ``Caitlins-iPhone``: no final dot, no ``.local`` domain."""
    text = name.strip().removesuffix(".")
    return text[: -len(".local")] if text.lower().endswith(".local") else text


@dataclass(frozen=True, slots=True)
class ServiceSighting:
    """One announced service instance: ``("_googlecast._tcp", "Kitchen", (("md", "Google Home Mini"),))``."""

    service_type: str  # normalised: "_googlecast._tcp"
    instance: str = ""  # "Kitchen speaker", DNS-SD escapes decoded
    properties: tuple[tuple[str, str], ...] = ()  # TXT, keys lowercase, sorted

    @classmethod
    def of(
        cls,
        service_type: str,
        instance: str = "",
        properties: Mapping[str, str | None] | Mapping[bytes, bytes | None] | None = None,
    ) -> ServiceSighting:
        """From any source: text or bytes properties (python-zeroconf's ``ServiceInfo.properties``)."""
        pairs: dict[str, str] = {}
        for key, value in (properties or {}).items():
            name = _cut(_text(key)).lower()
            if name and len(pairs) < MAX_TXT_KEYS:
                pairs.setdefault(name, _cut(_text(value)))
        return cls(normalise_service_type(service_type), _cut(instance), tuple(sorted(pairs.items())))

    def txt(self) -> dict[str, str]:
        return dict(self.properties)


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class Evidence:
    services: tuple[ServiceSighting, ...] = ()
    service_types: frozenset[str] = frozenset()  # every announced type, instances' included
    hostnames: frozenset[str] = frozenset()
    vendor_class: str | None = None  # DHCP option 60
    dhcp_fingerprint: str | None = None  # DHCP option 55, "1,3,6,15"
    mac: str | None = None  # "aa:bb:cc:dd:ee:ff"
    mac_vendor: str | None = None  # from gateway.enrichers.macvendor
    domains: frozenset[str] = frozenset()  # destination host names

    @classmethod
    def from_mdns(cls, message: MdnsMessage) -> Evidence:
        """The services, types and host names one mDNS message says its sender has."""
        texts = {text.name: text.properties for text in message.texts}
        services = tuple(
            ServiceSighting.of(i.service_type, i.instance, texts.get(i.name)) for i in message.instances
        )
        types = {normalise_service_type(t) for t in message.service_types}
        types.update(s.service_type for s in services)
        names = [*message.addresses, *(s.target for s in message.services)]
        names += [q.name for q in message.questions if _is_probe_of_host(q.name, q.qtype)]
        return cls(services=services[:MAX_SERVICES]).merge(
            cls(service_types=_bounded(types, MAX_SERVICE_TYPES), hostnames=_hostnames(names))
        )

    @classmethod
    def from_dhcp(cls, message: DhcpMessage) -> Evidence:
        """What a client's DHCP request says; a server's messages (offer, ack) say nothing of it."""
        if message.message_type not in CLIENT_MESSAGES:
            return cls()
        names = [n for n in (message.hostname, (message.client_fqdn or "").partition(".")[0]) if n]
        return cls(
            hostnames=_hostnames(names),
            vendor_class=_cut(message.vendor_class) if message.vendor_class else None,
            dhcp_fingerprint=message.fingerprint or None,
            mac=message.client_mac,
        )

    def merge(self, newer: Evidence) -> Evidence:
        """Both together; ``newer``'s single values win, and a re-announced service replaces the old."""
        services = {(s.service_type, s.instance): s for s in self.services}
        for sighting in newer.services:
            key = (sighting.service_type, sighting.instance)
            if key in services or len(services) < MAX_SERVICES:
                services[key] = sighting
        return Evidence(
            services=tuple(services.values()),
            service_types=_union(self.service_types, newer.service_types, MAX_SERVICE_TYPES),
            hostnames=_union(self.hostnames, newer.hostnames, MAX_HOSTNAMES),
            vendor_class=newer.vendor_class or self.vendor_class,
            dhcp_fingerprint=newer.dhcp_fingerprint or self.dhcp_fingerprint,
            mac=newer.mac or self.mac,
            mac_vendor=newer.mac_vendor or self.mac_vendor,
            domains=_union(self.domains, newer.domains, MAX_DOMAINS),
        )

    def with_domains(self, names: Iterable[str]) -> Evidence:
        """Add destination names (from the naming stage), lowercase, without a final dot."""
        fresh = {name.strip().lower().removesuffix(".")[:MAX_TEXT] for name in names}
        return self.merge(Evidence(domains=_bounded(fresh, MAX_DOMAINS)))


def _is_probe_of_host(name: str, qtype: int) -> bool:
    """A probe for a host name (not a service instance, not a reverse-address name)."""
    return qtype == QTYPE_ANY and "._" not in name and name.lower().endswith(".local.")


def _hostnames(names: Iterable[str]) -> frozenset[str]:
    return _bounded((_cut(host_label(n)) for n in names if host_label(n)), MAX_HOSTNAMES)


def _bounded(values: Iterable[str], limit: int) -> frozenset[str]:
    kept: set[str] = set()
    for value in values:
        if len(kept) >= limit:
            break
        kept.add(value)
    return frozenset(kept)


def _union(old: frozenset[str], new: frozenset[str], limit: int) -> frozenset[str]:
    if len(old) >= limit or not new - old:
        return old
    return old | _bounded(sorted(new - old), limit - len(old))
