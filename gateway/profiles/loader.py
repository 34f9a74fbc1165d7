"""Read and validate a folder of profile files; every problem is reported at once.

`load_profiles` reads every ``*.yaml`` of a folder (in name order), checks each profile against
`gateway.profiles.schema`, then checks across profiles and files: ids are unique, a ``maker`` is an
organisation key of ``gateway/data/organisations.yaml``, and a first-party domain does not belong to
another company there. Any problem raises `ProfileError`, whose lines read
``FILE:LINE: where: what is wrong — what to do``. Lines come from the YAML node tree
(``yaml.compose``), so even a value that fails deep inside a profile points at its own line.

Scalars are taken as the text written, never YAML 1.1's guesses: ``50:31:23`` stays a MAC prefix
(YAML 1.1 would read a base-60 number) and ``NO`` stays text.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from gateway.enrichers.orgs import OrgDB
from gateway.profiles.model import Kind, Profile, Rules, ServiceRule
from gateway.profiles.schema import DOCS, KEYS_UNDER, PROFILE_ID, ProfileSpec

__all__ = ["Problem", "ProfileError", "check_profiles", "load_profiles", "profile_files"]

Loc = tuple[str | int, ...]
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NULL = "tag:yaml.org,2002:null"
MAX_DEPTH = 16  # a profile nests 6 levels; deeper means a recursive alias or a mistake
# Nodes walked per file, aliases counted at each use: a family's file has a few thousand; the cap
# stops alias bombs ("billion laughs") from expanding forever.
MAX_NODES = 50_000
MAX_FILE_BYTES = 4 << 20  # a family's profiles take a few kB; a bigger file is not a profile file
ORGANISATIONS = "gateway/data/organisations.yaml"


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int | None
    where: str  # "google_nest_mini.kind", or "" for the file as a whole
    text: str

    def __str__(self) -> str:
        place = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{place}: {self.where}: {self.text}" if self.where else f"{place}: {self.text}"


class ProfileError(ValueError):
    """Profiles that cannot be used; one line per problem (`Problem`)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(map(str, self.problems)))


@dataclass(slots=True)
class _Document:
    file: str
    data: Any
    lines: dict[Loc, int]
    problems: list[Problem] = field(default_factory=list)
    duplicates: list[tuple[Loc, int, int]] = field(default_factory=list)  # (key, line, first line)
    nodes: int = 0  # nodes walked, aliases counted each time they are used


@dataclass(frozen=True, slots=True)
class _Entry:
    """One valid profile and where it was written."""

    profile: Profile
    file: str
    lines: Mapping[Loc, int]
    loc: Loc  # ("profiles", index)

    def line(self, *keys: str | int) -> int:
        return _line_of((*self.loc, *keys), self.lines)


# -- public API ------------------------------------------------------------------------------------


def profile_files(directory: Path | str) -> list[Path]:
    """The profile files of a folder, in name order."""
    return sorted(Path(directory).glob("*.yaml"))


def load_profiles(directory: Path | str, orgs: OrgDB | None = None) -> tuple[Profile, ...]:
    """Every profile of ``directory``, sorted by id; `ProfileError` lists every problem."""
    profiles, problems = check_profiles(directory, orgs)
    if problems:
        raise ProfileError(problems)
    return profiles


def check_profiles(
    directory: Path | str, orgs: OrgDB | None = None
) -> tuple[tuple[Profile, ...], tuple[Problem, ...]]:
    """The valid profiles and the problems of a folder (both, so a checker can count them)."""
    folder = Path(directory)
    if not folder.is_dir():
        return (), (Problem(str(folder), None, "", "no such folder — give the folder of *.yaml profiles"),)
    files = profile_files(folder)
    if not files:
        return (), (Problem(str(folder), None, "", "no *.yaml file here — profiles are *.yaml files"),)
    entries: list[_Entry] = []
    problems: list[Problem] = []
    for path in files:
        doc = _read_document(path)
        problems += doc.problems
        found, found_problems = _profiles_of(doc)
        entries += found
        problems += found_problems
    problems += _across(entries, OrgDB.load() if orgs is None else orgs)
    profiles = tuple(sorted((e.profile for e in entries), key=lambda p: p.id))
    return profiles, tuple(sorted(problems, key=lambda p: (p.file, p.line or 0)))


