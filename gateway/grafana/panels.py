"""Panel helpers shared by the dashboards: one look, one data source, one way to name columns.

Every panel made here has a title, a unit and the Mouchard InfluxDB data source (by its fixed uid);
the dashboards' tests hold every panel to that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from grafana_foundation_sdk.builders import barchart, common, dashboard, heatmap, stat, table, timeseries
from grafana_foundation_sdk.models import common as common_m
from grafana_foundation_sdk.models import dashboard as dashboard_m
from grafana_foundation_sdk.models import heatmap as heatmap_m

from gateway.grafana.influxql import INFLUXDB_TYPE, InfluxQL

DATASOURCE_UID = "mouchard-influxdb"
DATASOURCE = dashboard_m.DataSourceRef(type_val=INFLUXDB_TYPE, uid=DATASOURCE_UID)
TAG = "mouchard"  # every Mouchard dashboard carries it; the dashboards' links list them by it

# Rows of a top-N table or bar chart (top destinations, companies, countries): a workshop audience
# reads ten to twenty names; the rest is one click away in the device detail.
TOP_ROWS = 20


class Unit(StrEnum):
    """Grafana unit ids used by the dashboards."""

    BYTES = "decbytes"  # kB, MB: SI units, as people read them
    BYTE_RATE = "Bps"  # bytes per second
    PERCENT = "percent"  # 0-100
    COUNT = "short"
    PER_SECOND = "cps"  # counts per second
    PACKET_RATE = "pps"
    SECONDS = "s"


def query(text: str, ref_id: str = "A") -> InfluxQL:
    """A raw InfluxQL target on the Mouchard data source."""
    return InfluxQL(DATASOURCE, text).ref_id(ref_id)


@dataclass(frozen=True, slots=True)
class Column:
    """How a table shows one field: its header, and whether its number is shown as plain text.

    Grafana's dashboard schema types an override's value as an object, so the dashboards set no
    per-column override (no per-column unit, name or link): headers come from an ``organize``
    transformation, and numbers in another unit than the table's (counts, seconds, percents) are
    turned into text by a ``convertFieldType`` transformation, the header saying the unit.
    """

    header: str
    as_text: bool = False


def _link(title: str, url: str) -> dashboard.DashboardLink:
    return (
        dashboard.DashboardLink(title)
        .type(dashboard_m.DashboardLinkType.LINK)
        .url(url)
        .icon("external link")
        .tooltip(title)
        .tags([])
        .as_dropdown(False)
        .target_blank(False)
        .include_vars(False)
        .keep_time(True)
    )


def value_mapping(words: Mapping[str, str]) -> dashboard_m.ValueMap:
    """Show each value as its word (tag values are stable English ids; people read words)."""
    return dashboard_m.ValueMap(
        options={
            value: dashboard_m.ValueMappingResult(text=text, index=i)
            for i, (value, text) in enumerate(words.items())
        }
    )


def timeseries_panel(
    title: str,
    unit: Unit,
    *targets: InfluxQL,
    description: str = "",
    bars: bool = False,
    stacked: bool = False,
) -> timeseries.Panel:
    """Values over time; with `bars`, one bar per interval (counts of events)."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit.value)
        .min(0)
        .legend(
            common.VizLegendOptions()
            .display_mode(common_m.LegendDisplayMode.LIST)
            .placement(common_m.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs([])
        )
        .tooltip(
            common.VizTooltipOptions()
            .mode(common_m.TooltipDisplayMode.MULTI)
            .sort(common_m.SortOrder.DESCENDING)
        )
        .draw_style(common_m.GraphDrawStyle.BARS if bars else common_m.GraphDrawStyle.LINE)
        .fill_opacity(60 if bars else 15)
        .line_width(1)
        .show_points(common_m.VisibilityMode.NEVER)
        .stacking(
            common.StackingConfig().mode(
                common_m.StackingMode.NORMAL if stacked else common_m.StackingMode.NONE
            )
        )
    )
    for target in targets:
        panel.with_target(target)
    return panel


def table_panel(
    title: str,
    unit: Unit,
    *targets: InfluxQL,
    columns: Mapping[str, Column],
    sort_by: str = "",
    description: str = "",
    limit: int = 0,
    join_on: str = "",
    words: Mapping[str, str] | None = None,
    row_link: tuple[str, str] | None = None,
) -> table.Panel:
    """A table of InfluxDB's table-format rows; `columns` names and orders the fields shown.

    With several targets, `join_on` merges their rows on that column (e.g. one row per device). Fields
    not in `columns` (the time column among them) are hidden. `sort_by` is a field sorted descending,
    and `limit` keeps that many rows. `words` shows tag values as words; `row_link` (title, URL) makes
    every cell a link, the URL reading the row with ``${__data.fields.<name>}``.
    """
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit.value)
        .show_header(True)
        .cell_height(common_m.TableCellHeight.SM)
        .footer(common.TableFooterOptions().show(False).reducer(["sum"]).count_rows(False))
    )
    for target in targets:
        panel.with_target(target.table())
    if join_on:
        panel.with_transformation(_transform("joinByField", {"byField": join_on, "mode": "outer"}))
    if sort_by:
        panel.with_transformation(
            _transform("sortBy", {"fields": {}, "sort": [{"field": sort_by, "desc": True}]})
        )
    if limit:
        panel.with_transformation(_transform("limit", {"limitField": limit}))
    texts = [name for name, column in columns.items() if column.as_text]
    if texts:
        conversions = [{"targetField": name, "destinationType": "string"} for name in texts]
        panel.with_transformation(_transform("convertFieldType", {"conversions": conversions, "fields": {}}))
    panel.with_transformation(
        _transform(
            "organize",
            {
                "excludeByName": {},
                "includeByName": dict.fromkeys(columns, True),
                "indexByName": {name: i for i, name in enumerate(columns)},
                "renameByName": {name: column.header for name, column in columns.items()},
            },
        )
    )
    if words:
        panel.mappings([value_mapping(words)])
    if row_link:
        panel.data_links([_link(*row_link)])
    return panel


