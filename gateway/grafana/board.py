"""What every Mouchard dashboard shares: its frame (time range, links, tags) and its JSON form."""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dashboard_m

from gateway.grafana.language import Tr
from gateway.grafana.panels import TAG


def _built_in() -> dashboard.AnnotationQuery:
    """Grafana's own annotation (manual notes, alerts) that every dashboard has; stating it keeps the
    saved JSON identical to what Grafana would store, so a second push finds nothing to change."""
    return (
        dashboard.AnnotationQuery()
        .name("Annotations & Alerts")
        .datasource(dashboard_m.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .type("dashboard")
        .built_in(1)
        .target(dashboard.AnnotationTarget().limit(100).match_any(False).tags([]).type("dashboard"))
    )


def new_dashboard(uid: str, title: str, description: str, tr: Tr) -> dashboard.Dashboard:
    """A dashboard with Mouchard's frame: last 24 hours, 1-minute refresh, links to its siblings."""
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .editable()
        .timezone("browser")
        .time("now-24h", "now")
        .refresh("1m")
        .tooltip(dashboard_m.DashboardCursorSync.CROSSHAIR)
        .annotation(_built_in())
        .link(
            dashboard.DashboardLink(tr("Mouchard dashboards", "Tableaux de bord Mouchard"))
            .type(dashboard_m.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .icon("external link")
            .tooltip("")
            .include_vars(False)
            .keep_time(True)
            .target_blank(False)
        )
    )


def to_json(board: dashboard.Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model, panels numbered 1, 2, 3... in reading order."""
    model = board.build()
    for number, panel in enumerate(model.panels or [], start=1):
        panel.id_val = number
    data: dict[str, Any] = json.loads(json.dumps(model, cls=JSONEncoder))
    return data
