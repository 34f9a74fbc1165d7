"""Voice assistants and phone home: activations, quiet hours, heartbeats, new destinations and countries.

The detectors write these as `event` points (DESIGN.md); here they are annotations on the speakers'
upload, and tables a workshop can read line by line.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, stat, table, timeseries

from gateway.grafana.board import new_dashboard
from gateway.grafana.influxql import InfluxAnnotation
from gateway.grafana.language import Tr
from gateway.grafana.panels import DATASOURCE, Column, Unit, query, stat_panel, table_panel, timeseries_panel
from gateway.grafana.queries import INTERNET, events, rate, select
from gateway.grafana.vocabulary import event_types

UID = "mouchard-phone-home"
SPEAKERS = "\"kind\" = 'voice_assistant'"
ACTIVATION = "\"type\" = 'activation'"
QUIET = "\"type\" = 'quiet_hours'"
NEW_PLACES = "/^new_(destination|country)$/"


def build(tr: Tr) -> dashboard.Dashboard:
    board = new_dashboard(
        UID,
        tr("Voice assistants and phone home", "Assistants vocaux et appels au fabricant"),
        tr(
            "When objects talk without being asked: voice activations, traffic while nobody is home, "
            "regular heartbeats, new servers and new countries.",
            "Quand les objets parlent sans qu’on le leur demande\u00a0: activations vocales, trafic quand "
            "personne n’est là, battements réguliers, nouveaux serveurs et nouveaux pays.",
        ),
        tr,
    )
    for annotation in _annotations(tr):
        board.annotation(annotation)
    board.with_panel(_speakers_upload(tr).span(24).height(8))
    board.with_panel(_activations_over_time(tr).span(10).height(8))
    board.with_panel(_activations(tr).span(14).height(8))
    board.with_panel(_quiet_total(tr).span(6).height(8))
    board.with_panel(_quiet_hours(tr).span(18).height(8))
    board.with_panel(_heartbeats(tr).span(12).height(9))
    board.with_panel(_new_places(tr).span(12).height(9))
    return board


def _annotations(tr: Tr) -> list[InfluxAnnotation]:
    def of_type(name: str, event_type: str, color: str, *, enabled: bool = True) -> InfluxAnnotation:
        condition = f"\"type\" = '{event_type}'"
        text = select('"text", "type"::tag, "device"::tag', '"event"', condition)
        return InfluxAnnotation(DATASOURCE, name, text, color=color, enabled=enabled)

    return [
        of_type(tr("Activations", "Activations"), "activation", "red"),
        of_type(tr("Quiet hours", "Heures calmes"), "quiet_hours", "purple"),
        of_type(tr("New destinations", "Nouvelles destinations"), "new_destination", "blue"),
        of_type(tr("New countries", "Nouveaux pays"), "new_country", "orange"),
        # Heartbeats recur all day long: off by default, one click shows them.
        of_type(tr("Heartbeats", "Battements"), "heartbeat", "gray", enabled=False),
    ]


def _speakers_upload(tr: Tr) -> timeseries.Panel:
    return timeseries_panel(
        tr("Upload of the voice assistants", "Envois des assistants vocaux"),
        Unit.BYTE_RATE,
        query(rate("bytes_out", SPEAKERS, INTERNET, by="device_name")).alias("$tag_device_name"),
        description=tr(
            "Bytes per second each voice assistant sends to the Internet; the marks are the events "
            "(switch them at the top).",
            "Octets par seconde envoyés sur Internet par chaque assistant vocal\u00a0; les repères sont "
            "les événements (à activer en haut).",
        ),
    )


def _activations_over_time(tr: Tr) -> timeseries.Panel:
    return timeseries_panel(
        tr("Activations per speaker", "Activations par enceinte"),
        Unit.COUNT,
        query(
            select('count("bytes")', '"event"', ACTIVATION, group_by='time($__interval), "device" fill(none)')
        ).alias("$tag_device"),
        description=tr(
            "Upload bursts of a voice assistant: what it heard was sent away.",
            "Rafales d’envoi d’un assistant vocal\u00a0: ce qu’il a entendu est parti.",
        ),
        bars=True,
        stacked=True,
    )


def _activations(tr: Tr) -> table.Panel:
    return table_panel(
        tr("Activations", "Activations"),
        Unit.BYTES,
        query(events("activation", '"device"::tag', '"host"', '"bytes"', '"duration_s"', '"text"')),
        columns={
            "Time": Column(tr("Time", "Heure")),
            "device": Column(tr("Object", "Objet")),
            "host": Column(tr("Server", "Serveur")),
            "bytes": Column(tr("Sent", "Envoyé")),
            "duration_s": Column(tr("Duration (s)", "Durée (s)"), as_text=True),
            "text": Column(tr("What happened", "Ce qui s’est passé")),
        },
    )


def _quiet_total(tr: Tr) -> stat.Panel:
    return stat_panel(
        tr("Sent while nobody is home", "Envoyé quand personne n’est là"),
        Unit.BYTES,
        query(select('sum("bytes")', '"event"', QUIET)),
        tr(
            "Bytes sent during the lab's quiet hours (detectors.quiet_hours).",
            "Octets envoyés pendant les heures calmes du labo (detectors.quiet_hours).",
        ),
    )


def _quiet_hours(tr: Tr) -> table.Panel:
    return table_panel(
        tr("Traffic in quiet hours", "Trafic pendant les heures calmes"),
        Unit.BYTES,
        query(events("quiet_hours", '"device"::tag', '"host"', '"bytes"', '"duration_s"', '"text"')),
        columns={
            "Time": Column(tr("Time", "Heure")),
            "device": Column(tr("Object", "Objet")),
            "host": Column(tr("Server", "Serveur")),
            "bytes": Column(tr("Sent", "Envoyé")),
            "duration_s": Column(tr("Duration (s)", "Durée (s)"), as_text=True),
            "text": Column(tr("What happened", "Ce qui s’est passé")),
        },
    )


def _heartbeats(tr: Tr) -> table.Panel:
    return table_panel(
        tr("Heartbeats", "Battements réguliers"),
        Unit.SECONDS,
        query(events("heartbeat", '"device"::tag', '"host"', '"period_s"', '"text"')),
        columns={
            "Time": Column(tr("Time", "Heure")),
            "device": Column(tr("Object", "Objet")),
            "host": Column(tr("Server", "Serveur")),
            "period_s": Column(tr("Every", "Toutes les")),
            "text": Column(tr("What happened", "Ce qui s’est passé")),
        },
        description=tr(
            "Objects that contact a server at a steady rhythm, whether anyone uses them or not.",
            "Objets qui contactent un serveur à un rythme régulier, qu’on s’en serve ou non.",
        ),
    )


def _new_places(tr: Tr) -> table.Panel:
    return table_panel(
        tr("New destinations and countries", "Nouvelles destinations et nouveaux pays"),
        Unit.BYTES,
        query(events(NEW_PLACES, '"type"::tag', '"device"::tag', '"host"', '"text"')),
        columns={
            "Time": Column(tr("Time", "Heure")),
            "type": Column(tr("Event", "Événement")),
            "device": Column(tr("Object", "Objet")),
            "host": Column(tr("Server", "Serveur")),
            "text": Column(tr("What happened", "Ce qui s’est passé")),
        },
        words=event_types(tr),
    )
