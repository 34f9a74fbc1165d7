"""What the subcommand modules share."""

from __future__ import annotations

import argparse
from typing import TypeAlias

from rich.console import Console

from gateway.app import REPLAY_HOLD_S, Gateway, LineSink
from gateway.config import Config
from gateway.enrichers.identity import profile_matcher
from gateway.profiles import Matcher
from gateway.sinks.inventory import Inventory
from gateway.sinks.mqtt import MqttSink
from gateway.sinks.mqtt_discovery import Discovery

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def console(stderr: bool = False) -> Console:
    """A console that wraps on a terminal, and does not cut tables when piped or logged."""
    probe = Console(stderr=stderr)
    return Console(stderr=stderr, soft_wrap=True, width=None if probe.is_terminal else 200)


def build_gateway(
    cfg: Config,
    sink: LineSink,
    inventory: Inventory,
    mqtt: MqttSink | None = None,
    cls: type[Gateway] = Gateway,
    hold_s: int = REPLAY_HOLD_S,
) -> Gateway:
    """The Gateway of replay and run: inventory, device profiles, their activation thresholds, MQTT."""
    matcher = Matcher()
    return cls(
        cfg,
        sink,
        inventory=inventory,
        profiles=profile_matcher(matcher),
        thresholds=matcher.activation_threshold,
        mqtt=mqtt,
        hold_s=hold_s,
    )


def open_mqtt(cfg: Config, err: Console) -> MqttSink | None:
    """The MQTT publisher when enabled; a wrong password raises MqttAuthError (exit 2 by the caller)."""
    if not cfg.mqtt.enabled:
        return None
    sink = MqttSink(
        cfg.mqtt,
        cfg.gateway_id,
        cfg.state_dir,
        discovery=Discovery(cfg.mqtt.discovery.value),
        discovery_prefix=cfg.mqtt.discovery_prefix,
        ca_file=cfg.mqtt.ca_file,
        outbox_max=cfg.mqtt.outbox_max,
    )
    if not sink.start():
        err.print(f"MQTT broker {cfg.mqtt.host}:{cfg.mqtt.port} not reachable yet: events wait in the outbox")
    return sink
