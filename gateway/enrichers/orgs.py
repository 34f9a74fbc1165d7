"""Who is behind a destination: registrable domain, organisation, its country, the party, the server country.

``registrable_domain`` cuts a host name to the domain a company registers (Public Suffix List, offline).
`OrgDB` reads ``gateway/data/organisations.yaml`` and attributes a host name to an organisation, the
most specific listed name winning (``time.google.com`` before ``google.com``). `OrgDB.attribute`
then says which *party* the destination is for a device of a given maker:

- ``first``: the maker itself, or a company with the same owner (Amazon's AWS for an Echo, Google
  for a Nest thermostat);
- ``support``: a cloud, CDN, DNS, certificate or time service working for the maker (the
  organisation's category is ``infrastructure``, ``cdn`` or ``ntp``, or the name is one of its
  ``infrastructure_domains``, such as amazonaws.com or googleusercontent.com);
- ``third``: anyone else, and every destination the data does not know, whether the maker is known
  or not: a name nobody could attribute may be a tracker, so the cautious answer for privacy is
  ``third``;
- ``local``: the lab's own network, which the caller decides from the address; never returned here.

``server_country`` gives the country in which a Regional Internet Registry registered the server's
address block (not a geolocation), through iptocc's offline tables.
See docs/attribution.md.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache, lru_cache
from pathlib import Path

import iptocc
import yaml
from publicsuffixlist import PublicSuffixList

from gateway.enrichers.macvendor import friendly_vendor

__all__ = [
    "DEFAULT_PATH",
    "Attribution",
    "Category",
    "Org",
    "OrgDB",
    "OrgDataError",
    "Party",
    "normalise_host",
    "party",
    "registrable_domain",
    "server_country",
    "vendor_words",
]

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "data" / "organisations.yaml"
# Distinct host names (and addresses) whose answers are remembered. A lab of a few dozen devices
# names a few thousand destinations a day (the Mon(IoT)r lab: 4,200 over its whole study), so 65,536
# keeps them all; a device that resolves random names (a scanner, DNS tunnelling) only evicts the
# oldest. An entry is a name of at most 253 characters and a shared answer: under 40 MB per cache
# at the very worst, a few MB in practice.
CACHE_SIZE = 65_536
# Vendor strings come from the lab's own devices, a few hundred at most.
VENDOR_CACHE_SIZE = 1_024
MAX_NAME = 253  # RFC 1035: a longer name is not a host name
# A host label as seen in traffic: letters, digits, hyphens, and underscores (_tcp, SRV names).
_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
# Top-level domains that are in the Public Suffix List yet never name a company's server:
# .arpa holds reverse-DNS (PTR) names and home.arpa (RFC 8375) is a home network.
SPECIAL_USE_TLDS = frozenset({"arpa"})
_KEY = re.compile(r"[a-z0-9_]+")
_COUNTRY = re.compile(r"[A-Z]{2}")
# Codes people write that ISO 3166 does not have, with the one they mean.
_NOT_ISO = {"UK": "GB", "EU": "the member state of the company's seat"}


class Party(StrEnum):
    FIRST = "first"
    SUPPORT = "support"
    THIRD = "third"
    LOCAL = "local"


class Category(StrEnum):
    PLATFORM = "platform"
    INFRASTRUCTURE = "infrastructure"
    CDN = "cdn"
    NTP = "ntp"
    ADVERTISING = "advertising"
    ANALYTICS = "analytics"
    TRACKING = "tracking"
    OTHER = "other"


SUPPORT_CATEGORIES = frozenset({Category.INFRASTRUCTURE, Category.CDN, Category.NTP})
_FIELDS = ("name", "country", "category", "parent", "aliases", "domains", "infrastructure_domains", "note")


@dataclass(frozen=True, slots=True)
class Org:
    """An organisation as a destination matched it.

    ``infrastructure`` is true where the matched name is one at which the organisation works for
    others (all its names for an infrastructure/cdn/ntp organisation). ``owner`` is the key at the
    top of the ``parent`` chain: the organisation's own key when nobody owns it.
    """

    key: str
    name: str
    country: str
    category: Category
    infrastructure: bool
    owner: str


@dataclass(frozen=True, slots=True)
class Attribution:
    """The tags of a destination: ``domain``, ``org``, ``org_country``, ``party`` (None: unknown)."""

    domain: str | None
    org: str | None
    org_key: str | None
    org_country: str | None
    party: Party


@dataclass(frozen=True, slots=True)
class Problem:
    line: int | None
    text: str


class OrgDataError(ValueError):
    """The organisations file is unusable; one line per problem: ``file:line: what to fix``."""

    def __init__(self, path: Path | str, problems: Sequence[Problem]) -> None:
        self.path = str(path)
        self.problems = tuple(problems)
        super().__init__("\n".join(_where(self.path, p.line) + p.text for p in self.problems))


def _where(path: str, line: int | None) -> str:
    return f"{path}: " if line is None else f"{path}:{line}: "


# ------------------------------------------------------------------------------------------------
# Host names and addresses
# ------------------------------------------------------------------------------------------------


def normalise_host(host: str) -> str | None:
    """A host name as the data lists it (lowercase ASCII, IDN as punycode, no final dot), or None.

    None for what is not a host name: an IP literal, an empty or over-long name, a label that is
    empty, longer than 63 characters or holds other characters than letters, digits, ``-`` and ``_``.
    Unicode names go through Python's IDNA 2003 codec (``münchen.de`` -> ``xn--mnchen-3ya.de``).
    """
    name = host.strip().lower().removesuffix(".")
    if not name or len(name) > MAX_NAME or _is_ip_literal(name):
        return None
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if not all(_LABEL.fullmatch(label) for label in name.split(".")):
        return None
    return name


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]").partition("%")[0])
    except ValueError:
        return False
    return True


@cache
def _psl() -> PublicSuffixList:
    """The list shipped inside the publicsuffixlist package (no download), parsed once (~0.1 s).

    ICANN section only: the private section makes every customer of a cloud its own registrable
    domain (``foo.s3.amazonaws.com``, ``ec2-1-2-3-4.compute-1.amazonaws.com``), which would attribute
    to nobody and give a tag value per server. With ICANN suffixes those are ``amazonaws.com``,
    Amazon's. Unknown top-level domains (``.local``, ``.lan``, ``.internal``, a truncated ``.c``) are
    not suffixes: names under them have no registrable domain.
    """
    return PublicSuffixList(only_icann=True, accept_unknown=False)


@lru_cache(maxsize=CACHE_SIZE)
def registrable_domain(host: str) -> str | None:
    """``foo.s3.amazonaws.com`` -> ``amazonaws.com``; None for IPs, single labels, LAN and PTR names."""
    name = normalise_host(host)
    if name is None or name.rpartition(".")[2] in SPECIAL_USE_TLDS:
        return None
    return _psl().privatesuffix(name)


@lru_cache(maxsize=CACHE_SIZE)
def server_country(ip: str) -> str | None:
    """The RIR registration country (ISO 3166 alpha-2) of a public address; None if not public."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not address.is_global:
        return None  # private, shared (CGN), loopback, link-local, multicast, reserved
    return iptocc.country_code(str(address))


