"""Lab overview, "Where does your data go?": every device, every company, every country, at a glance."""

from __future__ import annotations

from grafana_foundation_sdk.builders import barchart, dashboard, stat, table, timeseries

from gateway.grafana.board import new_dashboard
from gateway.grafana.language import Tr
from gateway.grafana.panels import (
    TOP_ROWS,
    Column,
    Unit,
    bar_panel,
    query,
    stat_panel,
    table_panel,
    text_variable,
    timeseries_panel,
)
from gateway.grafana.queries import (
    BYTES,
    INTERNET,
    SENT_RECEIVED,
    THIRD_PARTY,
    bytes_share,
    distinct_count,
    rate,
    select,
)
from gateway.grafana.vocabulary import kinds, parties

UID = "mouchard-overview"
DEVICE_LINK = "/d/mouchard-device/?var-device=${__data.fields.device}&${__url_time_range}"
ABROAD = "\"country\" != '$country' AND \"country\" != ''"


def build(tr: Tr) -> dashboard.Dashboard:
    board = new_dashboard(
        UID,
        tr("Where does your data go?", "Où vont vos données\u00a0?"),
        tr(
            "Every connected object of the lab: whom it talks to, which companies, which countries.",
            "Chaque objet connecté du labo\u00a0: à qui il parle, quelles entreprises, quels pays.",
        ),
        tr,
    ).with_variable(
        text_variable(
            "country",
            tr("Lab’s country", "Pays du labo"),
            "FR",
            tr(
                "ISO code of the lab's country (FR, BE, CH...): traffic to servers elsewhere leaves it.",
                "Code ISO du pays du labo (FR, BE, CH…)\u00a0: le trafic vers des serveurs ailleurs "
                "le quitte.",
            ),
        )
    )
    for panel in _summary(tr):
        board.with_panel(panel.span(6).height(4))
    board.with_panel(_devices(tr).span(24).height(9))
    board.with_panel(_by_company(tr).span(12).height(10))
    board.with_panel(_by_country(tr).span(12).height(10))
    board.with_panel(_top_destinations(tr).span(12).height(10))
    board.with_panel(_upload_over_time(tr).span(12).height(10))
    return board


def _summary(tr: Tr) -> list[stat.Panel]:
    sent = stat_panel(
        tr("Sent to the Internet", "Envoyé sur Internet"),
        Unit.BYTES,
        query(select('sum("bytes_out")', '"traffic"', INTERNET)),
        tr("Bytes the lab's objects sent out of the lab.", "Octets envoyés hors du labo par ses objets."),
    )
    companies = stat_panel(
        tr("Companies reached", "Entreprises contactées"),
        Unit.COUNT,
        query(distinct_count("org", INTERNET, "\"org\" != ''", alias="companies")),
        tr(
            "Distinct companies behind the servers the objects talked to.",
            "Entreprises distinctes derrière les serveurs contactés par les objets.",
        ),
    )
    third = stat_panel(
        tr("Share with third parties", "Part échangée avec des tiers"),
        Unit.PERCENT,
        query(bytes_share(THIRD_PARTY, INTERNET)),
        tr(
            "Of the bytes exchanged with the Internet, the share with companies that are neither the "
            "object's maker nor a service working for it (ads, analytics, trackers, unknown).",
            "Sur les octets échangés avec Internet, la part échangée avec des entreprises qui ne sont ni "
            "le fabricant de l’objet ni un prestataire à son service (publicité, statistiques, pisteurs, "
            "inconnus).",
        ),
        decimals=1,
    )
    abroad = stat_panel(
        tr("Share leaving ${country}", "Part qui sort de ${country}"),
        Unit.PERCENT,
        query(bytes_share(ABROAD, INTERNET)),
        tr(
            "Of the bytes exchanged with the Internet, the share with servers registered in another "
            "country than the lab's (set it above).",
            "Sur les octets échangés avec Internet, la part échangée avec des serveurs enregistrés dans un "
            "autre pays que celui du labo (à régler en haut).",
        ),
        decimals=1,
    )
    return [sent, companies, third, abroad]


