"""The records of a device profile, as the matcher uses them (compiled, validated, immutable).

A profile says what a family of devices is (vendor, maker, model family, kind), how to recognise it
(rules) and what a workshop should know about it (notes, first-party domains, and for voice
assistants the upload rate above which a burst counts as an activation). The YAML files in
``device_profiles/`` are the source; `gateway.profiles.loader` validates them into these records and
`gateway.profiles.index` compiles them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """The fixed vocabulary of device kinds (the ``kind`` tag of the ``traffic`` measurement)."""

    VOICE_ASSISTANT = "voice_assistant"
    SPEAKER = "speaker"
    TV = "tv"
    STREAMING_PLAYER = "streaming_player"
    CAMERA = "camera"
    DOORBELL = "doorbell"
    PLUG = "plug"
    LIGHT = "light"
    HUB = "hub"
    SENSOR = "sensor"
    THERMOSTAT = "thermostat"
    APPLIANCE = "appliance"
    PRINTER = "printer"
    PHONE = "phone"
    COMPUTER = "computer"
    NETWORK = "network"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ServiceRule:
    """An mDNS/DNS-SD rule: a service type, and optionally instance-name and TXT patterns.

    ``service_type`` is normalised (``_googlecast._tcp``, lowercase, no ``.local.``). ``name`` and
    the values of ``txt`` are regular expressions matched against the whole text, ignoring case;
    TXT keys are lowercase (RFC 6763 section 6.4: keys are case-insensitive).
    """

    service_type: str
    name: str | None = None
    txt: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Rules:
    """Every way a profile can be recognised; a profile has at least one non-domain rule."""

    mdns: tuple[ServiceRule, ...] = ()
    hostnames: tuple[str, ...] = ()  # regexes on DHCP host names and mDNS host names
    vendor_classes: tuple[str, ...] = ()  # regexes on DHCP option 60
    dhcp_fingerprints: tuple[str, ...] = ()  # exact DHCP option 55 lists, "1,3,6,15"
    mac_prefixes: tuple[str, ...] = ()  # "00:17:88" (24 bits), "70:b3:d5:2a:0" (28/36 bits)
    mac_vendors: tuple[str, ...] = ()  # regexes on the IEEE registry's (shortened) vendor name
    domains: tuple[str, ...] = ()  # destination names; a listed name covers its subdomains


@dataclass(frozen=True, slots=True)
class Profile:
    id: str
    vendor: str  # as people say it: "Amazon", "Google Nest", "Philips Hue"
    maker: str | None  # organisation key of gateway/data/organisations.yaml, for first-party attribution
    model_family: str
    kind: Kind
    rules: Rules
    first_party_domains: tuple[str, ...]
    notes: str
    activation_threshold_bps: int | None = None  # voice assistants: upload rate of an activation
    source: str = ""  # "amazon.yaml:12", where the profile is written
