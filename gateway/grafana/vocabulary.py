"""How the dashboards show the values of a few tags (party, kind, event type) in each language.

The tags keep their stable English values in InfluxDB; Grafana's value mappings show words a
workshop audience reads ("tiers" rather than "third").
"""

from __future__ import annotations

from gateway.grafana.language import Tr


def parties(tr: Tr) -> dict[str, str]:
    """The `party` tag: who the destination is to the device's maker."""
    return {
        "first": tr("maker", "fabricant"),
        "support": tr("service provider", "prestataire"),
        "third": tr("third party", "tiers"),
        "local": tr("local network", "réseau local"),
    }


def kinds(tr: Tr) -> dict[str, str]:
    """The `kind` tag: what the device is."""
    return {
        "voice_assistant": tr("voice assistant", "assistant vocal"),
        "speaker": tr("speaker", "enceinte"),
        "tv": tr("TV", "téléviseur"),
        "streaming_player": tr("streaming player", "box de streaming"),
        "camera": tr("camera", "caméra"),
        "doorbell": tr("doorbell", "sonnette"),
        "plug": tr("smart plug", "prise connectée"),
        "light": tr("light", "ampoule"),
        "hub": tr("hub", "passerelle domotique"),
        "sensor": tr("sensor", "capteur"),
        "thermostat": tr("thermostat", "thermostat"),
        "appliance": tr("appliance", "électroménager"),
        "printer": tr("printer", "imprimante"),
        "phone": tr("phone", "téléphone"),
        "computer": tr("computer", "ordinateur"),
        "network": tr("network equipment", "équipement réseau"),
        "unknown": tr("unknown", "inconnu"),
    }


def event_types(tr: Tr) -> dict[str, str]:
    """The `type` tag of the `event` measurement."""
    return {
        "new_device": tr("new device", "nouvel objet"),
        "new_destination": tr("new destination", "nouvelle destination"),
        "new_country": tr("new country", "nouveau pays"),
        "activation": tr("activation", "activation"),
        "quiet_hours": tr("quiet hours", "heures calmes"),
        "heartbeat": tr("heartbeat", "battement régulier"),
    }


def name_sources(tr: Tr) -> dict[str, str]:
    """The `name_source` tag: how the destination's name was found."""
    return {
        "dns": tr("DNS answer", "réponse DNS"),
        "sni": tr("TLS server name", "nom TLS (SNI)"),
        "quic": tr("QUIC server name", "nom QUIC"),
        "http": tr("HTTP Host", "en-tête HTTP Host"),
        "ptr": tr("reverse DNS", "DNS inverse"),
        "ech": tr("hidden (ECH)", "masqué (ECH)"),
        "none": tr("address only", "adresse seule"),
    }
