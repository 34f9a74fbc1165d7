"""Grafana stage: the dashboards as code, the files Grafana provisions, and the push to Grafana's API.

The dashboards are built with grafana-foundation-sdk (pinned to one Grafana version, see
docs/dashboards.md) and query InfluxDB in InfluxQL through `gateway.grafana.influxql`, the project's
own query type. `BOARDS` lists them explicitly, by the stem of their file in ``dashboards/<lang>/``.
"""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.builders.dashboard import Dashboard

from gateway.grafana import device, health, influxql, overview, phone_home
from gateway.grafana.language import Tr

BOARDS: dict[str, Callable[[Tr], Dashboard]] = {
    "overview": overview.build,
    "device": device.build,
    "phone-home": phone_home.build,
    "health": health.build,
}

influxql.register()