# ------------------------------------------------------------------------------------------------
# Attribution
# ------------------------------------------------------------------------------------------------


def party(org: Org | None, maker: Org | None) -> Party:
    """First if both belong to the same owner, support for infrastructure, third otherwise."""
    if org is None:
        return Party.THIRD
    if maker is not None and org.owner == maker.owner:
        return Party.FIRST
    return Party.SUPPORT if org.infrastructure else Party.THIRD


def vendor_words(vendor: str) -> tuple[str, ...]:
    """``"TP-LINK TECHNOLOGIES CO.,LTD."`` -> ``("tp", "link")``: no legal form, case or punctuation."""
    return tuple(re.findall(r"[a-z0-9]+", friendly_vendor(vendor).lower()))


class OrgDB:
    """Host names and vendor names to organisations; answers are cached (`CACHE_SIZE`)."""

    __slots__ = ("_aliases", "_by_key", "_by_name", "_cached_attribute", "_cached_lookup", "_cached_maker")

    def __init__(
        self, by_name: Mapping[str, Org], by_key: Mapping[str, Org], aliases: Mapping[str, str]
    ) -> None:
        self._by_name = dict(by_name)  # listed name -> organisation (with its infrastructure flag)
        self._by_key = dict(by_key)  # key -> organisation (infrastructure flag of its category)
        self._aliases = dict(aliases)  # joined vendor words -> key
        self._cached_lookup = lru_cache(maxsize=CACHE_SIZE)(self._lookup)
        self._cached_maker = lru_cache(maxsize=VENDOR_CACHE_SIZE)(self._maker_key)
        self._cached_attribute = lru_cache(maxsize=CACHE_SIZE)(self._attribute)

    @classmethod
    def load(cls, path: Path | str | None = None) -> OrgDB:
        """Read and check the organisations file; every problem is reported at once (`OrgDataError`)."""
        source = DEFAULT_PATH if path is None else Path(path)
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, UnicodeError) as exc:
            raise OrgDataError(source, [Problem(None, f"cannot read the file ({exc})")]) from exc
        return cls(*_Reader(source).read(text))

    def __len__(self) -> int:
        return len(self._by_key)

    @property
    def organisations(self) -> tuple[Org, ...]:
        return tuple(self._by_key.values())

    @property
    def names(self) -> Mapping[str, Org]:
        """Every listed name and the organisation it attributes to (a copy)."""
        return dict(self._by_name)

    def organisation(self, key: str) -> Org | None:
        return self._by_key.get(key)

    def lookup(self, host: str) -> Org | None:
        """The organisation of the most specific listed name that ends ``host``, if any."""
        return self._cached_lookup(host)

    def maker_key(self, vendor: str | None) -> str | None:
        """The organisation key of a vendor as devices report it (``"Sonos, Inc."`` -> ``sonos``).

        The whole name is tried first, then without its last words, so ``"Xiaomi Communications"``
        finds ``xiaomi``. A chip or module maker (Espressif, Murata) is no organisation: None.
        """
        return self._cached_maker(vendor) if vendor else None

    def attribute(self, host: str, maker: str | None = None) -> Attribution:
        """Domain, organisation and party of ``host`` for a device of ``maker`` (a key or a vendor name)."""
        return self._cached_attribute(host, maker)

    def _lookup(self, host: str) -> Org | None:
        name = normalise_host(host)
        if name is None:
            return None
        for suffix in _suffixes(name):
            org = self._by_name.get(suffix)
            if org is not None:
                return org
        return None

    def _maker_key(self, vendor: str) -> str | None:
        words = vendor_words(vendor)
        for end in range(len(words), 0, -1):
            key = self._aliases.get("".join(words[:end]))
            if key is not None:
                return key
        return None

    def _attribute(self, host: str, maker: str | None) -> Attribution:
        org = self.lookup(host)
        maker_key = self.maker_key(maker)
        maker_org = None if maker_key is None else self._by_key[maker_key]
        return Attribution(
            domain=registrable_domain(host),
            org=None if org is None else org.name,
            org_key=None if org is None else org.key,
            org_country=None if org is None else org.country,
            party=party(org, maker_org),
        )


