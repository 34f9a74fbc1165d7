"""Device detail: one object (the `device` variable), whom it talks to, and when it phones home."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, heatmap, stat, table, timeseries

from gateway.grafana.board import new_dashboard
from gateway.grafana.influxql import InfluxAnnotation
from gateway.grafana.language import Lang, Tr
from gateway.grafana.panels import (
    DATASOURCE,
    Column,
    Unit,
    heatmap_panel,
    query,
    query_variable,
    stat_panel,
    table_panel,
    text_variable,
    timeseries_panel,
)
from gateway.grafana.queries import (
    DEVICE,
    INTERNET,
    SENT_RECEIVED,
    THIRD_PARTY,
    bytes_share,
    distinct_count,
    events,
    hour_of_day,
    rate,
    select,
)
from gateway.grafana.vocabulary import event_types, name_sources, parties

UID = "mouchard-device"


def build(tr: Tr) -> dashboard.Dashboard:
    board = (
        new_dashboard(
            UID,
            tr("Device detail", "Détail d’un objet"),
            tr(
                "One connected object: whom it talks to, how much, and at what time of day.",
                "Un objet connecté\u00a0: à qui il parle, combien, et à quelle heure.",
            ),
            tr,
        )
        .with_variable(
            query_variable(
                "device", tr("Object", "Objet"), 'SHOW TAG VALUES FROM "traffic" WITH KEY = "device"'
            )
        )
        .with_variable(
            query_variable(
                "device_name",
                tr("Name", "Nom"),
                f'SHOW TAG VALUES FROM "traffic" WITH KEY = "device_name" WHERE {DEVICE}',
                hidden=True,
            )
        )
        .with_variable(
            text_variable(
                "timezone",
                tr("Time zone", "Fuseau horaire"),
                "Europe/Paris",
                tr(
                    "The lab's time zone (IANA name), for the hours of the day.",
                    "Le fuseau horaire du labo (nom IANA), pour les heures de la journée.",
                ),
            )
        )
        .annotation(
            InfluxAnnotation(
                DATASOURCE,
                tr("Events of this object", "Événements de cet objet"),
                select('"text", "type"::tag', '"event"', DEVICE),
                color="orange",
                tags_column="type",
            )
        )
    )
    for panel, width in zip(_summary(tr), (5, 5, 4, 5, 5), strict=True):
        board.with_panel(panel.span(width).height(4))
    board.with_panel(_traffic(tr).span(24).height(8))
    board.with_panel(_destinations(tr).span(24).height(10))
    board.with_panel(_hours(tr).span(14).height(11))
    board.with_panel(_dns(tr).span(10).height(11))
    board.with_panel(_events(tr).span(24).height(8))
    return board


def _summary(tr: Tr) -> list[stat.Panel]:
    return [
        stat_panel(
            tr("Sent to the Internet", "Envoyé sur Internet"),
            Unit.BYTES,
            query(select('sum("bytes_out")', '"traffic"', DEVICE, INTERNET)),
        ),
        stat_panel(
            tr("Received from the Internet", "Reçu d’Internet"),
            Unit.BYTES,
            query(select('sum("bytes_in")', '"traffic"', DEVICE, INTERNET)),
        ),
        stat_panel(
            tr("Destinations", "Destinations"),
            Unit.COUNT,
            query(distinct_count("host", DEVICE, INTERNET, alias="destinations")),
            tr("Distinct servers (by name).", "Serveurs distincts (par nom)."),
        ),
        stat_panel(
            tr("Companies", "Entreprises"),
            Unit.COUNT,
            query(distinct_count("org", DEVICE, INTERNET, "\"org\" != ''", alias="companies")),
        ),
        stat_panel(
            tr("Share with third parties", "Part échangée avec des tiers"),
            Unit.PERCENT,
            query(bytes_share(THIRD_PARTY, f"{DEVICE} AND {INTERNET}")),
            tr(
                "Of the bytes exchanged with the Internet, the share with neither the maker nor its "
                "services.",
                "Sur les octets échangés avec Internet, la part ni avec le fabricant ni avec ses "
                "prestataires.",
            ),
            decimals=1,
        ),
    ]


def _traffic(tr: Tr) -> timeseries.Panel:
    return timeseries_panel(
        tr("Upload and download of ${device_name}", "Envois et réceptions de ${device_name}"),
        Unit.BYTE_RATE,
        query(rate("bytes_out", DEVICE, INTERNET)).alias(tr("upload", "envoi")),
        query(rate("bytes_in", DEVICE, INTERNET), "B").alias(tr("download", "réception")),
        description=tr(
            "Bytes per second exchanged with the Internet.", "Octets par seconde échangés avec Internet."
        ),
    )


def _destinations(tr: Tr) -> table.Panel:
    return table_panel(
        tr("Destinations of ${device_name}", "Destinations de ${device_name}"),
        Unit.BYTES,
        query(
            select(
                SENT_RECEIVED,
                '"traffic"',
                DEVICE,
                group_by='"host", "org", "country", "party", "name_source"',
            )
        ),
        columns={
            "host": Column(tr("Server", "Serveur")),
            "org": Column(tr("Company", "Entreprise")),
            "country": Column(tr("Country", "Pays")),
            "party": Column(tr("Party", "Relation")),
            "name_source": Column(tr("Name found in", "Nom trouvé dans")),
            "sent": Column(tr("Sent", "Envoyé")),
            "received": Column(tr("Received", "Reçu")),
        },
        sort_by="sent",
        words={**parties(tr), **name_sources(tr)},
        description=tr(
            "Every server the object talked to, and how its name was found (DNS answer, TLS or QUIC "
            "server name, HTTP Host, or the address alone).",
            "Chaque serveur auquel l’objet a parlé, et comment son nom a été trouvé (réponse DNS, nom "
            "de serveur TLS ou QUIC, en-tête HTTP Host, ou l’adresse seule).",
        ),
    )


def hour_label(hour: int, lang: Lang) -> str:
    """A heatmap row's name: not a number, so Grafana keeps the rows in query order."""
    return f"{hour:02d}\u00a0h" if lang is Lang.FR else f"{hour:02d}:00"


