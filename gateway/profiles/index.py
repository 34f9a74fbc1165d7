"""The compiled profile index: every profile plus lookup tables, as one sorted, stable JSON file.

``mouchard profiles build`` validates ``device_profiles/*.yaml`` and writes
``gateway/data/profile_index.json``; the gateway loads that file once (`ProfileIndex.load`), so the
installed package needs neither the YAML nor its validation. The tables say which profiles a piece
of evidence can point to: service type -> rules, MAC prefix -> profiles, listed destination name ->
profiles, DHCP fingerprint -> profiles, and the pattern lists (host names, DHCP vendor classes, MAC
vendors). A test rebuilds the index from the YAML and fails when the committed file differs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.profiles.model import Kind, Profile, Rules, ServiceRule
from gateway.profiles.schema import compile_pattern

__all__ = [
    "BUILD_COMMAND",
    "DEFAULT_INDEX",
    "DEFAULT_SOURCE",
    "ProfileIndex",
    "ProfileIndexError",
    "index_text",
]

DEFAULT_INDEX = Path(__file__).resolve().parents[1] / "data" / "profile_index.json"
DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / "device_profiles"  # in a checkout
BUILD_COMMAND = "mouchard profiles build"
FORMAT = 1


# -- the JSON document -----------------------------------------------------------------------------


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MdnsRuleDoc(_Doc):
    type: str
    name: str | None = None
    txt: dict[str, str] = Field(default_factory=dict)


class RulesDoc(_Doc):
    mdns: list[MdnsRuleDoc] = Field(default_factory=list)
    hostnames: list[str] = Field(default_factory=list)
    dhcp_vendor_classes: list[str] = Field(default_factory=list)
    dhcp_fingerprints: list[str] = Field(default_factory=list)
    mac_prefixes: list[str] = Field(default_factory=list)
    mac_vendors: list[str] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)


class ProfileDoc(_Doc):
    vendor: str
    maker: str | None
    model_family: str
    kind: Kind
    activation_threshold_bps: int | None
    first_party_domains: list[str]
    notes: str
    source: str
    match: RulesDoc


class ServiceRuleDoc(_Doc):
    profile: str
    name: str | None = None
    txt: dict[str, str] = Field(default_factory=dict)


class PatternDoc(_Doc):
    pattern: str
    profiles: list[str]


class IndexDoc(_Doc):
    format: int
    command: str
    kinds: list[Kind]
    profiles: dict[str, ProfileDoc]
    service_types: dict[str, list[ServiceRuleDoc]]
    mac_prefixes: dict[str, list[str]]
    domains: dict[str, list[str]]
    dhcp_fingerprints: dict[str, list[str]]
    hostnames: list[PatternDoc]
    dhcp_vendor_classes: list[PatternDoc]
    mac_vendors: list[PatternDoc]


class ProfileIndexError(ValueError):
    """The index file is missing, damaged or of another format; rebuilding it is the fix."""


# -- compiling -------------------------------------------------------------------------------------


def compile_document(profiles: Iterable[Profile]) -> IndexDoc:
    ordered = sorted(profiles, key=lambda p: p.id)
    return IndexDoc(
        format=FORMAT,
        command=BUILD_COMMAND,
        kinds=list(Kind),
        profiles={p.id: _profile_doc(p) for p in ordered},
        service_types=_service_table(ordered),
        mac_prefixes=_table((p.id, p.rules.mac_prefixes) for p in ordered),
        domains=_table((p.id, p.rules.domains) for p in ordered),
        dhcp_fingerprints=_table((p.id, p.rules.dhcp_fingerprints) for p in ordered),
        hostnames=_patterns((p.id, p.rules.hostnames) for p in ordered),
        dhcp_vendor_classes=_patterns((p.id, p.rules.vendor_classes) for p in ordered),
        mac_vendors=_patterns((p.id, p.rules.mac_vendors) for p in ordered),
    )


def index_text(profiles: Iterable[Profile]) -> str:
    """The committed file's exact text: sorted keys, one space indent, UTF-8, final newline."""
    data = compile_document(profiles).model_dump(mode="json")
    return json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def _profile_doc(profile: Profile) -> ProfileDoc:
    r = profile.rules
    return ProfileDoc(
        vendor=profile.vendor,
        maker=profile.maker,
        model_family=profile.model_family,
        kind=profile.kind,
        activation_threshold_bps=profile.activation_threshold_bps,
        first_party_domains=list(profile.first_party_domains),
        notes=profile.notes,
        source=profile.source,
        match=RulesDoc(
            mdns=[MdnsRuleDoc(type=m.service_type, name=m.name, txt=dict(m.txt)) for m in r.mdns],
            hostnames=list(r.hostnames),
            dhcp_vendor_classes=list(r.vendor_classes),
            dhcp_fingerprints=list(r.dhcp_fingerprints),
            mac_prefixes=list(r.mac_prefixes),
            mac_vendors=list(r.mac_vendors),
            domains=list(r.domains),
        ),
    )