# -- reading YAML with lines -----------------------------------------------------------------------


def _read_document(path: Path) -> _Document:
    name = str(path)
    text = _read_text(path)
    if isinstance(text, Problem):
        return _Document(name, None, {}, [text])
    try:
        node = yaml.compose(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        return _Document(name, None, {}, [_yaml_problem(name, exc)])
    doc = _Document(name, None, {(): 1})
    if node is not None:
        doc.lines[()] = node.start_mark.line + 1
        doc.data = _build(node, (), doc, 0)
    for loc, line, first in doc.duplicates:
        text = f"duplicate key '{loc[-1]}' (also on line {first}) — keep only one"
        doc.problems.append(Problem(name, line, _where(loc, doc.data), text))
    return doc


def _read_text(path: Path) -> str | Problem:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return Problem(str(path), None, "", "larger than 4 MB — a profile file holds a few kB; split it")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        return Problem(
            str(path), None, "", f"cannot read the file ({reason}) — check it is readable UTF-8 text"
        )


def _yaml_problem(name: str, exc: yaml.YAMLError) -> Problem:
    hint = "check the indentation, the colons and the quotes around there"
    mark = (exc.problem_mark or exc.context_mark) if isinstance(exc, yaml.MarkedYAMLError) else None
    if isinstance(exc, yaml.MarkedYAMLError) and mark is not None:
        problem = exc.problem or "invalid YAML"
        if exc.context and exc.context_mark:
            problem += f" ({exc.context} on line {exc.context_mark.line + 1})"
        return Problem(name, mark.line + 1, "", f"YAML syntax error: {problem} — {hint}")
    return Problem(name, None, "", f"YAML error: {exc} — {hint}")


def _build(node: yaml.Node, path: Loc, doc: _Document, depth: int) -> Any:
    """Plain data from a node, recording the line of every key and list item."""
    doc.nodes += 1
    if depth > MAX_DEPTH or doc.nodes > MAX_NODES:
        if depth > MAX_DEPTH or doc.nodes == MAX_NODES + 1:  # said once per file
            text = "nested too deep or too many aliases — write the profiles out plainly"
            doc.problems.append(Problem(doc.file, node.start_mark.line + 1, "", text))
        return None
    if isinstance(node, yaml.ScalarNode):
        return None if node.tag == _NULL else str(node.value)
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            doc.lines[(*path, index)] = item.start_mark.line + 1
            items.append(_build(item, (*path, index), doc, depth + 1))
        return items
    return _build_mapping(node, path, doc, depth)


def _build_mapping(node: yaml.Node, path: Loc, doc: _Document, depth: int) -> dict[str, Any]:
    mapping: dict[str, Any] = {}
    for key, value in node.value:
        line = key.start_mark.line + 1
        if not isinstance(key, yaml.ScalarNode):
            doc.problems.append(
                Problem(doc.file, line, "", "a key must be a plain text — write `name: value`")
            )
            continue
        name = str(key.value)
        if name in mapping:
            doc.duplicates.append(((*path, name), line, doc.lines[(*path, name)]))
            continue
        doc.lines[(*path, name)] = line
        mapping[name] = _build(value, (*path, name), doc, depth + 1)
    return mapping


# -- one file --------------------------------------------------------------------------------------


def _profiles_of(doc: _Document) -> tuple[list[_Entry], list[Problem]]:
    if doc.data is None and doc.problems:
        return [], []
    items = _profile_list(doc)
    if items is None:
        return [], list(_top_problems(doc))
    entries: list[_Entry] = []
    problems = list(_top_problems(doc))
    for index, item in enumerate(items):
        loc: Loc = ("profiles", index)
        try:
            spec = ProfileSpec.model_validate(item)
        except ValidationError as exc:
            for error in exc.errors():
                where = (*loc, *_clean(error["loc"]))
                problems.append(_problem(doc, where, _describe(error, where)))
            continue
        source = f"{Path(doc.file).name}:{_line_of(loc, doc.lines)}"
        entries.append(_Entry(_profile(spec, source), doc.file, doc.lines, loc))
    return entries, problems


def _profile_list(doc: _Document) -> list[Any] | None:
    data = doc.data
    if isinstance(data, dict) and isinstance(data.get("profiles"), list) and data["profiles"]:
        return list(data["profiles"])
    return None


def _top_problems(doc: _Document) -> Iterator[Problem]:
    data = doc.data
    if not isinstance(data, dict):
        yield _problem(doc, (), "not a profile file — start it with `profiles:` and list profiles under it")
        return
    for key in data:
        if key != "profiles":
            yield _problem(doc, (key,), _unknown_key(key, KEYS_UNDER[""]))
    if not isinstance(data.get("profiles"), list) or not data["profiles"]:
        yield _problem(
            doc, ("profiles",), "no profile listed — write `profiles:` and one `- id: ...` per profile"
        )


def _profile(spec: ProfileSpec, source: str) -> Profile:
    m = spec.match
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
        id=spec.id,
        vendor=spec.vendor,
        maker=spec.maker,
        model_family=spec.model_family,
        kind=spec.kind,
        rules=rules,
        first_party_domains=tuple(spec.first_party_domains),
        notes=spec.notes,
        activation_threshold_bps=spec.activation_threshold_bps,
        source=source,
    )