def _transform(kind: str, options: dict[str, object]) -> dashboard_m.DataTransformerConfig:
    return dashboard_m.DataTransformerConfig(id_val=kind, options=options)


def stat_panel(
    title: str, unit: Unit, target: InfluxQL, description: str = "", decimals: int = -1
) -> stat.Panel:
    """One number: the total (or last value) of its query over the time range."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit.value)
        .with_target(target)
        .graph_mode(common_m.BigValueGraphMode.NONE)
        .color_mode(common_m.BigValueColorMode.VALUE)
        .text_mode(common_m.BigValueTextMode.VALUE)
        .justify_mode(common_m.BigValueJustifyMode.CENTER)
        .orientation(common_m.VizOrientation.AUTO)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .color_scheme(dashboard.FieldColor().mode(dashboard_m.FieldColorModeId.FIXED).fixed_color("text"))
        .no_value("0")
    )
    if decimals >= 0:
        panel.decimals(decimals)
    return panel


def bar_panel(
    title: str, unit: Unit, target: InfluxQL, *, label_field: str, value_field: str, description: str = ""
) -> barchart.Panel:
    """Horizontal bars, one per row of a table query (a company, a country), largest first."""
    return (
        barchart.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit.value)
        .with_target(target.table())
        .with_transformation(
            _transform("sortBy", {"fields": {}, "sort": [{"field": value_field, "desc": True}]})
        )
        .with_transformation(_transform("limit", {"limitField": TOP_ROWS}))
        .with_transformation(
            _transform(
                "organize",
                {
                    "excludeByName": {},
                    "includeByName": {label_field: True, value_field: True},
                    "indexByName": {label_field: 0, value_field: 1},
                    "renameByName": {},
                },
            )
        )
        .x_field(label_field)
        .orientation(common_m.VizOrientation.HORIZONTAL)
        .show_value(common_m.VisibilityMode.AUTO)
        .stacking(common_m.StackingMode.NONE)
        .legend(
            common.VizLegendOptions()
            .display_mode(common_m.LegendDisplayMode.LIST)
            .placement(common_m.LegendPlacement.BOTTOM)
            .show_legend(False)
            .calcs([])
        )
        .tooltip(
            common.VizTooltipOptions().mode(common_m.TooltipDisplayMode.SINGLE).sort(common_m.SortOrder.NONE)
        )
        .fill_opacity(80)
        .mappings(
            [
                dashboard_m.SpecialValueMap(
                    options=dashboard_m.DashboardSpecialValueMapOptions(
                        match=dashboard_m.SpecialValueMatch.EMPTY,
                        result=dashboard_m.ValueMappingResult(text="?"),
                    )
                )
            ]
        )
    )


def heatmap_panel(
    title: str, unit: Unit, *targets: InfluxQL, value_name: str, description: str = ""
) -> heatmap.Panel:
    """Rows given by the queries (one query per row, its alias the row's name), time across.

    Empty cells (zero) stay blank, so the hours an object talks stand out.
    """
    panel = (
        heatmap.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit.value)
        .calculate(False)
        .rows_frame(heatmap.RowsHeatmapOptions().layout(common_m.HeatmapCellLayout.UNKNOWN).value(value_name))
        .color(
            heatmap.HeatmapColorOptions()
            .mode(heatmap_m.HeatmapColorMode.SCHEME)
            .scheme("Oranges")
            .scale(heatmap_m.HeatmapColorScale.EXPONENTIAL)
            .exponent(0.5)
            .steps(64)
            .reverse(False)
            .fill("dark-orange")
        )
        .y_axis(heatmap.YAxisConfig().axis_placement(common_m.AxisPlacement.LEFT).reverse(False))
        .cell_values(heatmap.CellValues().unit(unit.value))
        .cell_gap(1)
        .show_value(common_m.VisibilityMode.NEVER)
        .mode(common_m.TooltipDisplayMode.SINGLE)
        .hide_y_histogram()
        .show_color_scale(False)
        .show_legend()
        .exemplars_color("rgba(255,0,255,0.7)")
        .filter_values(heatmap.FilterValueRange().le(0))
    )
    for target in targets:
        panel.with_target(target)
    return panel


def query_variable(name: str, label: str, text: str, *, hidden: bool = False) -> dashboard.QueryVariable:
    """A variable whose values an InfluxQL ``SHOW TAG VALUES`` lists, refreshed with the time range."""
    variable = (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(" ".join(text.split()))
        .refresh(dashboard_m.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard_m.VariableSort.ALPHABETICAL_ASC)
        .multi(False)
        .include_all(False)
    )
    if hidden:
        variable.hide(dashboard_m.VariableHide.HIDE_VARIABLE)
    return variable


def text_variable(name: str, label: str, default: str, description: str) -> dashboard.TextBoxVariable:
    """A box the lab fills in once (its country, its time zone); `mouchard dashboards push` sets it."""
    return (
        dashboard.TextBoxVariable(name)
        .label(label)
        .description(description)
        .default_value(default)
        .current(dashboard_m.VariableOption(text=default, value=default, selected=True))
    )