def _service_table(profiles: Sequence[Profile]) -> dict[str, list[ServiceRuleDoc]]:
    table: dict[str, list[ServiceRuleDoc]] = {}
    for profile in profiles:
        for rule in profile.rules.mdns:
            doc = ServiceRuleDoc(profile=profile.id, name=rule.name, txt=dict(rule.txt))
            table.setdefault(rule.service_type, []).append(doc)
    return table


def _table(entries: Iterable[tuple[str, Sequence[str]]]) -> dict[str, list[str]]:
    table: dict[str, set[str]] = {}
    for profile_id, keys in entries:
        for key in keys:
            table.setdefault(key, set()).add(profile_id)
    return {key: sorted(ids) for key, ids in table.items()}


def _patterns(entries: Iterable[tuple[str, Sequence[str]]]) -> list[PatternDoc]:
    return [PatternDoc(pattern=p, profiles=ids) for p, ids in sorted(_table(entries).items())]


# -- the loaded index ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledPattern:
    text: str
    regex: re.Pattern[str]
    profiles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CompiledServiceRule:
    """An mDNS rule of one profile, its patterns compiled."""

    profile: str
    rule: ServiceRule
    name: re.Pattern[str] | None
    txt: tuple[tuple[str, re.Pattern[str]], ...]

    @classmethod
    def of(cls, profile: str, rule: ServiceRule) -> CompiledServiceRule:
        name = compile_pattern(rule.name) if rule.name else None
        return cls(profile, rule, name, tuple((k, compile_pattern(v)) for k, v in rule.txt))

    @property
    def type_only(self) -> bool:
        return self.name is None and not self.txt

    def matches(self, instance: str, txt: Mapping[str, str]) -> bool:
        if self.name is not None and not self.name.fullmatch(instance):
            return False
        return all(key in txt and pattern.fullmatch(txt[key]) for key, pattern in self.txt)