# -- across profiles -------------------------------------------------------------------------------


def _across(entries: Sequence[_Entry], orgs: OrgDB) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, _Entry] = {}
    for entry in entries:
        first = seen.setdefault(entry.profile.id, entry)
        if first is not entry:
            text = (
                f"id '{entry.profile.id}' is already used at {Path(first.file).name}:{first.line()} — "
                "ids must be unique; rename one"
            )
            problems.append(Problem(entry.file, entry.line("id"), entry.profile.id, text))
        problems += _maker_problems(entry, orgs)
    return problems


def _maker_problems(entry: _Entry, orgs: OrgDB) -> Iterator[Problem]:
    profile = entry.profile
    maker = orgs.organisation(profile.maker) if profile.maker else None
    if profile.maker and maker is None:
        yield Problem(
            entry.file, entry.line("maker"), f"{profile.id}.maker", _unknown_maker(profile.maker, orgs)
        )
        return
    for index, domain in enumerate(profile.first_party_domains):
        owner = orgs.lookup(domain)
        if owner is not None and (maker is None or owner.owner != maker.owner):
            fix = f"remove it, or set maker: {owner.key}" if maker is None else "remove it"
            text = f"'{domain}' belongs to '{owner.key}' in {ORGANISATIONS}, not to the maker — {fix}"
            where = f"{profile.id}.first_party_domains[{index}]"
            yield Problem(entry.file, entry.line("first_party_domains", index), where, text)


def _unknown_maker(maker: str, orgs: OrgDB) -> str:
    keys = [org.key for org in orgs.organisations]
    guess = orgs.maker_key(maker) or next(iter(difflib.get_close_matches(maker, keys, n=1)), None)
    hint = f"did you mean '{guess}'? Otherwise add" if guess else "add"
    return (
        f"'{maker}' is not an organisation key of {ORGANISATIONS} — {hint} the organisation there, "
        "or leave maker out (first-party attribution then uses first_party_domains only)"
    )


# -- messages --------------------------------------------------------------------------------------

