"""The shape of a profile file (``device_profiles/*.yaml``), as pydantic models with helpful errors.

Every check that one profile can make on its own lives here, and every message says what to write
instead. The checks across profiles and files (duplicate ids, makers, first-party domains against
``organisations.yaml``) are the loader's (`gateway.profiles.loader`). See docs/profiles.md.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from gateway.enrichers.orgs import normalise_host, registrable_domain
from gateway.profiles.model import Kind

DOCS = "docs/profiles.md"
# Service types that many makers' devices announce: a rule on one of them must also give an
# instance-name or TXT pattern, or every AirPlay receiver, printer or HomeKit accessory would match.
SHARED_SERVICE_TYPES = frozenset(
    {
        "_airplay._tcp", "_raop._tcp", "_hap._tcp", "_hap._udp", "_http._tcp", "_https._tcp",
        "_spotify-connect._tcp", "_device-info._tcp", "_ipp._tcp", "_ipps._tcp", "_printer._tcp",
        "_pdl-datastream._tcp", "_uscan._tcp", "_scanner._tcp", "_ssh._tcp", "_sftp-ssh._tcp",
        "_smb._tcp", "_afpovertcp._tcp", "_rfb._tcp", "_googlecast._tcp", "_amzn-alexa._tcp",
    }
)  # fmt: skip
PROFILE_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")
_SERVICE_TYPE = re.compile(r"_[a-z0-9][a-z0-9-]{0,62}\._(?:tcp|udp)")
_MAC_PREFIX = re.compile(r"[0-9a-f]{6}(?:[0-9a-f]|[0-9a-f]{3})?")
_FINGERPRINT = re.compile(r"\d{1,3}(?:,\d{1,3}){0,254}")
# A TXT key: printable ASCII but "=", not starting with a space (RFC 6763 section 6.4).
_TXT_KEY = re.compile(r"[\x21-\x3c\x3e-\x7e][\x20-\x3c\x3e-\x7e]{0,63}")
MAX_THRESHOLD_BPS = 1_000_000_000  # 1 Gbit/s: far above any upload burst a speaker makes


def fail(kind: str, message: str) -> PydanticCustomError:
    """A pydantic error whose text is exactly ``message`` (braces in user input stay literal)."""
    return PydanticCustomError(kind, "{message}", {"message": message})


# -- value checks ----------------------------------------------------------------------------------


def _non_empty(value: str) -> str:
    text = " ".join(value.split())
    if not text:
        raise fail("empty", "is empty — write a value, or remove the key if it is optional")
    return text


def _profile_id(value: str) -> str:
    if not PROFILE_ID.fullmatch(value):
        raise fail(
            "profile_id",
            f"id '{value}' is not a profile id — use lowercase letters, digits and _, starting "
            "with a letter (at most 64), e.g. amazon_echo",
        )
    return value


def normalise_service_type(text: str) -> str:
    """``_GoogleCast._tcp.local.`` -> ``_googlecast._tcp``."""
    return text.strip().lower().removesuffix(".").removesuffix(".local")


def _service_type(value: str) -> str:
    service_type = normalise_service_type(value)
    if not _SERVICE_TYPE.fullmatch(service_type):
        raise fail(
            "service_type",
            f"'{value}' is not a DNS-SD service type — write it as _name._tcp or _name._udp, "
            "e.g. _googlecast._tcp (no subtype, .local. may be left out)",
        )
    return service_type


def compile_pattern(value: str) -> re.Pattern[str]:
    """Patterns are Python regular expressions matched against the whole text, ignoring case."""
    return re.compile(value, re.IGNORECASE)


def _pattern(value: str) -> str:
    try:
        compile_pattern(value)
    except re.error as exc:
        raise fail(
            "pattern",
            f"'{value}' is not a valid regular expression ({exc}) — fix it; patterns are Python "
            r"regular expressions matched against the whole text (escape . ( ) [ ] with \)",
        ) from None
    return value


def _specific_pattern(value: str) -> str:
    if compile_pattern(_pattern(value)).fullmatch(""):
        raise fail(
            "pattern_too_wide",
            f"pattern '{value}' matches an empty text, so it matches anything — make it name "
            "something, e.g. 'Google Home.*' rather than '.*'",
        )
    return value


def _txt_key(value: str) -> str:
    if not _TXT_KEY.fullmatch(value):
        raise fail(
            "txt_key", f"TXT key '{value}' is not a TXT key — write 1-64 printable ASCII characters, no '='"
        )
    return value.lower()


def normalise_mac_prefix(value: str) -> str | None:
    """``00-17-88`` or ``001788`` -> ``00:17:88``; 7 and 9 hex digits for MA-M/MA-S; else None."""
    digits = re.sub(r"[:.\-]", "", value.strip().lower())
    if not _MAC_PREFIX.fullmatch(digits):
        return None
    return ":".join(digits[i : i + 2] for i in range(0, len(digits), 2))


def _mac_prefix(value: str) -> str:
    prefix = normalise_mac_prefix(value)
    if prefix is None:
        raise fail(
            "mac_prefix",
            f"'{value}' is not a MAC prefix — write the IEEE assignment in hex: 00:17:88 (MA-L, "
            "24 bits), or 70:B3:D5:2A:0 / 70:B3:D5:2A:0F:1 for MA-M and MA-S blocks; quote it",
        )
    first = int(prefix[:2], 16)
    if first & 0x03:
        which = "multicast" if first & 0x01 else "locally administered (random)"
        raise fail(
            "mac_prefix",
            f"'{value}' is a {which} prefix, which no vendor owns — use a prefix from the IEEE registry",
        )
    return prefix


def _fingerprint(value: str) -> str:
    text = value.replace(" ", "")
    if not _FINGERPRINT.fullmatch(text) or any(int(option) > 255 for option in text.split(",")):
        raise fail(
            "fingerprint",
            f"'{value}' is not a DHCP parameter request list — write option numbers (0-255) in "
            "the client's order, separated by commas, e.g. '1,3,6,15'; quote it",
        )
    return text


def _host_name(value: str) -> str:
    name = normalise_host(value)
    if name != value:
        fix = f"write it '{name}'" if name else "write a host name such as example.com"
        raise fail("host_name", f"'{value}' is not a host name as profiles list them — {fix}")
    if registrable_domain(name) is None:
        raise fail(
            "host_name",
            f"'{value}' is a public suffix or has an unknown top-level domain — list a registrable "
            "domain (example.com) or a name under one (api.example.com)",
        )
    return name


NonEmpty = Annotated[str, AfterValidator(_non_empty)]
ProfileId = Annotated[str, AfterValidator(_profile_id)]
ServiceType = Annotated[str, AfterValidator(_service_type)]
Pattern = Annotated[str, AfterValidator(_pattern)]
SpecificPattern = Annotated[str, AfterValidator(_specific_pattern)]
TxtKey = Annotated[str, AfterValidator(_txt_key)]
MacPrefix = Annotated[str, AfterValidator(_mac_prefix)]
Fingerprint = Annotated[str, AfterValidator(_fingerprint)]
HostName = Annotated[str, AfterValidator(_host_name)]


# -- models ----------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MdnsRuleSpec(_Strict):
    """One mDNS rule: the service type, and optionally instance-name and TXT-property patterns."""

    type: ServiceType = Field(description="DNS-SD service type, e.g. _googlecast._tcp")
    name: SpecificPattern | None = Field(default=None, description="pattern on the instance name")
    txt: dict[TxtKey, Pattern] = Field(default_factory=dict, description="TXT key -> value pattern")

    @model_validator(mode="after")
    def _shared_needs_pattern(self) -> MdnsRuleSpec:
        if self.type in SHARED_SERVICE_TYPES and self.name is None and not self.txt:
            raise fail(
                "shared_type",
                f"{self.type} is announced by many makers' devices — add `name:` (instance-name "
                "pattern) or `txt:` (e.g. txt: {md: 'Google Home Mini'}) so the rule names this device",
            )
        return self


class MatchSpec(_Strict):
    """How to recognise the device. Destination domains support a match but never make one."""

    mdns: list[MdnsRuleSpec] = Field(default_factory=list)
    hostnames: list[SpecificPattern] = Field(default_factory=list)
    dhcp_vendor_classes: list[SpecificPattern] = Field(default_factory=list)
    dhcp_fingerprints: list[Fingerprint] = Field(default_factory=list)
    mac_prefixes: list[MacPrefix] = Field(default_factory=list)
    mac_vendors: list[SpecificPattern] = Field(default_factory=list)
    domains: list[HostName] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something_to_match(self) -> MatchSpec:
        identifying = (
            self.mdns,
            self.hostnames,
            self.dhcp_vendor_classes,
            self.dhcp_fingerprints,
            self.mac_prefixes,
            self.mac_vendors,
        )
        if not any(identifying):
            raise fail(
                "no_rule",
                "no rule can recognise this device (domains only support a match) — add mdns, "
                "hostnames, dhcp_vendor_classes, dhcp_fingerprints, mac_prefixes or mac_vendors",
            )
        return self


class ProfileSpec(_Strict):
    id: ProfileId = Field(description="unique, lowercase: amazon_echo")
    vendor: NonEmpty = Field(description="as people say it: Amazon")
    maker: str | None = Field(default=None, description="organisation key of organisations.yaml")
    model_family: NonEmpty = Field(description="Echo, Echo Dot, Echo Studio")
    kind: Kind
    activation_threshold_bps: int | None = Field(default=None, gt=0, le=MAX_THRESHOLD_BPS)
    match: MatchSpec
    first_party_domains: list[HostName] = Field(default_factory=list)
    notes: NonEmpty = Field(description="what the device is known to send, for the workshop")

    @model_validator(mode="after")
    def _assistant_threshold(self) -> ProfileSpec:
        if self.kind is Kind.VOICE_ASSISTANT and self.activation_threshold_bps is None:
            raise fail(
                "threshold",
                "a voice_assistant needs an activation threshold — add activation_threshold_bps, the "
                "upload bits/s of an activation (Dubois et al., PETS 2020: Echo 12172, Google Home "
                "46086, HomePod 76366, Invoke 13568)",
            )
        return self


class ProfileFileSpec(_Strict):
    profiles: list[ProfileSpec] = Field(min_length=1)


# What a user may write at each level, for "did you mean" hints; keyed by the parent key.
KEYS_UNDER: dict[str, tuple[str, ...]] = {
    "": tuple(ProfileFileSpec.model_fields),
    "profiles": tuple(ProfileSpec.model_fields),
    "match": tuple(MatchSpec.model_fields),
    "mdns": tuple(MdnsRuleSpec.model_fields),
}
