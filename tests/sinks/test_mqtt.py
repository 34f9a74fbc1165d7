"""The MQTT sink against a real Mosquitto: what arrives, what is retained, what survives restarts.

The session's broker serves the tests that do not disturb it; a test that restarts a broker, asks for
a password or speaks TLS starts its own (`Broker`), with a copy of scripts/mosquitto-local's
configuration plus what it needs, and stops it by its pid.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import SecretStr

from gateway.aggregators.detectors.events import Event, EventType
from gateway.aggregators.detectors.state import DeviceState
from gateway.config import MqttConfig
from gateway.sinks.mqtt import MqttAuthError, MqttSink
from gateway.sinks.mqtt_discovery import Discovery
from gateway.sinks.mqtt_outbox import Outbox, OutboxError, Outgoing
from tests.conftest import ROOT, Service, free_port

pytestmark = pytest.mark.skipif(shutil.which("mosquitto") is None, reason="apt-get install mosquitto")

ECHO = "68:db:f5:90:19:64"
PLUG = "50:c7:bf:a1:3c:5e"


def event(n: int, kind: EventType = EventType.HEARTBEAT) -> Event:
    return Event(
        ECHO, kind, 1_730_857_800_000_000_000 + n, f"event {n}", bytes=n, host="h", device_name="Echo"
    )


def state(
    device: str = ECHO, kind: str = "voice_assistant", upload: int = 1234, active: bool = False
) -> DeviceState:
    return DeviceState(device, "Kitchen Echo", kind, "Amazon", "Echo Dot", "192.168.1.23", active, upload, 1)


# ---------------------------------------------------------------- a subscriber and private brokers


@dataclass
class Collector:
    """A subscriber to ``mouchard/#`` (and Home Assistant's topics) that keeps what it receives."""

    port: int
    persistent: bool = False  # a kept session: the broker queues QoS 1 messages while it is away
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-{uuid.uuid4().hex[:8]}",
            clean_session=not self.persistent,
        )
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(
            [("mouchard/#", 1), ("homeassistant/#", 1)]
        )
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self.client.on_message = self._message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        assert self._subscribed.wait(5), "the subscriber got no SUBACK"

    def _message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))
            self._cond.notify_all()

    def wait(self, done: Callable[[list[tuple[str, bytes, bool]]], bool], timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: done(self.messages), timeout)

    def payloads(self, topic: str) -> list[bytes]:
        with self._cond:
            return [p for t, p, _ in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Broker:
    """A Mosquitto of the test's own, stopped and started at will."""

    folder: Path
    port: int
    extra: str = ""
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "mosquitto.conf"
        anonymous = "" if "allow_anonymous" in self.extra else "allow_anonymous true\n"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\npersistence true\npersistence_location {self.folder}/\n"
            f"log_dest file {self.folder}/mosquitto.log\n{anonymous}{self.extra}",
            encoding="utf-8",
        )
        _owned_by_mosquitto(self.folder)
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket_to(self.port):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    pytest.fail(
                        f"mosquitto died: {self.proc.stderr.read().decode() if self.proc.stderr else ''}"
                    )
                time.sleep(0.05)
        pytest.fail(f"mosquitto did not listen on {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: it saves retained messages and sessions first
            self.proc.wait(10)
        self.proc = None


def socket_to(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=1)


def _owned_by_mosquitto(folder: Path) -> None:
    """Mosquitto drops root for its own user: its folder and files must be that user's."""
    try:
        pwd.getpwnam("mosquitto")
    except KeyError:
        return
    for path in (folder, *folder.iterdir()):
        shutil.chown(path, "mosquitto")


@pytest.fixture
def broker_dir() -> Iterator[Path]:
    """A folder the broker's own user can reach (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="mouchard-test-mqtt-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def own_broker(broker_dir: Path) -> Iterator[Broker]:
    broker = Broker(broker_dir, free_port())
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def subscriber(mosquitto: Service) -> Iterator[Collector]:
    collector = Collector(mosquitto.port)
    yield collector
    collector.close()


def sink_for(port: int, state_dir: Path, gateway_id: str = "lab", **kwargs: object) -> MqttSink:
    return MqttSink(MqttConfig(port=port), gateway_id, state_dir, reconnect_max_s=1, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- what arrives


@pytest.mark.services
def test_events_states_and_status_arrive_and_state_is_retained(
    mosquitto: Service, subscriber: Collector, tmp_path: Path
) -> None:
    sink = sink_for(mosquitto.port, tmp_path, "arrive")
    assert sink.start()
    sink.publish_events([event(1, EventType.ACTIVATION), event(2, EventType.QUIET_HOURS)])
    sink.publish_states([state()])
    assert sink.flush(10)
    base = "mouchard/arrive"
    assert subscriber.wait(lambda m: len([t for t, _, _ in m if "/event/" in t]) == 2)
    activation = json.loads(subscriber.payloads(f"{base}/event/activation")[0])
    assert activation["device"] == ECHO
    assert activation["type"] == "activation"
    assert activation["bytes"] == 1
    assert activation["time"] == "2024-11-06T01:50:00.000Z"
    assert subscriber.payloads(f"{base}/event/quiet_hours")
    assert subscriber.wait(lambda m: any(t == f"{base}/device/{ECHO}" for t, _, _ in m))
    assert subscriber.payloads(f"{base}/status")[0] == b"online"
    stats = sink.stats()
    assert (stats.delivered, stats.waiting, stats.dropped) == (3, 0, 0)

    late = Collector(mosquitto.port)  # connects afterwards: gets what is retained
    try:
        assert late.wait(lambda m: {t for t, _, r in m if r} >= {f"{base}/status", f"{base}/device/{ECHO}"})
        retained = {t: p for t, p, r in late.messages if r}
        assert retained[f"{base}/status"] == b"online"
        doc = json.loads(retained[f"{base}/device/{ECHO}"])
        assert doc["upload_last_hour"] == 1234
        assert doc["name"] == "Kitchen Echo"
        assert not any("/event/" in t for t, _, _ in late.messages), "events are not retained"
    finally:
        late.close()
    sink.close()
    assert subscriber.wait(lambda m: subscriber.payloads(f"{base}/status")[-1:] == [b"offline"])


@pytest.mark.services
def test_a_newer_state_replaces_a_waiting_one(mosquitto: Service, tmp_path: Path) -> None:
    sink = sink_for(mosquitto.port, tmp_path, "coalesce")
    sink.publish_states([state(upload=n) for n in range(50)])  # before start: all wait in the outbox
    assert len(sink.outbox) == 1
    assert sink.start()
    assert sink.flush(10)
    sink.close()
    late = Collector(mosquitto.port)
    try:
        topic = f"mouchard/coalesce/device/{ECHO}"
        assert late.wait(lambda m: any(t == topic for t, _, _ in m))
        doc = json.loads(late.payloads(topic)[0])
        assert doc["upload_last_hour"] == 49
    finally:
        late.close()


@pytest.mark.services
def test_home_assistant_discovery_for_speakers(
    mosquitto: Service, subscriber: Collector, tmp_path: Path
) -> None:
    sink = sink_for(mosquitto.port, tmp_path, "ha", discovery=Discovery.HOME_ASSISTANT)
    assert sink.start()
    sink.publish_states([state(), state(PLUG, "plug")])
    sink.publish_states([state(upload=99)])  # announced once
    assert sink.flush(10)
    sink.close()
    node = "mouchard_ha_68dbf5901964"
    binary, sensor = (
        f"homeassistant/binary_sensor/{node}/activation/config",
        f"homeassistant/sensor/{node}/upload_last_hour/config",
    )
    assert subscriber.wait(lambda m: {binary, sensor} <= {t for t, _, _ in m})
    assert len(subscriber.payloads(binary)) == 1
    config = json.loads(subscriber.payloads(binary)[0])
    assert config["state_topic"] == f"mouchard/ha/device/{ECHO}"
    assert config["availability_topic"] == "mouchard/ha/status"
    assert config["unique_id"] == f"{node}_activation"
    assert config["device"]["connections"] == [["mac", ECHO]]
    upload = json.loads(subscriber.payloads(sensor)[0])
    assert (upload["unit_of_measurement"], upload["device_class"]) == ("B", "data_size")
    assert "value_json.upload_last_hour" in upload["value_template"]
    assert not any("50c7bfa13c5e" in t for t, _, _ in subscriber.messages), "a plug is not a speaker"


# ---------------------------------------------------------------- restarts and crashes


def test_broker_restart_in_the_middle_loses_no_event(own_broker: Broker, tmp_path: Path) -> None:
    listener = Collector(own_broker.port, persistent=True)
    sink = sink_for(own_broker.port, tmp_path / "state", "restart")
    try:
        assert sink.start()
        sink.publish_events([event(n) for n in range(500)])
        time.sleep(0.02)  # some delivered, some in flight, most waiting when the broker goes
        own_broker.stop()
        assert len(sink.outbox) > 0, "the broker took everything before it stopped: nothing tested"
        sink.publish_events([event(n) for n in range(500, 600)])  # while the broker is away
        own_broker.start()
        sink.publish_events([event(n) for n in range(600, 700)])
        assert sink.flush(20), sink.stats()

        def numbers(msgs: list[tuple[str, bytes, bool]]) -> set[int]:
            return {json.loads(p)["bytes"] for t, p, _ in msgs if "/event/" in t}

        missing = lambda m: set(range(700)) - numbers(m)  # noqa: E731
        assert listener.wait(lambda m: not missing(m), 20), sorted(missing(listener.messages))
    finally:
        sink.close()
        listener.close()


def test_gateway_restart_delivers_what_waited_in_the_outbox(
    mosquitto: Service, subscriber: Collector, tmp_path: Path
) -> None:
    nowhere = free_port()  # nothing listens there
    first = sink_for(nowhere, tmp_path, "offline")
    assert not first.start(timeout_s=0.3)
    first.publish_events([event(n) for n in range(5)])
    first.close(timeout_s=0.1)

    second = sink_for(mosquitto.port, tmp_path, "offline")
    assert len(second.outbox) == 5
    assert second.start()
    assert second.flush(10)
    second.close()
    assert subscriber.wait(
        lambda m: len([t for t, _, _ in m if t.startswith("mouchard/offline/event/")]) == 5
    )


def test_a_crashed_gateway_is_offline_by_its_last_will(
    mosquitto: Service, subscriber: Collector, tmp_path: Path
) -> None:
    script = (
        "import sys, time; from pathlib import Path; from gateway.config import MqttConfig; "
        "from gateway.sinks.mqtt import MqttSink; "
        f"s = MqttSink(MqttConfig(port={mosquitto.port}), 'crash', Path({str(tmp_path)!r})); "
        "print('ready' if s.start() else 'failed', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        assert subscriber.wait(lambda m: ("mouchard/crash/status", b"online", False) in m)
    finally:
        proc.kill()  # no DISCONNECT: the broker publishes the will
        proc.wait()
    assert subscriber.wait(lambda m: subscriber.payloads("mouchard/crash/status")[-1:] == [b"offline"])


# ---------------------------------------------------------------- credentials and TLS


def test_wrong_password_is_a_clear_error(broker_dir: Path, tmp_path: Path) -> None:
    folder = broker_dir
    passwords = folder / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "lab", "right horse"], check=True)
    broker = Broker(folder, free_port(), f"allow_anonymous false\npassword_file {passwords}\n")
    broker.start()
    try:
        cfg = MqttConfig(port=broker.port, username="lab", password=SecretStr("wrong battery"))
        sink = MqttSink(cfg, "lab", tmp_path / "a")
        with pytest.raises(MqttAuthError) as caught:
            sink.start()
        message = str(caught.value)
        assert "mqtt.username" in message
        assert "MOUCHARD_MQTT_PASSWORD" in message
        assert "wrong battery" not in message
        assert not caught.value.retryable
        with pytest.raises(MqttAuthError):
            sink.publish_events([event(1)])
        sink.close(timeout_s=0.1)

        good = MqttSink(cfg.model_copy(update={"password": SecretStr("right horse")}), "lab", tmp_path / "b")
        assert good.start()
        good.close()
    finally:
        broker.stop()


def _certificates(folder: Path) -> Path:
    """A private CA and a certificate for 127.0.0.1 signed by it; returns the CA's file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def cert(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: str,
        signer: ec.EllipticCurvePrivateKey,
        ca: bool,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("Mouchard test CA", ca_key, "Mouchard test CA", ca_key, True)
    server = cert("127.0.0.1", key, "Mouchard test CA", ca_key, False)
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return folder / "ca.pem"


def test_tls_to_a_broker_with_a_private_ca(broker_dir: Path, tmp_path: Path) -> None:
    folder = broker_dir
    ca = _certificates(folder)
    tls_port = free_port()
    broker = Broker(
        folder,
        free_port(),
        f"allow_anonymous true\nlistener {tls_port} 127.0.0.1\ncafile {ca}\n"
        f"certfile {folder / 'server.pem'}\nkeyfile {folder / 'server.key'}\n",
    )
    broker.start()
    listener = Collector(broker.port)  # the plain listener
    try:
        cfg = MqttConfig(port=tls_port, tls=True)
        sink = MqttSink(cfg, "tls", tmp_path / "state", ca_file=ca)
        assert sink.start(), sink.stats().last_error
        sink.publish_events([event(7)])
        assert sink.flush(10)
        sink.close()
        assert listener.wait(lambda m: any(t == "mouchard/tls/event/heartbeat" for t, _, _ in m))
    finally:
        listener.close()
        broker.stop()


# ---------------------------------------------------------------- the outbox's bounds


def test_outbox_drops_the_oldest_beyond_its_bound_but_never_what_is_in_flight(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.sqlite3", max_messages=10)
    try:
        assert box.put([Outgoing("t", b"%d" % n) for n in range(10)]) == 0
        assert box.put([Outgoing("t", b"%d" % n) for n in range(10, 15)], in_flight={1, 2}) == 5
        kept = [int(m.payload) for m in box.after(0, 100)]
        assert kept == [0, 1, 7, 8, 9, 10, 11, 12, 13, 14]
        assert box.dropped == 5
        box.ack({1, 2})
        assert len(box) == 8
    finally:
        box.close()


def test_outbox_survives_reopening_and_is_used_by_one_process_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    box = Outbox(path)
    box.put([Outgoing("a", b"1"), Outgoing("b", b"2", retain=True), Outgoing("b", b"3", retain=True)])
    with pytest.raises(OutboxError, match="in use by pid"):
        Outbox(path)
    box.close()
    again = Outbox(path)
    try:
        assert [(m.topic, m.payload) for m in again.after(0, 10)] == [("a", b"1"), ("b", b"3")]
    finally:
        again.close()
