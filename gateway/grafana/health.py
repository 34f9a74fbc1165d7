"""Gateway health: what the gateway itself counts (the `mouchard` measurement), one series per gateway.

The counters (packets, kernel_drops, points_*) grow from the start of the process; rates come from
``non_negative_derivative``, which also absorbs the drop to zero of a restart. `spool_depth` is a
level: points waiting on disk for InfluxDB.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, stat, timeseries

from gateway.grafana.board import new_dashboard
from gateway.grafana.influxql import InfluxQL
from gateway.grafana.language import Tr
from gateway.grafana.panels import Unit, query, stat_panel, timeseries_panel
from gateway.grafana.queries import select

UID = "mouchard-health"
PER_GATEWAY = 'time($__interval), "gateway" fill(none)'


def build(tr: Tr) -> dashboard.Dashboard:
    board = new_dashboard(
        UID,
        tr("Gateway health", "Santé de la passerelle"),
        tr(
            "Is the gateway keeping up? Packets captured, packets lost, writes to InfluxDB, points waiting.",
            "La passerelle suit-elle\u00a0? Paquets capturés, paquets perdus, écritures dans InfluxDB, "
            "points en attente.",
        ),
        tr,
    )
    for panel in _summary(tr):
        board.with_panel(panel.span(6).height(4))
    board.with_panel(_packets(tr).span(12).height(8))
    board.with_panel(_kernel_drops(tr).span(12).height(8))
    board.with_panel(_writes(tr).span(12).height(8))
    board.with_panel(_spool(tr).span(12).height(8))
    return board


def _last(field: str) -> InfluxQL:
    return query(select(f'last("{field}")', '"mouchard"', group_by='"gateway"')).alias("$tag_gateway")


def _per_second(field: str, ref_id: str = "A") -> InfluxQL:
    what = f'non_negative_derivative(max("{field}"), 1s)'
    return query(select(what, '"mouchard"', group_by=PER_GATEWAY), ref_id)


def _summary(tr: Tr) -> list[stat.Panel]:
    return [
        stat_panel(
            tr("Points written", "Points écrits"),
            Unit.COUNT,
            _last("points_written"),
            tr(
                "Points written to InfluxDB since the gateway started.",
                "Points écrits dans InfluxDB depuis le démarrage.",
            ),
        ),
        stat_panel(
            tr("Points waiting on disk", "Points en attente sur disque"),
            Unit.COUNT,
            _last("spool_depth"),
            tr(
                "Points kept in the spool until InfluxDB takes them; 0 when all is well.",
                "Points gardés dans le spool jusqu’à ce qu’InfluxDB les accepte\u00a0; 0 si tout va bien.",
            ),
        ),
        stat_panel(
            tr("Points dropped", "Points rejetés"),
            Unit.COUNT,
            _last("points_dropped"),
            tr(
                "Points InfluxDB refused as malformed, since the gateway started.",
                "Points refusés par InfluxDB comme mal formés, depuis le démarrage.",
            ),
        ),
        stat_panel(
            tr("Packets lost by the kernel", "Paquets perdus par le noyau"),
            Unit.COUNT,
            _last("kernel_drops"),
            tr(
                "Packets the capture could not keep up with, since the gateway started.",
                "Paquets que la capture n’a pas pu suivre, depuis le démarrage.",
            ),
        ),
    ]


def _packets(tr: Tr) -> timeseries.Panel:
    return timeseries_panel(
        tr("Packets captured", "Paquets capturés"),
        Unit.PACKET_RATE,
        _per_second("packets").alias("$tag_gateway"),
    )


def _kernel_drops(tr: Tr) -> timeseries.Panel:
    return timeseries_panel(
        tr("Packets lost by the kernel", "Paquets perdus par le noyau"),
        Unit.PACKET_RATE,
        _per_second("kernel_drops").alias("$tag_gateway"),
        description=tr(
            "Should stay at zero; otherwise the gateway's machine is too slow for the traffic.",
            "Doit rester à zéro\u00a0; sinon la machine de la passerelle est trop lente pour le trafic.",
        ),
    )


def _writes(tr: Tr) -> timeseries.Panel:
    return timeseries_panel(
        tr("Writes to InfluxDB", "Écritures dans InfluxDB"),
        Unit.PER_SECOND,
        _per_second("points_written").alias(tr("written $tag_gateway", "écrits $tag_gateway")),
        _per_second("points_retried", "B").alias(tr("retried $tag_gateway", "réessayés $tag_gateway")),
        _per_second("points_spooled", "C").alias(tr("spooled $tag_gateway", "mis en attente $tag_gateway")),
        _per_second("points_dropped", "D").alias(tr("dropped $tag_gateway", "rejetés $tag_gateway")),
        description=tr(
            "Points per second: written, retried after an error, kept on disk, refused.",
            "Points par seconde\u00a0: écrits, réessayés après une erreur, gardés sur disque, refusés.",
        ),
    )


def _spool(tr: Tr) -> timeseries.Panel:
    return timeseries_panel(
        tr("Points waiting on disk", "Points en attente sur disque"),
        Unit.COUNT,
        query(select('max("spool_depth")', '"mouchard"', group_by=PER_GATEWAY)).alias("$tag_gateway"),
        description=tr(
            "Grows while InfluxDB is unreachable, falls back to zero once it answers again.",
            "Monte tant qu’InfluxDB est injoignable, redescend à zéro quand il répond de nouveau.",
        ),
    )