@dataclass(frozen=True, slots=True, eq=False)
class ProfileIndex:
    """The lookup tables the matcher reads; built once, read-only."""

    profiles: Mapping[str, Profile]
    service_rules: Mapping[str, tuple[CompiledServiceRule, ...]]  # by service type
    mac_prefixes: tuple[
        tuple[int, Mapping[int, tuple[str, ...]]], ...
    ]  # (bits, prefix -> ids), longest first
    domains: Mapping[str, tuple[str, ...]]
    dhcp_fingerprints: Mapping[str, tuple[str, ...]]
    hostnames: tuple[CompiledPattern, ...]
    vendor_classes: tuple[CompiledPattern, ...]
    mac_vendors: tuple[CompiledPattern, ...]

    @classmethod
    def load(cls, path: Path | str | None = None) -> ProfileIndex:
        """Read the committed index (a few ms); `ProfileIndexError` says how to rebuild it."""
        source = DEFAULT_INDEX if path is None else Path(path)
        fix = f"rebuild it with `{BUILD_COMMAND}`"
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProfileIndexError(f"{source}: cannot read the profile index ({exc}) — {fix}") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ProfileIndexError(f"{source}: not a format-{FORMAT} profile index — {fix}")
        try:
            return cls.from_document(IndexDoc.model_validate(data))
        except (ValidationError, re.error) as exc:
            raise ProfileIndexError(f"{source}: damaged profile index ({exc}) — {fix}") from exc

    @classmethod
    def from_profiles(cls, profiles: Iterable[Profile]) -> ProfileIndex:
        """An index of profiles validated in this process (a lab's own folder, tests)."""
        return cls.from_document(compile_document(profiles))

    @classmethod
    def from_document(cls, doc: IndexDoc) -> ProfileIndex:
        return cls(
            profiles={pid: _profile(pid, p) for pid, p in doc.profiles.items()},
            service_rules={t: _service_rules(t, rules) for t, rules in doc.service_types.items()},
            mac_prefixes=_prefix_tables(doc.mac_prefixes),
            domains={name: tuple(ids) for name, ids in doc.domains.items()},
            dhcp_fingerprints={fp: tuple(ids) for fp, ids in doc.dhcp_fingerprints.items()},
            hostnames=_compiled(doc.hostnames),
            vendor_classes=_compiled(doc.dhcp_vendor_classes),
            mac_vendors=_compiled(doc.mac_vendors),
        )

    def __len__(self) -> int:
        return len(self.profiles)

    def get(self, profile_id: str) -> Profile | None:
        return self.profiles.get(profile_id)


def _profile(profile_id: str, doc: ProfileDoc) -> Profile:
    m = doc.match
    rules = Rules(
        mdns=tuple(ServiceRule(r.type, r.name, tuple(sorted(r.txt.items()))) for r in m.mdns),
        hostnames=tuple(m.hostnames),
        vendor_classes=tuple(m.dhcp_vendor_classes),
        dhcp_fingerprints=tuple(m.dhcp_fingerprints),
        mac_prefixes=tuple(m.mac_prefixes),
        mac_vendors=tuple(m.mac_vendors),
        domains=tuple(m.domains),
    )
    return Profile(
        id=profile_id,
        vendor=doc.vendor,
        maker=doc.maker,
        model_family=doc.model_family,
        kind=doc.kind,
        rules=rules,
        first_party_domains=tuple(doc.first_party_domains),
        notes=doc.notes,
        activation_threshold_bps=doc.activation_threshold_bps,
        source=doc.source,
    )


def _service_rules(service_type: str, rules: Sequence[ServiceRuleDoc]) -> tuple[CompiledServiceRule, ...]:
    return tuple(
        CompiledServiceRule.of(r.profile, ServiceRule(service_type, r.name, tuple(sorted(r.txt.items()))))
        for r in rules
    )


def prefix_bits(prefix: str) -> tuple[int, int]:
    """``00:17:88`` -> (24, 0x001788); 7 and 9 hex digits are MA-M (28) and MA-S (36) blocks."""
    digits = prefix.replace(":", "")
    return len(digits) * 4, int(digits, 16)


def _prefix_tables(
    table: Mapping[str, Sequence[str]],
) -> tuple[tuple[int, Mapping[int, tuple[str, ...]]], ...]:
    by_bits: dict[int, dict[int, tuple[str, ...]]] = {}
    for prefix, ids in table.items():
        bits, value = prefix_bits(prefix)
        by_bits.setdefault(bits, {})[value] = tuple(ids)
    return tuple(sorted(by_bits.items(), reverse=True))


def _compiled(patterns: Sequence[PatternDoc]) -> tuple[CompiledPattern, ...]:
    return tuple(CompiledPattern(p.pattern, compile_pattern(p.pattern), tuple(p.profiles)) for p in patterns)