_HINTS = {
    "profiles": "a list of profiles",
    "id": "a unique lowercase name, e.g. amazon_echo",
    "vendor": "the brand as people say it, e.g. Amazon",
    "model_family": "the models it covers, e.g. Echo, Echo Dot, Echo Studio",
    "kind": f"one of {', '.join(Kind)}",
    "match": "at least one rule, e.g. mdns: [{type: _sonos._tcp}]",
    "notes": "what the device is known to send, for the workshop",
    "type": "a DNS-SD service type such as _googlecast._tcp",
}
_MAPPING = ("a mapping", "write 'key: value' lines indented under this key")
_EXPECTED = {
    "string_type": ("a single text value", "write one value, in quotes if it has special characters"),
    "list_type": ("a list", "write [a, b] or one '- item' per line"),
    "dict_type": _MAPPING,
    "model_type": _MAPPING,
    "model_attributes_type": _MAPPING,
    "int_parsing": ("a whole number", "write digits only, without quotes or units, e.g. 12172"),
    "int_type": ("a whole number", "write digits only, without quotes or units, e.g. 12172"),
}


def _describe(error: ErrorDetails, loc: Loc) -> str:
    """One ``what — fix`` text for a pydantic error at ``loc`` (from the top of the file)."""
    kind, ctx = error["type"], error.get("ctx") or {}
    key = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        return _unknown_key(key, KEYS_UNDER.get(_parent_key(loc), ()))
    if kind == "missing":
        return f"`{key}` is missing — add it ({_HINTS.get(key, 'see ' + DOCS)})"
    if kind == "enum":
        close = difflib.get_close_matches(str(error["input"]).lower(), list(Kind), n=1)
        guess = f"did you mean '{close[0]}'? " if close else ""
        return f"unknown kind {_show(error['input'])} — {guess}use one of: {', '.join(Kind)}"
    if kind in _EXPECTED:
        expected, fix = _EXPECTED[kind]
        return f"expected {expected}, got {_show(error['input'])} — {fix}"
    if kind in {"greater_than", "less_than_equal"}:
        return f"{_show(error['input'])} is out of range — give bits per second, from 1 to 1000000000"
    if kind == "too_short":
        return "is empty — list at least one entry"
    if "message" in ctx:
        return str(ctx["message"])
    return f"{error['msg']} — see {DOCS}"


def _unknown_key(key: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1)
    if close:
        return f"unknown key '{key}' — did you mean '{close[0]}'?"
    return f"unknown key '{key}' — the keys here are: {', '.join(valid)}"


def _parent_key(loc: Loc) -> str:
    """The mapping a key sits in: the last text part before it (list positions skipped)."""
    names = [part for part in loc[:-1] if isinstance(part, str)]
    return names[-1] if names else ""


def _clean(loc: Iterable[str | int]) -> Loc:
    return tuple(part for part in loc if part != "[key]")


def _show(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, str):
        return f"'{value[:40]}'" + ("…" if len(value) > 40 else "")
    return "a mapping" if isinstance(value, dict) else "a list" if isinstance(value, list) else str(value)


def _problem(doc: _Document, loc: Loc, text: str) -> Problem:
    return Problem(doc.file, _line_of(loc, doc.lines), _where(loc, doc.data), text)


def _line_of(loc: Loc, lines: Mapping[Loc, int]) -> int:
    """The line of ``loc``, else of its closest ancestor written in the file."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _where(loc: Loc, data: Any) -> str:
    """``google_nest_mini.match.mdns[0].txt.md``: a profile is named by its id when it has one."""
    parts = list(loc)
    text = ""
    if len(parts) >= 2 and parts[0] == "profiles" and isinstance(parts[1], int):
        text = _profile_name(data, parts[1])
        parts = parts[2:]
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _profile_name(data: Any, index: int) -> str:
    items = data.get("profiles") if isinstance(data, dict) else None
    item = items[index] if isinstance(items, list) and index < len(items) else None
    pid = item.get("id") if isinstance(item, dict) else None
    return pid if isinstance(pid, str) and PROFILE_ID.fullmatch(pid) else f"profiles[{index}]"
