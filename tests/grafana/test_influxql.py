"""The project's InfluxQL query type: what Grafana's InfluxDB data source stores for a raw query."""

from __future__ import annotations

from gateway.grafana.influxql import InfluxAnnotation, InfluxQL, InfluxQuery, ResultFormat
from gateway.grafana.panels import DATASOURCE


def test_target_json() -> None:
    target = (
        InfluxQL(DATASOURCE, 'SELECT sum("bytes_out")\n   FROM "traffic"')
        .ref_id("B")
        .alias("$tag_org")
        .build()
    )
    assert target.to_json() == {
        "refId": "B",
        "datasource": DATASOURCE,
        "query": 'SELECT sum("bytes_out") FROM "traffic"',
        "rawQuery": True,
        "resultFormat": "time_series",
        "alias": "$tag_org",
    }
    assert InfluxQL(DATASOURCE, "SHOW MEASUREMENTS").table().build().result_format is ResultFormat.TABLE


def test_target_reads_back() -> None:
    data = {
        "refId": "C",
        "datasource": {"type": "influxdb", "uid": "u"},
        "query": "SELECT 1",
        "rawQuery": True,
        "resultFormat": "table",
        "hide": True,
    }
    query = InfluxQuery.from_json(data)
    assert query.result_format is ResultFormat.TABLE
    assert query.hide is True
    assert {**query.to_json(), "datasource": data["datasource"]} == data


def test_annotation_json() -> None:
    annotation = InfluxAnnotation(DATASOURCE, "Events", 'SELECT "text" FROM "event"', color="red").build()
    target = annotation.target.to_json() if annotation.target else {}
    assert target["query"] == 'SELECT "text" FROM "event"'
    assert target["fromAnnotations"] is True
    assert (target["textColumn"], target["tagsColumn"]) == ("text", "type,device")
    assert (annotation.enable, annotation.icon_color) == (True, "red")
