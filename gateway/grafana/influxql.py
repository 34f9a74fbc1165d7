"""The project's InfluxQL query type: grafana-foundation-sdk ships none for InfluxDB.

`InfluxQuery` is a raw InfluxQL target as Grafana's InfluxDB data source stores it (``query``,
``rawQuery: true``, ``resultFormat``, ``alias``); `InfluxQL` is its builder, usable wherever the SDK
takes a query (``panel.with_target(InfluxQL(...))``). `influx_annotation` builds a dashboard
annotation that runs an InfluxQL query, in the form Grafana's InfluxDB annotation editor saves
(``target.query``, ``textColumn``, ``tagsColumn``, ``fromAnnotations``).

Grafana fills ``$timeFilter`` (``time >= <from>ms and time <= <to>ms``), ``$__interval``,
``$__interval_ms``, ``${__from}``/``${__to}`` (epoch milliseconds) and the dashboard's variables.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

INFLUXDB_TYPE = "influxdb"  # Grafana's plugin id of the InfluxDB data source


class ResultFormat(StrEnum):
    """How Grafana turns InfluxDB's series into frames."""

    TIME_SERIES = "time_series"  # one frame per series; `alias` names it
    TABLE = "table"  # one table: time, the GROUP BY tags, then the selected columns


@dataclass(frozen=True)
class InfluxQuery(cogvariants.Dataquery):
    """One raw InfluxQL target of a panel."""

    ref_id: str
    query: str
    datasource: dashboard.DataSourceRef
    result_format: ResultFormat = ResultFormat.TIME_SERIES
    alias: str = ""
    hide: bool = False

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "datasource": self.datasource,
            "query": self.query,
            "rawQuery": True,
            "resultFormat": self.result_format.value,
        }
        if self.alias:
            payload["alias"] = self.alias
        if self.hide:
            payload["hide"] = True
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(
            ref_id=str(data.get("refId", "")),
            query=str(data.get("query", "")),
            datasource=dashboard.DataSourceRef.from_json(data.get("datasource") or {}),
            result_format=ResultFormat(data.get("resultFormat", ResultFormat.TIME_SERIES.value)),
            alias=str(data.get("alias", "")),
            hide=bool(data.get("hide", False)),
        )


class InfluxQL(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder of an `InfluxQuery`: ``InfluxQL(ds, "SELECT ...").ref_id("B").table()``."""

    def __init__(self, datasource: dashboard.DataSourceRef, query: str) -> None:
        self._datasource = datasource
        self._query = " ".join(query.split())  # one line, as Grafana's editor shows it
        self._ref_id = "A"
        self._format = ResultFormat.TIME_SERIES
        self._alias = ""

    def ref_id(self, ref_id: str) -> Self:
        self._ref_id = ref_id
        return self

    def table(self) -> Self:
        self._format = ResultFormat.TABLE
        return self

    def alias(self, alias: str) -> Self:
        """Series name; Grafana replaces ``$tag_<key>`` with the series' tag value."""
        self._alias = alias
        return self

    def build(self) -> InfluxQuery:
        return InfluxQuery(self._ref_id, self._query, self._datasource, self._format, self._alias)


class InfluxAnnotationTarget(dashboard.AnnotationTarget):
    """The `target` of an InfluxQL annotation: the query and which columns hold text and tags."""

    def __init__(self, query: str, text_column: str, tags_column: str) -> None:
        super().__init__()
        self.query = " ".join(query.split())
        self.text_column = text_column
        self.tags_column = tags_column

    def to_json(self) -> dict[str, object]:
        return {
            "refId": "Anno",
            "query": self.query,
            "rawQuery": True,
            "resultFormat": ResultFormat.TABLE.value,
            "fromAnnotations": True,
            "textColumn": self.text_column,
            "tagsColumn": self.tags_column,
            "titleColumn": "",
            "timeEndColumn": "",
        }


class InfluxAnnotation(cogbuilder.Builder[dashboard.AnnotationQuery]):
    """A dashboard annotation fed by an InfluxQL query (Grafana's InfluxDB annotation editor form)."""

    def __init__(
        self,
        datasource: dashboard.DataSourceRef,
        name: str,
        query: str,
        *,
        color: str,
        text_column: str = "text",
        tags_column: str = "type,device",
        enabled: bool = True,
    ) -> None:
        self._annotation = dashboard.AnnotationQuery(
            name=name,
            datasource=datasource,
            enable=enabled,
            hide=False,
            icon_color=color,
            target=InfluxAnnotationTarget(query, text_column, tags_column),
        )

    def build(self) -> dashboard.AnnotationQuery:
        return self._annotation


def register() -> None:
    """Let the SDK read InfluxDB targets back (``Dashboard.from_json``) as `InfluxQuery`."""
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier=INFLUXDB_TYPE, from_json_hook=InfluxQuery.from_json)
    )