def _hours(tr: Tr) -> heatmap.Panel:
    targets = [
        query(hour_of_day(hour, "bytes_out", DEVICE, INTERNET), _ref_id(hour)).alias(
            hour_label(hour, tr.lang)
        )
        for hour in range(24)
    ]
    return heatmap_panel(
        tr(
            "When does it phone home? Upload by hour of day",
            "Quand parle-t-il à ses serveurs\u00a0? Envois par heure",
        ),
        Unit.BYTES,
        *targets,
        value_name=tr("upload", "envoi"),
        description=tr(
            "Bytes sent to the Internet in each hour of each day (lab's time zone). An object that "
            "uploads at night, when nobody is home, shows here.",
            "Octets envoyés sur Internet à chaque heure de chaque jour (fuseau du labo). Un objet qui "
            "envoie la nuit, quand personne n’est là, se voit ici.",
        ),
    )


def _ref_id(hour: int) -> str:
    return chr(ord("A") + hour)


def _dns(tr: Tr) -> table.Panel:
    return table_panel(
        tr("DNS queries", "Requêtes DNS"),
        Unit.COUNT,
        query(select('sum("queries") AS "queries"', '"dns"', DEVICE, group_by='"host", "org"')),
        columns={
            "host": Column(tr("Name asked", "Nom demandé")),
            "org": Column(tr("Company", "Entreprise")),
            "queries": Column(tr("Queries", "Requêtes")),
        },
        sort_by="queries",
        description=tr(
            "The names the object asked its DNS resolver for.",
            "Les noms que l’objet a demandés à son résolveur DNS.",
        ),
    )


def _events(tr: Tr) -> table.Panel:
    return table_panel(
        tr("Events", "Événements"),
        Unit.BYTES,
        query(events("", '"type"::tag', '"host"', '"bytes"', '"text"', device=DEVICE)),
        columns={
            "Time": Column(tr("Time", "Heure")),
            "type": Column(tr("Event", "Événement")),
            "host": Column(tr("Server", "Serveur")),
            "bytes": Column(tr("Bytes", "Octets")),
            "text": Column(tr("What happened", "Ce qui s’est passé")),
        },
        words=event_types(tr),
        description=tr(
            "What the gateway noticed about this object, newest first.",
            "Ce que la passerelle a remarqué sur cet objet, du plus récent au plus ancien.",
        ),
    )
