"""What the dashboards' tests know about Grafana: its JSON schemas, and how it fills InfluxQL queries.

Grafana cannot run here, so its behaviour that matters to the dashboards is written down once:
- `interpolate`: what Grafana 11's InfluxDB data source sends to InfluxDB for a raw InfluxQL target.
  The browser replaces the dashboard's variables and ``${__from}``/``${__to}`` (epoch ms; for
  annotation queries values are regex-escaped), then the backend (pkg/tsdb/influxdb/models/query.go)
  replaces ``$timeFilter`` with ``time >= <from>ms and time <= <to>ms``, then ``$interval``,
  ``$__interval_ms`` and ``$__interval`` with the interval of gtime's calculator: range divided by the
  panel's max data points, at least the data source's ``timeInterval``, rounded to Grafana's steps.
- `schema_errors`: each dashboard against the ``Dashboard`` definition, each panel against ``Panel``,
  and its options and custom field config against its panel type's schema.
- `name_problems`: only DESIGN.md's measurement, tag and field names in a query.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

from gateway.grafana.influx_schema import MEASUREMENTS
from tests.conftest import SHARED

SCHEMAS = SHARED / "grafana-schemas"

# ------------------------------------------------------------------------------------- JSON schemas


@cache
def _schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCHEMAS / f"{name}.jsonschema.json").read_text(encoding="utf-8"))
    return data


def validator(name: str, definition: str) -> Draft7Validator:
    """A validator for one definition of one schema file (``dashboard``, ``Panel``)."""
    schema = _schema(name)
    return Draft7Validator({"$ref": f"#/definitions/{definition}", "definitions": schema["definitions"]})


def _errors(name: str, definition: str, data: object, where: str) -> list[str]:
    found = validator(name, definition).iter_errors(data)
    return [f"{where} {'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in found]


def schema_errors(model: Mapping[str, Any]) -> list[str]:
    """Every way a dashboard differs from Grafana's schemas (empty when it validates)."""
    title = model.get("title", "?")
    problems = _errors("dashboard", "Dashboard", model, f"{title}:")
    for panel in model.get("panels", []):
        where = f"{title} / {panel.get('title', '?')}:"
        problems += _errors("dashboard", "Panel", panel, where)
        kind = panel.get("type", "")
        if not (SCHEMAS / f"{kind}.jsonschema.json").is_file():
            problems.append(f"{where} no schema for panel type {kind!r}")
            continue
        problems += _errors(kind, "Options", panel.get("options", {}), f"{where} options")
        custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom")
        if custom is not None and "FieldConfig" in _schema(kind)["definitions"]:
            problems += _errors(kind, "FieldConfig", custom, f"{where} fieldConfig.defaults.custom")
    return problems


# ------------------------------------------------------------------------------------- queries


@dataclass(frozen=True, slots=True)
class Query:
    """One InfluxQL text of a dashboard, and where it is used."""

    where: str  # "panel <title> target A", "variable device", "annotation <name>"
    text: str
    alias: str = ""
    for_annotation: bool = False
    max_data_points: int = 0  # the panel's, or 0 for variables and annotations


def queries(model: Mapping[str, Any], panel_width_px: int = 1000) -> Iterator[Query]:
    """Every InfluxQL query of a dashboard: panel targets, variables and annotations."""
    for panel in model.get("panels", []):
        for target in panel.get("targets", []):
            where = f"panel {panel['title']!r} target {target['refId']}"
            yield Query(where, target["query"], target.get("alias", ""), max_data_points=panel_width_px)
    for variable in model.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            yield Query(f"variable {variable['name']}", variable["query"])
    for annotation in model.get("annotations", {}).get("list", []):
        query = (annotation.get("target") or {}).get("query")
        if query:
            yield Query(f"annotation {annotation['name']!r}", query, for_annotation=True)


_KEYWORDS = frozenset(
    {
        *("select", "from", "where", "and", "or", "group", "by", "order", "desc", "asc", "limit", "as"),
        *("fill", "none", "null", "time", "tz", "show", "tag", "field", "values", "with", "key"),
        *("sum", "count", "min", "max", "first", "last", "mean", "round", "non_negative_derivative"),
    }
)
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'")
_REGEX = re.compile(r"([=!]~)\s*/(?:[^/\\]|\\.)*/")
_IDENT = re.compile(r'"([^"]*)"')
_ALIAS = re.compile(r'\bAS\s+"([^"]+)"', re.IGNORECASE)
_FROM = re.compile(r'\bFROM\s+"([^"]+)"', re.IGNORECASE)
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_DURATION = re.compile(r"\d+(?:ms|s|m|h|d|w)?")