def _devices(tr: Tr) -> table.Panel:
    totals = query(
        select(SENT_RECEIVED, '"traffic"', INTERNET, group_by='"device", "device_name", "kind", "vendor"')
    )
    return table_panel(
        tr("Objects", "Objets connectés"),
        Unit.BYTES,
        totals,
        query(distinct_count("host", INTERNET, per="device", alias="destinations"), "B"),
        query(distinct_count("org", INTERNET, "\"org\" != ''", per="device", alias="companies"), "C"),
        query(bytes_share(THIRD_PARTY, INTERNET, per="device", alias="third", rounded=True), "D"),
        columns={
            "device_name": Column(tr("Name", "Nom")),
            "kind": Column(tr("Kind", "Type")),
            "vendor": Column(tr("Maker", "Fabricant")),
            "sent": Column(tr("Sent", "Envoyé")),
            "received": Column(tr("Received", "Reçu")),
            "destinations": Column(tr("Destinations", "Destinations"), as_text=True),
            "companies": Column(tr("Companies", "Entreprises"), as_text=True),
            "third": Column(tr("With third parties (%)", "Avec des tiers (%)"), as_text=True),
            "device": Column(tr("Address (MAC)", "Adresse (MAC)")),
        },
        join_on="device",
        sort_by="sent",
        words=kinds(tr),
        row_link=(tr("Detail of this object", "Détail de cet objet"), DEVICE_LINK),
        description=tr(
            "Traffic with the Internet of each object. Click a row for the object's detail.",
            "Trafic avec Internet de chaque objet. Cliquez sur une ligne pour le détail de l’objet.",
        ),
    )


def _by_company(tr: Tr) -> barchart.Panel:
    return bar_panel(
        tr("Bytes by company", "Octets par entreprise"),
        Unit.BYTES,
        query(select(f'{BYTES} AS "bytes"', '"traffic"', INTERNET, group_by='"org"')),
        label_field="org",
        value_field="bytes",
        description=tr(
            f"Bytes exchanged (sent and received) with each company, the {TOP_ROWS} largest. "
            "“?” stands for servers of no known company.",
            f"Octets échangés (envoyés et reçus) avec chaque entreprise, les {TOP_ROWS} plus gros. "
            "«\u00a0?\u00a0» désigne les serveurs dont on ne connaît pas l’entreprise.",
        ),
    )


def _by_country(tr: Tr) -> barchart.Panel:
    return bar_panel(
        tr("Bytes by server country", "Octets par pays du serveur"),
        Unit.BYTES,
        query(select(f'{BYTES} AS "bytes"', '"traffic"', INTERNET, group_by='"country"')),
        label_field="country",
        value_field="bytes",
        description=tr(
            "Bytes exchanged with servers, by the country where the server's address is registered "
            "(ISO code; a registry's country, not a precise location).",
            "Octets échangés avec des serveurs, par pays où l’adresse du serveur est enregistrée "
            "(code ISO\u00a0; le pays d’un registre, pas une localisation précise).",
        ),
    )


def _top_destinations(tr: Tr) -> table.Panel:
    return table_panel(
        tr("Top destinations", "Principales destinations"),
        Unit.BYTES,
        query(select(SENT_RECEIVED, '"traffic"', INTERNET, group_by='"host", "org", "country", "party"')),
        columns={
            "host": Column(tr("Server", "Serveur")),
            "org": Column(tr("Company", "Entreprise")),
            "country": Column(tr("Country", "Pays")),
            "party": Column(tr("Party", "Relation")),
            "sent": Column(tr("Sent", "Envoyé")),
            "received": Column(tr("Received", "Reçu")),
        },
        words=parties(tr),
        sort_by="sent",
        limit=TOP_ROWS,
        description=tr(
            f"The {TOP_ROWS} servers the lab sent the most to.",
            f"Les {TOP_ROWS} serveurs auxquels le labo a le plus envoyé.",
        ),
    )


def _upload_over_time(tr: Tr) -> timeseries.Panel:
    return timeseries_panel(
        tr("Upload to the Internet, by object", "Envois vers Internet, par objet"),
        Unit.BYTE_RATE,
        query(rate("bytes_out", INTERNET, by="device_name")).alias("$tag_device_name"),
        description=tr(
            "What each object sends out of the lab, in bytes per second.",
            "Ce que chaque objet envoie hors du labo, en octets par seconde.",
        ),
        stacked=True,
    )
