"""Home Assistant MQTT discovery: each voice assistant gets an "Activation" binary sensor and an
"Upload, last hour" sensor, both read from the device's retained state topic.

Topics follow Home Assistant's ``<prefix>/<component>/<node_id>/<object_id>/config`` scheme; the
entities are unavailable while the gateway's status topic says ``offline``.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Any

from gateway.aggregators.detectors.state import DeviceState
from gateway.sinks.mqtt_outbox import Outgoing

VOICE_ASSISTANT = "voice_assistant"
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")


class Discovery(StrEnum):
    """Whether (and for whom) the sink announces entities."""

    NONE = "none"
    HOME_ASSISTANT = "homeassistant"


def node_id(gateway_id: str, device: str) -> str:
    """A discovery node id: ``mouchard_lab_68dbf5901964`` (only [a-zA-Z0-9_-] are allowed)."""
    return re.sub(r"[^a-zA-Z0-9_-]", "", f"mouchard_{gateway_id}_{device.replace(':', '').replace('.', '_')}")


def discovery_topics(gateway_id: str, device: str, prefix: str = "homeassistant") -> list[str]:
    """The config topics of a device's entities: binary sensor "Activation", sensor "Upload, last hour"."""
    node = node_id(gateway_id, device)
    return [
        f"{prefix}/binary_sensor/{node}/activation/config",
        f"{prefix}/sensor/{node}/upload_last_hour/config",
    ]


def discovery_messages(
    state: DeviceState, gateway_id: str, state_topic: str, status_topic: str, prefix: str = "homeassistant"
) -> list[Outgoing]:
    """The retained config messages of a device's entities (none for devices that are not speakers)."""
    if state.kind != VOICE_ASSISTANT:
        return []
    node = node_id(gateway_id, state.device)
    device: dict[str, Any] = {
        "identifiers": [node],
        "name": state.name or state.device,
        "manufacturer": state.vendor,
        "model": state.model,
    }
    if _MAC.fullmatch(state.device):
        device["connections"] = [["mac", state.device]]
    common = {
        "state_topic": state_topic,
        "availability_topic": status_topic,
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": device,
        "origin": {"name": "Mouchard"},
    }
    activation = {
        **common,
        "name": "Activation",
        "unique_id": f"{node}_activation",
        "device_class": "sound",
        "value_template": "{{ 'ON' if value_json.activation else 'OFF' }}",
        "payload_on": "ON",
        "payload_off": "OFF",
    }
    upload = {
        **common,
        "name": "Upload, last hour",
        "unique_id": f"{node}_upload_last_hour",
        "device_class": "data_size",
        "state_class": "measurement",
        "unit_of_measurement": "B",
        "value_template": "{{ value_json.upload_last_hour }}",
    }
    activation_topic, upload_topic = discovery_topics(gateway_id, state.device, prefix)
    return [
        Outgoing(activation_topic, _json(activation), retain=True),
        Outgoing(upload_topic, _json(upload), retain=True),
    ]


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