def name_problems(text: str) -> list[str]:
    """Names of a query that DESIGN.md does not define for the measurements it reads."""
    body = _VARIABLE.sub("0", _REGEX.sub(r"\1 ", _STRING.sub("''", text)))
    measurements = set(_FROM.findall(body))
    problems = [f"unknown measurement {m!r}" for m in sorted(measurements - MEASUREMENTS.keys())]
    allowed = set(_ALIAS.findall(body)) | measurements
    for name in measurements & MEASUREMENTS.keys():
        allowed |= MEASUREMENTS[name].names
    problems += [
        f"name {n!r} is not in DESIGN.md for {sorted(measurements)}"
        for n in _IDENT.findall(body)
        if n not in allowed
    ]
    bare = _IDENT.sub(" ", body)
    for word in re.findall(r"[A-Za-z_][A-Za-z_0-9]*|\d\w*", bare):
        if word.lower() not in _KEYWORDS and not _DURATION.fullmatch(word):
            problems.append(f"unquoted word {word!r} (quote tag and field names)")
    return problems


def group_by_tags(text: str) -> set[str]:
    """Tags of the outermost GROUP BY (what ``$tag_<key>`` aliases and table columns can read)."""
    clause = text.rsplit("GROUP BY", 1)[-1] if "GROUP BY" in text else ""
    return set(_IDENT.findall(clause))


# ------------------------------------------------------------------------------------- interpolation

# gtime.roundInterval: (upper bound in ms, interval in ms), checked in order; beyond: one year.
_STEPS = (
    (10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1_500, 1_000),
    (3_500, 2_000), (7_500, 5_000), (12_500, 10_000), (17_500, 15_000), (25_000, 20_000),
    (45_000, 30_000), (90_000, 60_000), (210_000, 120_000), (450_000, 300_000), (750_000, 600_000),
    (1_050_000, 900_000), (1_500_000, 1_200_000), (2_700_000, 1_800_000), (5_400_000, 3_600_000),
    (9_000_000, 7_200_000), (16_200_000, 10_800_000), (32_400_000, 21_600_000),
    (86_400_000, 43_200_000), (604_800_000, 86_400_000), (1_814_400_000, 604_800_000),
    (3_628_800_000, 2_592_000_000),
)  # fmt: skip
_YEAR_MS = 31_536_000_000
_UNITS = (("y", _YEAR_MS), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1))


def round_interval(ms: float) -> int:
    for bound, step in _STEPS:
        if ms <= bound:
            return step
    return _YEAR_MS


def interval_ms(from_ms: int, to_ms: int, max_data_points: int, min_interval_ms: int) -> int:
    """gtime's calculator: the range over the panel's data points, at least the minimum, rounded."""
    calculated = (to_ms - from_ms) / max(max_data_points, 1)
    return round_interval(max(calculated, min_interval_ms))


def format_interval(ms: int) -> str:
    """gtime.FormatInterval: the largest whole unit (``10s``, ``1m``, ``500ms``)."""
    for suffix, size in _UNITS:
        if ms >= size:
            return f"{ms // size}{suffix}"
    return "1ms"


@dataclass(frozen=True, slots=True)
class Dashboard:
    """The state of a dashboard in the browser: its time range and its variables' values."""

    from_ms: int
    to_ms: int
    min_interval_ms: int = 10_000  # the data source's timeInterval
    variables: Mapping[str, str] = field(default_factory=dict)


def escape_regex(value: str) -> str:
    """Grafana's escapeRegex (@grafana/data): a backslash before ``\\ ^ $ * + ? . ( ) | [ ] { } /``."""
    return re.sub(r"[\\^$*+?.()|\[\]{}/]", lambda m: "\\" + m.group(0), value)


def interpolate(query: Query, state: Dashboard) -> str:
    """The InfluxQL Grafana sends to InfluxDB for `query` (see the module's docstring).

    A variable's value is regex-escaped where Grafana escapes it: everywhere in an annotation query
    (``templateSrv.replace(query, undefined, 'regex')``), and inside a ``=~ /.../`` literal elsewhere.
    """
    values = {"__from": str(state.from_ms), "__to": str(state.to_ms), **state.variables}
    in_regex = {
        name
        for literal in _REGEX.finditer(query.text)
        for name in re.findall(r"\$\{?(\w+)", literal.group(0))
    }

    def variable(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            return match.group(0)  # $timeFilter, $__interval: the backend's
        escape = not name.startswith("__") and (query.for_annotation or name in in_regex)
        return escape_regex(values[name]) if escape else values[name]

    text = re.sub(r"\$\{(\w+)\}|\$(\w+)", variable, query.text)
    points = query.max_data_points or 1000
    ms = interval_ms(state.from_ms, state.to_ms, points, state.min_interval_ms)
    text = text.replace("$timeFilter", f"time >= {state.from_ms}ms and time <= {state.to_ms}ms")
    text = text.replace("$interval", format_interval(ms))
    text = text.replace("$__interval_ms", str(ms))
    return text.replace("$__interval", format_interval(ms))


def committed(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