def _suffixes(name: str) -> Iterator[str]:
    """``a.b.c`` -> ``a.b.c``, ``b.c``, ``c``: the most specific first."""
    start = 0
    while True:
        yield name[start:]
        dot = name.find(".", start)
        if dot < 0:
            return
        start = dot + 1


# ------------------------------------------------------------------------------------------------
# Reading and checking the file
# ------------------------------------------------------------------------------------------------

# libyaml's composer when PyYAML was built with it (about ten times faster), with line numbers too.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(slots=True)
class _Spec:
    """One organisation as written, before the checks across organisations."""

    key: str
    line: int
    name: str = ""
    country: str = ""
    category: Category = Category.OTHER
    parent: tuple[str, int] | None = None
    aliases: list[tuple[str, int]] = field(default_factory=list)
    domains: list[tuple[str, int]] = field(default_factory=list)
    infrastructure_domains: list[tuple[str, int]] = field(default_factory=list)


class _Reader:
    """Walks the YAML node tree (so every value keeps its line) and collects problems."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def read(self, text: str) -> tuple[dict[str, Org], dict[str, Org], dict[str, str]]:
        specs = self._specs(text)
        by_key = self._organisations(specs)
        by_name = self._names(specs, by_key)
        aliases = self._aliases(specs)
        if self.problems:
            raise OrgDataError(self.path, self.problems)
        return by_name, by_key, aliases

    def problem(self, node: yaml.Node | int | None, text: str) -> None:
        line = node.start_mark.line + 1 if isinstance(node, yaml.Node) else node
        self.problems.append(Problem(line, text))

    # -- structure ---------------------------------------------------------------------------------

    def _specs(self, text: str) -> list[_Spec]:
        try:
            root = yaml.compose(text, Loader=_YAML_LOADER)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            self.problem(None if mark is None else mark.line + 1, f"not valid YAML ({exc}); fix the syntax")
            return []
        table = _mapping_value(root, "organisations")
        if table is None:
            self.problem(root, "the file must hold one mapping, `organisations:`, with one entry per company")
            return []
        specs: dict[str, _Spec] = {}
        for key_node, value in table.value:
            spec = self._spec(key_node, value, specs)
            if spec is not None:
                specs[spec.key] = spec
        return list(specs.values())

    def _spec(self, key_node: yaml.Node, value: yaml.Node, seen: Mapping[str, _Spec]) -> _Spec | None:
        key = str(key_node.value)
        if not isinstance(key_node, yaml.ScalarNode) or not _KEY.fullmatch(key):
            self.problem(key_node, f"organisation key {key!r}: use lowercase letters, digits and _ only")
            return None
        if key in seen:
            first = seen[key].line
            self.problem(
                key_node, f"organisation {key!r} is defined twice (first at line {first}); merge them"
            )
            return None
        if not isinstance(value, yaml.MappingNode):
            self.problem(value, f"organisation {key!r}: expected a mapping of {', '.join(_FIELDS)}")
            return None
        spec = _Spec(key, key_node.start_mark.line + 1)
        self._fields(spec, value)
        return spec

    def _fields(self, spec: _Spec, node: yaml.MappingNode) -> None:
        given: dict[str, yaml.Node] = {}
        for key_node, value in node.value:
            name = str(key_node.value)
            if name in _FIELDS:
                given[name] = value
            else:
                self.problem(key_node, f"{spec.key}: unknown field {name!r}; {_suggest(name, _FIELDS)}")
        spec.name = self._text(given.get("name"), spec, "name", "the company's usual name, e.g. Amazon")
        spec.country = self._country(given.get("country"), spec)
        spec.category = self._category(given.get("category"), spec)
        parent = given.get("parent")
        spec.parent = None if parent is None else (str(parent.value), parent.start_mark.line + 1)
        spec.aliases = self._list(given.get("aliases"), spec, "aliases")
        known = len(self.problems)
        spec.domains = self._list(given.get("domains"), spec, "domains")
        infrastructure = given.get("infrastructure_domains")
        spec.infrastructure_domains = self._list(infrastructure, spec, "infrastructure_domains")
        if not spec.domains and not spec.infrastructure_domains and len(self.problems) == known:
            self.problem(spec.line, f"{spec.key}: list its names under domains (or infrastructure_domains)")

    # -- fields ------------------------------------------------------------------------------------

    def _text(self, node: yaml.Node | None, spec: _Spec, name: str, hint: str) -> str:
        if node is None:
            self.problem(spec.line, f"{spec.key}: {name} is missing; add `{name}:` ({hint})")
            return ""
        if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
            self.problem(node, f"{spec.key}: {name} must be a non-empty text ({hint})")
            return ""
        return str(node.value).strip()

    def _country(self, node: yaml.Node | None, spec: _Spec) -> str:
        # Taken as written, so that `NO` (Norway) stays a country and is not YAML 1.1's false.
        country = self._text(node, spec, "country", "ISO 3166 alpha-2 of its headquarters, e.g. US")
        if country and not _COUNTRY.fullmatch(country):
            self.problem(node, f"{spec.key}: country {country!r} must be two capital letters, e.g. US")
        elif country in _NOT_ISO:
            self.problem(node, f"{spec.key}: {country} is not ISO 3166; use {_NOT_ISO[country]}")
        return country

    def _category(self, node: yaml.Node | None, spec: _Spec) -> Category:
        allowed = " | ".join(Category)
        text = self._text(node, spec, "category", allowed)
        try:
            return Category(text)
        except ValueError:
            if text:
                self.problem(node, f"{spec.key}: category {text!r} is not one of {allowed}")
            return Category.OTHER

    def _list(self, node: yaml.Node | None, spec: _Spec, name: str) -> list[tuple[str, int]]:
        if node is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, f"{spec.key}: {name} must be a list, e.g. {name}: [example.com, example.net]")
            return []
        values = []
        for entry in node.value:
            if isinstance(entry, yaml.ScalarNode) and str(entry.value).strip():
                values.append((str(entry.value).strip(), entry.start_mark.line + 1))
            else:
                self.problem(entry, f"{spec.key}: each entry of {name} must be a non-empty text")
        return values

    # -- across organisations ----------------------------------------------------------------------

    def _organisations(self, specs: Sequence[_Spec]) -> dict[str, Org]:
        keys = {spec.key: spec for spec in specs}
        for spec in specs:
            if spec.parent is not None and spec.parent[0] not in keys:
                self.problem(spec.parent[1], f"{spec.key}: parent {spec.parent[0]!r} is no organisation key")
        return {
            spec.key: Org(
                spec.key,
                spec.name,
                spec.country,
                spec.category,
                spec.category in SUPPORT_CATEGORIES,
                self._owner(spec, keys),
            )
            for spec in specs
        }

    def _owner(self, spec: _Spec, specs: Mapping[str, _Spec]) -> str:
        chain = [spec.key]
        current = spec
        while current.parent is not None and current.parent[0] in specs:
            current = specs[current.parent[0]]
            if current.key in chain:
                self.problem(spec.line, f"{spec.key}: parents loop ({' -> '.join([*chain, current.key])})")
                return spec.key
            chain.append(current.key)
        return current.key

    def _names(self, specs: Sequence[_Spec], by_key: Mapping[str, Org]) -> dict[str, Org]:
        names: dict[str, Org] = {}
        where: dict[str, tuple[str, int]] = {}
        for spec in specs:
            org = by_key[spec.key]
            infra = dataclasses.replace(org, infrastructure=True)
            for entries, target in ((spec.domains, org), (spec.infrastructure_domains, infra)):
                for name, line in entries:
                    if self._name_ok(name, line, spec, where):
                        names[name] = target
                        where[name] = (spec.key, line)
        return names

    def _name_ok(self, name: str, line: int, spec: _Spec, where: Mapping[str, tuple[str, int]]) -> bool:
        clean = normalise_host(name)
        if clean != name:
            fix = f"write it {clean!r}" if clean else "list a host name such as example.com"
            self.problem(line, f"{spec.key}: {name!r} is not a host name as the data lists them; {fix}")
            return False
        if registrable_domain(name) is None:
            self.problem(
                line,
                f"{spec.key}: {name!r} is a public suffix or has an unknown top-level domain; list a "
                "registrable domain (example.com, example.co.uk) or a name under one",
            )
            return False
        if name in where:
            other, first = where[name]
            self.problem(
                line,
                f"{spec.key}: {name!r} is already listed for {other!r} at line {first}; a name belongs to "
                "one organisation (and to one of domains/infrastructure_domains): keep one",
            )
            return False
        return True

    def _aliases(self, specs: Sequence[_Spec]) -> dict[str, str]:
        aliases: dict[str, str] = {}
        where: dict[str, int] = {}
        for spec in specs:
            implicit = [(spec.key.replace("_", " "), spec.line)] + (
                [(spec.name, spec.line)] if spec.name else []
            )
            for alias, line in implicit + spec.aliases:
                joined = "".join(vendor_words(alias))
                if not joined:
                    self.problem(line, f"{spec.key}: alias {alias!r} has no letters or digits; remove it")
                elif aliases.setdefault(joined, spec.key) != spec.key:
                    self.problem(
                        line,
                        f"{spec.key}: vendor name {alias!r} already names {aliases[joined]!r} "
                        f"(line {where[joined]}); keep it for one organisation",
                    )
                where.setdefault(joined, line)
        return aliases


def _suggest(name: str, fields: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, fields, n=1)
    return f"did you mean {close[0]!r}?" if close else f"the fields are {', '.join(fields)}"


def _mapping_value(root: yaml.Node | None, key: str) -> yaml.MappingNode | None:
    """The mapping under ``key`` of a mapping node, if both are mappings."""
    if not isinstance(root, yaml.MappingNode):
        return None
    for key_node, value in root.value:
        if key_node.value == key and isinstance(value, yaml.MappingNode):
            return value
    return None
