"""The dashboards as Grafana and a workshop see them: schemas, the project's rules, both languages."""

from __future__ import annotations

import re
from typing import Any

import pytest

from gateway.grafana import BOARDS
from gateway.grafana.influx_schema import MEASUREMENTS
from gateway.grafana.language import Lang
from gateway.grafana.panels import DATASOURCE_UID
from gateway.grafana.render import dashboards
from tests.grafana.grafana_rules import group_by_tags, name_problems, queries, schema_errors

BUILT = {lang: dashboards(lang) for lang in Lang}
CASES = [(lang, name) for lang in Lang for name in BOARDS]
IDS = [f"{lang.value}-{name}" for lang, name in CASES]
TAGS = frozenset().union(*(m.tags for m in MEASUREMENTS.values()))


def model(lang: Lang, name: str) -> dict[str, Any]:
    return BUILT[lang][name]


@pytest.mark.parametrize(("lang", "name"), CASES, ids=IDS)
def test_valid_against_grafana_schemas(lang: Lang, name: str) -> None:
    assert schema_errors(model(lang, name)) == []


@pytest.mark.parametrize(("lang", "name"), CASES, ids=IDS)
def test_every_panel_has_title_unit_and_datasource(lang: Lang, name: str) -> None:
    for panel in model(lang, name)["panels"]:
        where = f"{name} panel {panel.get('id')}"
        assert panel.get("title", "").strip(), f"{where} has no title"
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{where} has no unit"
        assert panel["datasource"] == {"type": "influxdb", "uid": DATASOURCE_UID}, where
        assert panel["targets"], f"{where} has no query"
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], f"{where} target {target['refId']}"
            assert target["rawQuery"] is True


@pytest.mark.parametrize(("lang", "name"), CASES, ids=IDS)
def test_queries_use_only_design_names(lang: Lang, name: str) -> None:
    problems = [f"{q.where}: {p}" for q in queries(model(lang, name)) for p in name_problems(q.text)]
    assert problems == []


@pytest.mark.parametrize(("lang", "name"), CASES, ids=IDS)
def test_aliases_and_columns_read_what_the_query_returns(lang: Lang, name: str) -> None:
    for q in queries(model(lang, name)):
        for tag in re.findall(r"\$tag_(\w+)", q.alias):
            assert tag in TAGS, f"{q.where}: alias reads {tag!r}, not a DESIGN tag"
            assert tag in group_by_tags(q.text), f"{q.where}: alias reads {tag!r}, not grouped by"
    for panel in model(lang, name)["panels"]:
        returned = {"Time"}
        for target in panel["targets"]:
            returned |= set(re.findall(r'"([^"]+)"', target["query"]))
        for transformation in panel.get("transformations", []):
            for column in transformation["options"].get("includeByName", {}):
                assert column in returned, f"{name} / {panel['title']}: column {column!r} is never returned"


@pytest.mark.parametrize(("lang", "name"), CASES, ids=IDS)
def test_annotations_read_event_columns(lang: Lang, name: str) -> None:
    for annotation in model(lang, name)["annotations"]["list"]:
        target = annotation["target"]
        if "query" not in target:
            assert annotation["builtIn"] == 1  # Grafana's own
            continue
        assert annotation["datasource"]["uid"] == DATASOURCE_UID
        assert target["fromAnnotations"] is True
        for column in [target["textColumn"], *target["tagsColumn"].split(",")]:
            assert f'"{column}"' in target["query"], f"{annotation['name']}: {column} not selected"


@pytest.mark.parametrize("name", BOARDS)
def test_uids_and_queries_are_the_same_in_every_language(name: str) -> None:
    english, french = model(Lang.EN, name), model(Lang.FR, name)
    assert english["uid"] == french["uid"]
    assert [p["id"] for p in english["panels"]] == [p["id"] for p in french["panels"]]
    assert [q.text for q in queries(english)] == [q.text for q in queries(french)]


def _texts(board: dict[str, Any]) -> list[str]:
    """What a reader sees: titles, descriptions, headers, variable labels, annotation names."""
    seen = [board["title"], board["description"]]
    for panel in board["panels"]:
        seen += [panel["title"], panel.get("description", "")]
        for transformation in panel.get("transformations", []):
            seen += transformation["options"].get("renameByName", {}).values()
    seen += [v.get("label", "") for v in board["templating"].get("list", [])]
    seen += [a["name"] for a in board["annotations"]["list"] if "builtIn" not in a]
    return [text for text in seen if text]


# Words that are the same in both languages (names, units, a few cognates).
SAME = {"Destinations", "Activations", "Mouchard"}


@pytest.mark.parametrize("name", BOARDS)
def test_french_is_translated_with_french_typography(name: str) -> None:
    english, french = _texts(model(Lang.EN, name)), _texts(model(Lang.FR, name))
    assert len(english) == len(french)
    untranslated = [fr for en, fr in zip(english, french, strict=True) if en == fr and fr not in SAME]
    assert untranslated == []
    for text in french:
        assert "'" not in text, f"typewriter apostrophe in {text!r}: use ’"
        assert not re.search(r"[^\u00a0\u202f][?!:;](\s|$)", text), (
            f"no no-break space before ?!:; in {text!r}"
        )
    assert model(Lang.FR, "overview")["title"] == "Où vont vos données\u00a0?"
    assert model(Lang.EN, "overview")["title"] == "Where does your data go?"


def test_fixed_uids() -> None:
    assert {name: model(Lang.EN, name)["uid"] for name in BOARDS} == {
        "overview": "mouchard-overview",
        "device": "mouchard-device",
        "phone-home": "mouchard-phone-home",
        "health": "mouchard-health",
    }


def test_device_detail_has_the_device_variable_and_events_as_annotations() -> None:
    board = model(Lang.EN, "device")
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["device"]["type"] == "query"
    assert variables["device"]["query"] == 'SHOW TAG VALUES FROM "traffic" WITH KEY = "device"'
    event_annotations = [a for a in board["annotations"]["list"] if "event" in a["target"].get("query", "")]
    assert event_annotations


def test_phone_home_annotates_each_event_type() -> None:
    board = model(Lang.EN, "phone-home")
    annotated = {
        m.group(1)
        for a in board["annotations"]["list"]
        if (m := re.search(r"\"type\" = '(\w+)'", a["target"].get("query", "")))
    }
    assert annotated == {"activation", "quiet_hours", "heartbeat", "new_destination", "new_country"}


def test_heatmap_has_one_row_per_hour_in_order() -> None:
    board = model(Lang.FR, "device")
    (heatmap,) = [p for p in board["panels"] if p["type"] == "heatmap"]
    assert [t["alias"] for t in heatmap["targets"]] == [f"{h:02d}\u00a0h" for h in range(24)]
    assert [t["refId"] for t in heatmap["targets"]] == [chr(ord("A") + h) for h in range(24)]


def test_health_reads_the_self_metrics() -> None:
    texts = " ".join(q.text for q in queries(model(Lang.EN, "health")))
    for name in (
        "packets",
        "kernel_drops",
        "spool_depth",
        "points_written",
        "points_retried",
        "points_dropped",
    ):
        assert f'"{name}"' in texts


def test_sdk_reads_the_dashboards_back() -> None:
    """The project's query type is registered: the SDK parses a dashboard into the same JSON."""
    import json

    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    from gateway.grafana.influxql import InfluxQuery

    original = model(Lang.EN, "overview")
    parsed = Dashboard.from_json(original)
    assert isinstance(parsed.panels[0].targets[0], InfluxQuery)
    assert json.loads(json.dumps(parsed, cls=JSONEncoder)) == original
