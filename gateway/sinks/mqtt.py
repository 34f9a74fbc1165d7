"""The MQTT sink: events, device states and the gateway's status, to a broker (paho-mqtt 2.x).

Topics (DESIGN.md): ``<prefix>/<gateway>/status`` holds ``online`` or ``offline``, retained, with
``offline`` as the last will; ``<prefix>/<gateway>/event/<type>`` gets each event as JSON (QoS 1);
``<prefix>/<gateway>/device/<id>`` holds each device's state as retained JSON.

Events and states go through the `Outbox` (on disk under state_dir) and leave it only once the broker
has acknowledged them. A sender thread keeps at most ``WINDOW`` of them handed to paho; paho resends
those after a reconnection, and reconnects with a backoff from 1 s to ``reconnect_max_s``. paho's
callbacks only note what happened and wake the sender, so no lock is ever taken inside paho's.

A broker that refuses the credentials is fatal (`MqttAuthError`, not retried); an unreachable broker
is not: messages wait in the outbox.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from gateway.aggregators.detectors.events import Event, event_json
from gateway.aggregators.detectors.state import DeviceState, state_json
from gateway.config import MqttConfig
from gateway.sinks.mqtt_discovery import Discovery, discovery_messages, discovery_topics
from gateway.sinks.mqtt_outbox import OUTBOX_DIR, OUTBOX_FILE, OUTBOX_MAX, Outbox, Outgoing

log = logging.getLogger(__name__)

WINDOW = 20  # messages handed to paho and not yet acknowledged: paho's default in-flight window,
# the fastest setting measured with Mosquitto (DESIGN.md: 15,500 QoS 1 messages/s)
KEEPALIVE_S = 30
RECONNECT_MAX_S = 60
ONLINE, OFFLINE = "online", "offline"
# CONNACK codes that mean "these credentials will never work": MQTT 3.1.1 codes 4 and 5, and the
# MQTT 5 reason codes paho maps them to.
_AUTH_REFUSED = {4, 5, 0x86, 0x87}
_TOPIC_UNSAFE = re.compile(r"[+#/\0]")
_DROP_WARN_EVERY_S = 60


def device_topic(base: str, device: str) -> str:
    """``<prefix>/<gateway>/device/<id>``, the retained state of a device (``+#/`` made ``_``)."""
    return f"{base}/device/{_TOPIC_UNSAFE.sub('_', device)}"


def device_retained_topics(cfg: MqttConfig, gateway_id: str, device: str) -> list[str]:
    """Every retained topic Mouchard may have published about ``device``: its state, and the Home
    Assistant discovery configs of its entities (cleared whether discovery is on now or was before)."""
    base = f"{cfg.topic_prefix}/{gateway_id}"
    return [device_topic(base, device), *discovery_topics(gateway_id, device, cfg.discovery_prefix)]


def clear_retained(cfg: MqttConfig, gateway_id: str, topics: Sequence[str], timeout_s: float = 5.0) -> str:
    """Publish an empty retained message (QoS 1) on each topic, which makes the broker forget it.

    Returns "" when the broker acknowledged them all, else why not (unreachable, refused, timed out).
    """
    client = _paho_client(cfg, f"mouchard-{gateway_id}-forget-{os.getpid()}", cfg.ca_file)
    try:
        client.connect(cfg.host, cfg.port, KEEPALIVE_S)
    except (OSError, ValueError) as exc:
        return f"cannot reach the broker {cfg.host}:{cfg.port} ({type(exc).__name__})"
    client.loop_start()
    try:
        deadline = time.monotonic() + timeout_s
        infos = [client.publish(topic, b"", qos=1, retain=True) for topic in topics]
        for info in infos:
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                break  # not queued by paho: reported below
        if not all(info.is_published() for info in infos):
            return f"the broker {cfg.host}:{cfg.port} did not acknowledge within {timeout_s:g} s"
        return ""
    finally:
        client.disconnect()
        client.loop_stop()


def _paho_client(cfg: MqttConfig, client_id: str, ca_file: Path | None) -> mqtt.Client:
    """A paho client (MQTT 3.1.1, clean session) with the configured credentials and TLS."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=True
    )
    if cfg.username:
        client.username_pw_set(cfg.username, cfg.password.get_secret_value() if cfg.password else None)
    if cfg.tls:
        client.tls_set(ca_certs=str(ca_file) if ca_file else None)
    return client


class MqttError(Exception):
    """The MQTT sink failed; ``retryable`` says whether trying again later can help."""

    retryable = True


class MqttAuthError(MqttError):
    """The broker refused the user name or password."""

    retryable = False


@dataclass(frozen=True, slots=True)
class MqttStats:
    connected: bool
    waiting: int  # in the outbox, not acknowledged yet
    in_flight: int
    delivered: int
    dropped: int  # given up to keep the outbox within its bound
    last_error: str


class MqttSink:
    def __init__(
        self,
        cfg: MqttConfig,
        gateway_id: str,
        state_dir: Path,
        *,
        discovery: Discovery = Discovery.NONE,
        discovery_prefix: str = "homeassistant",
        ca_file: Path | None = None,
        outbox_max: int = OUTBOX_MAX,
        keepalive_s: int = KEEPALIVE_S,
        reconnect_max_s: int = RECONNECT_MAX_S,
    ) -> None:
        self.cfg = cfg
        self.gateway_id = gateway_id
        self.base = f"{cfg.topic_prefix}/{gateway_id}"
        self.status_topic = f"{self.base}/status"
        self.discovery = discovery
        self.discovery_prefix = discovery_prefix
        self.keepalive_s = keepalive_s
        self.outbox = Outbox(state_dir / OUTBOX_DIR / OUTBOX_FILE, outbox_max)
        self.client = self._client(ca_file, reconnect_max_s)
        self._lock = threading.Lock()  # the in-flight table and handing messages to paho
        self._in_flight: dict[int, int] = {}  # paho mid -> outbox seq
        self._handed = 0  # highest outbox seq handed to paho
        self._acks: deque[int] = deque()  # mids paho reported, appended from its thread
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connack = threading.Event()
        self._connected = False
        self._fatal: MqttError | None = None
        self._last_error = ""
        self._announced: set[str] = set()
        self._delivered = 0
        self._drop_warned = 0.0
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)

    def describe(self) -> str:
        scheme = "mqtts" if self.cfg.tls else "mqtt"
        return f"{scheme}://{self.cfg.host}:{self.cfg.port} ({self.base}/...)"

    # ------------------------------------------------------------------ life cycle

    def start(self, timeout_s: float = 5.0) -> bool:
        """Connect in the background; wait up to ``timeout_s`` for the broker's answer.

        Returns whether the broker accepted us (False: unreachable, retried in the background).
        Raises `MqttAuthError` when the broker refuses the credentials.
        """
        self.client.connect_async(self.cfg.host, self.cfg.port, self.keepalive_s)
        self.client.loop_start()
        self._sender.start()
        self._connack.wait(timeout_s)
        self.check()
        if not self._connected:
            log.warning(
                "MQTT broker %s not reachable yet; messages wait in %s", self.describe(), self.outbox.path
            )
        return self._connected

    def check(self) -> None:
        """Raise the fatal error the connection met, if any."""
        if self._fatal is not None:
            raise self._fatal

    def flush(self, timeout_s: float) -> bool:
        """Wait until every message put so far is acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check()
            if not len(self.outbox):
                return True
            self._wake.set()
            time.sleep(0.02)
        return not len(self.outbox)

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what the broker can take within ``timeout_s``, say ``offline``, disconnect.

        What is not delivered stays in the outbox for the next start.
        """
        if self._sender.is_alive() and self._connected and self._fatal is None:
            self.flush(timeout_s)
        if self._connected:
            # A clean disconnection does not trigger the will: say it ourselves.
            info = self.client.publish(self.status_topic, OFFLINE, qos=1, retain=True)
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                info.wait_for_publish(min(timeout_s, 2.0))
        self._stop.set()
        self._wake.set()
        if self._sender.is_alive():
            self._sender.join()
        self.client.disconnect()
        self.client.loop_stop()
        self.outbox.close()

    # ------------------------------------------------------------------ what the gateway sends

    def publish_events(self, events: Sequence[Event]) -> None:
        """Queue events (QoS 1) for ``<base>/event/<type>``."""
        self._put([Outgoing(f"{self.base}/event/{e.type}", event_json(e).encode()) for e in events])

    def publish_states(self, states: Sequence[DeviceState]) -> None:
        """Queue devices' states (retained) for ``<base>/device/<id>``, and their discovery configs."""
        out = []
        for s in states:
            topic = self.device_topic(s.device)
            if self.discovery == Discovery.HOME_ASSISTANT and s.device not in self._announced:
                self._announced.add(s.device)
                out += discovery_messages(s, self.gateway_id, topic, self.status_topic, self.discovery_prefix)
            out.append(Outgoing(topic, state_json(s).encode(), retain=True))
        self._put(out)

    def device_topic(self, device: str) -> str:
        return device_topic(self.base, device)

    def stats(self) -> MqttStats:
        with self._lock:
            in_flight = len(self._in_flight)
        return MqttStats(
            self._connected,
            len(self.outbox),
            in_flight,
            self._delivered,
            self.outbox.dropped,
            self._last_error,
        )

    def _put(self, messages: list[Outgoing]) -> None:
        if not messages:
            return
        self.check()
        with self._lock:
            dropped = self.outbox.put(messages, set(self._in_flight.values()))
        if dropped and time.monotonic() - self._drop_warned > _DROP_WARN_EVERY_S:
            self._drop_warned = time.monotonic()
            log.warning(
                "MQTT outbox full (%d messages): %d oldest dropped so far; is %s reachable?",
                self.outbox.max_messages,
                self.outbox.dropped,
                self.describe(),
            )
        self._wake.set()

    # ------------------------------------------------------------------ the sender thread

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            self._take_acks()
            if self._connected:
                self._hand()

    def _take_acks(self) -> None:
        seqs = []
        with self._lock:
            while self._acks:
                seq = self._in_flight.pop(self._acks.popleft(), None)
                if seq is not None:
                    seqs.append(seq)
        self.outbox.ack(seqs)
        self._delivered += len(seqs)

    def _hand(self) -> None:
        with self._lock:
            room = WINDOW - len(self._in_flight)
            if room <= 0:
                return
            for m in self.outbox.after(self._handed, room):
                info = self.client.publish(m.topic, m.payload, qos=1, retain=m.retain)
                if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                    self._last_error = mqtt.error_string(info.rc)
                    break  # not queued by paho: retried on the next wake
                self._in_flight[info.mid] = m.seq  # queued by paho even when the link just dropped
                self._handed = m.seq

    # ------------------------------------------------------------------ paho's callbacks (its thread)

    def _client(self, ca_file: Path | None, reconnect_max_s: int) -> mqtt.Client:
        client = _paho_client(self.cfg, f"mouchard-{self.gateway_id}-{os.getpid()}", ca_file)
        client.will_set(self.status_topic, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(1, reconnect_max_s)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags, reason: ReasonCode, props: Any
    ) -> None:
        del userdata, flags, props
        if reason.is_failure:
            self._last_error = f"broker refused the connection: {reason}"
            if reason.value in _AUTH_REFUSED:
                self._fatal = MqttAuthError(
                    f"MQTT broker {self.cfg.host}:{self.cfg.port} refused the connection ({reason}): "
                    "check mqtt.username and the password (MOUCHARD_MQTT_PASSWORD or mqtt.password_file)"
                )
                client.disconnect()  # these credentials will not work on a retry either
            else:
                log.warning("MQTT %s: %s; retrying", self.describe(), self._last_error)
            self._connack.set()
            return
        self._connected = True
        client.publish(self.status_topic, ONLINE, qos=1, retain=True)
        log.info("MQTT connected to %s", self.describe())
        self._connack.set()
        self._wake.set()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        del client, userdata
        self._last_error = "cannot reach the broker"

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags, reason: ReasonCode, props: Any
    ) -> None:
        del client, userdata, flags, props
        if self._connected and not self._stop.is_set():
            log.warning("MQTT connection to %s lost (%s); reconnecting", self.describe(), reason)
        self._connected = False

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any
    ) -> None:
        del client, userdata, reason, props
        self._acks.append(mid)
        self._wake.set()
