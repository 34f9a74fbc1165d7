"""`mouchard forget DEVICE` against Debian's InfluxDB 1.6.7: a replay writes two devices, forget
removes every series and the inventory entry of one, and leaves the other whole."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.aggregators.detectors.events import Event, EventType
from gateway.aggregators.detectors.state import DeviceState
from gateway.config import InfluxConfig, load_config
from gateway.samples import frames as fr
from gateway.samples.pcapwriter import PcapWriter
from gateway.sinks.batch import Batch
from gateway.sinks.influxdb import InfluxV1Client
from gateway.sinks.mqtt import MqttSink
from gateway.sinks.mqtt_discovery import Discovery, node_id
from gateway.sinks.mqtt_outbox import Outbox, Outgoing
from gateway.sinks.spool import SPOOL_DIR, Spool
from gateway.sinks.spool import _read_body as read_body
from tests.conftest import ROOT, Service, free_port

pytestmark = pytest.mark.services

ECHO, PLUG = "68:db:f5:90:19:64", "50:c7:bf:12:34:56"
ROUTER = "02:00:00:00:00:fe"
T0 = 1_700_000_000 * 1_000_000_000


def lab_capture(path: Path) -> None:
    """Two devices, each asking DHCP for an address, resolving a name and opening TLS to it."""
    with PcapWriter(path) as pcap:
        at = T0
        for n, (mac, ip, name) in enumerate(
            [(ECHO, "192.168.1.20", "avs-alexa.amazon.com"), (PLUG, "192.168.1.30", "use1-api.tplinkra.com")]
        ):
            server = f"52.94.{n}.10"
            out = fr.FrameTemplate(mac, ROUTER, ip, "192.168.1.1", sport=40000 + n, dport=53)
            back = fr.FrameTemplate(ROUTER, mac, "192.168.1.1", ip, sport=53, dport=40000 + n)
            tls = fr.FrameTemplate(mac, ROUTER, ip, server, sport=50000 + n, dport=443)
            reply = fr.FrameTemplate(ROUTER, mac, server, ip, sport=443, dport=50000 + n)
            answer = fr.dns_response(n, name, fr.DNS_A, [fr.address_record(name, server)])
            dhcp = fr.FrameTemplate(
                mac, "ff:ff:ff:ff:ff:ff", "0.0.0.0", "255.255.255.255", sport=68, dport=67
            )
            for frame in (
                dhcp.udp(fr.dhcp_request(n, mac, hostname=f"device-{n}")),
                out.udp(fr.dns_query(n, name)),
                back.udp(answer),
                tls.tcp(1, 1, fr.PSH | fr.ACK, fr.tls_client_hello(name)),
                reply.tcp(1, 2, fr.PSH | fr.ACK, fr.tls_server_hello()),  # the router forwards: no device
            ):
                pcap.write(at, frame)
                at += 1_000_000


def mouchard(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=120,
    )


def write_config(folder: Path, url: str, database: str) -> Path:
    config = folder / "mouchard.yaml"
    config.write_text(
        f"state_dir: {folder}/state\ninfluxdb:\n  url: {url}\n  database: {database}\n"
        f'devices:\n  "{ECHO}": {{name: Kitchen Echo, kind: voice_assistant}}\n'
    )
    return config


def series_of(url: str, database: str, device: str) -> set[str]:
    client = InfluxV1Client(InfluxConfig(url=url, database=database))
    try:
        results = client.query(f"SHOW SERIES WHERE \"device\" = '{device}'", database)
    finally:
        client.close()
    rows = [row for res in results for s in res.get("series", []) for row in s["values"]]  # type: ignore[attr-defined]
    return {str(row[0]) for row in rows}


@pytest.fixture
def replayed(influxdb: Service, tmp_path: Path) -> tuple[Path, str]:
    """A fresh database holding the two devices, and the configuration that wrote it."""
    database = f"forget_{uuid.uuid4().hex[:8]}"
    config = write_config(tmp_path, influxdb.url, database)
    lab_capture(tmp_path / "lab.pcap")
    done = mouchard(config, "replay", str(tmp_path / "lab.pcap"), "--quiet")
    assert done.returncode == 0, done.stderr
    for device in (ECHO, PLUG):
        written = {key.split(",", 1)[0] for key in series_of(influxdb.url, database, device)}
        assert {"traffic", "dns", "device", "event"} <= written, (device, written)
    return config, database


def devices_listed(config: Path) -> list[str]:
    listed = mouchard(config, "devices", "--json")
    assert listed.returncode == 0, listed.stderr
    return [d["id"] for d in json.loads(listed.stdout)]


def test_forget_removes_every_series_and_the_inventory_entry_of_one_device(
    influxdb: Service, replayed: tuple[Path, str]
) -> None:
    config, database = replayed
    kept = series_of(influxdb.url, database, PLUG)
    done = mouchard(config, "forget", ECHO.upper())
    assert done.returncode == 0, done.stderr
    assert f"{ECHO}: removed" in done.stdout
    assert "(device, dns, event, traffic)" in done.stdout
    assert series_of(influxdb.url, database, ECHO) == set()
    assert series_of(influxdb.url, database, PLUG) == kept
    assert devices_listed(config) == [PLUG]


def test_forget_by_the_name_the_lab_gave(influxdb: Service, replayed: tuple[Path, str]) -> None:
    config, database = replayed
    done = mouchard(config, "forget", "kitchen echo")
    assert done.returncode == 0, done.stderr
    assert series_of(influxdb.url, database, ECHO) == set()
    assert devices_listed(config) == [PLUG]


def test_dry_run_says_what_and_removes_nothing(influxdb: Service, replayed: tuple[Path, str]) -> None:
    config, database = replayed
    before = series_of(influxdb.url, database, ECHO)
    done = mouchard(config, "forget", ECHO, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert f"{ECHO}: would remove {len(before)} series" in done.stdout
    assert series_of(influxdb.url, database, ECHO) == before
    assert devices_listed(config) == sorted([ECHO, PLUG])


def test_forgetting_twice_says_nothing_is_stored(replayed: tuple[Path, str]) -> None:
    config, _database = replayed
    assert mouchard(config, "forget", ECHO).returncode == 0
    again = mouchard(config, "forget", ECHO)
    assert again.returncode == 0, again.stderr
    assert f"Mouchard stored nothing about {ECHO}" in again.stderr


def test_a_database_never_written_is_nothing_to_forget(influxdb: Service, tmp_path: Path) -> None:
    config = write_config(tmp_path, influxdb.url, f"never_{uuid.uuid4().hex[:8]}")
    done = mouchard(config, "forget", ECHO)
    assert done.returncode == 0, done.stderr
    assert "stored nothing" in done.stderr


def test_unreachable_influxdb_exits_1_and_keeps_the_inventory(
    replayed: tuple[Path, str], tmp_path: Path
) -> None:
    config, database = replayed
    state = config.read_text().split("\n", 1)[0]
    dead = tmp_path / "dead.yaml"
    dead.write_text(f"{state}\ninfluxdb:\n  url: http://127.0.0.1:{free_port()}\n  database: {database}\n")
    done = mouchard(dead, "forget", ECHO)
    assert done.returncode == 1
    assert "Nothing was removed" in done.stderr
    assert devices_listed(config) == sorted([ECHO, PLUG])


@pytest.mark.parametrize(
    ("device", "why"),
    [
        ("Living room lamp", "nor the name of a device"),
        ("ip:300.1.2.3", "not an ip:<address> device key"),
        ("01:00:5e:00:00:fb", "nor the name of a device"),
    ],
)
def test_a_device_nobody_knows_exits_2_saying_what_to_give(tmp_path: Path, device: str, why: str) -> None:
    config = write_config(tmp_path, f"http://127.0.0.1:{free_port()}", "mouchard")
    done = mouchard(config, "forget", device)
    assert done.returncode == 2
    assert why in done.stderr
    assert "Traceback" not in done.stderr


def test_with_influxdb_2_the_inventory_goes_and_the_delete_command_is_given(tmp_path: Path) -> None:
    from gateway.sinks.inventory import DeviceRecord, Inventory

    inventory = Inventory.in_state_dir(tmp_path / "state")
    inventory.upsert([DeviceRecord(ECHO, "Kitchen Echo", "voice_assistant", "", "", "", "", (), 1, 2)])
    inventory.close()
    config = tmp_path / "v2.yaml"
    config.write_text(f"state_dir: {tmp_path}/state\ninfluxdb:\n  api: v2\n  org: lab\n")
    done = mouchard(config, "forget", "Kitchen Echo")
    assert done.returncode == 1
    assert f"--predicate 'device=\"{ECHO}\"'" in done.stderr
    assert devices_listed(config) == []


# ---------------------------------------------------------------- the spool, novelty, MQTT


def spool_lines(state: Path) -> list[str]:
    """Every line of every (checksum-valid) batch waiting in the spool, oldest first."""
    lines: list[str] = []
    for path in sorted((state / SPOOL_DIR).glob("*.lp")):
        body = read_body(path)
        assert body is not None, f"{path.name} is damaged"
        assert body.count(b"\n") == int(path.name.split(".")[1])  # the points its name says
        lines += body.decode().splitlines()
    return lines


def test_forget_takes_the_device_out_of_the_spool_and_novelty(
    influxdb: Service, replayed: tuple[Path, str]
) -> None:
    config, _database = replayed
    state = config.parent / "state"
    echo = [f"traffic,device={ECHO},host=a.example bytes_out={n}i,bytes_in=1i {T0 + n}" for n in range(3)]
    plug = [f"traffic,device={PLUG},host=b.example bytes_out={n}i,bytes_in=1i {T0 + n}" for n in range(2)]
    spoken = f'event,device={PLUG},type=heartbeat text="not {ECHO} but device={ECHO}" {T0}'  # text only
    spool = Spool(state / SPOOL_DIR)
    spool.append(Batch.of(echo[:2], stamp_ns=1))  # the device's alone: the file goes
    spool.append(Batch.of([echo[2], *plug, spoken], stamp_ns=2))  # mixed: rewritten without its line
    spool.close()
    novelty = state / "novelty.json"
    learned = json.loads(novelty.read_text())["devices"]
    assert {ECHO, PLUG} <= set(learned)

    dry = mouchard(config, "forget", ECHO, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"{ECHO}: would remove 3 points from the spool" in dry.stdout
    assert len(spool_lines(state)) == 6

    done = mouchard(config, "forget", ECHO)
    assert done.returncode == 0, done.stderr
    assert f"{ECHO}: removed 3 points from the spool" in done.stdout
    assert spool_lines(state) == [*plug, spoken]  # order kept, checksums good
    assert len(list((state / SPOOL_DIR).glob("*.lp"))) == 1
    after = json.loads(novelty.read_text())["devices"]
    assert ECHO not in after
    assert after[PLUG] == learned[PLUG]
    assert stat.S_IMODE(novelty.stat().st_mode) == 0o600
    # what is left is delivered whole
    flushed = mouchard(config, "spool", "flush")
    assert flushed.returncode == 0, flushed.stderr
    assert series_of(influxdb.url, _database, ECHO) == set()


@dataclass
class Retained:
    """The retained messages a fresh subscriber receives under ``topics`` (the broker sends them first)."""

    port: int
    topics: list[str]

    def read(self, wait_s: float = 1.0) -> dict[str, bytes]:
        got: dict[str, bytes] = {}
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}")
        client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in self.topics])
        client.on_message = lambda c, u, m: got.__setitem__(m.topic, m.payload) if m.retain else None
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        time.sleep(wait_s)
        client.disconnect()
        client.loop_stop()
        return got


def mqtt_config(folder: Path, influx_url: str, database: str, port: int, gateway: str) -> Path:
    config = write_config(folder, influx_url, database)
    config.write_text(
        config.read_text()
        + f"gateway_id: {gateway}\nmqtt:\n  enabled: true\n  port: {port}\n  discovery: homeassistant\n"
    )
    return config


def publish_states(config: Path) -> None:
    """What a running gateway leaves on the broker: each device's retained state, discovery configs."""
    cfg = load_config(config, env={})
    sink = MqttSink(cfg.mqtt, cfg.gateway_id, cfg.state_dir, discovery=Discovery.HOME_ASSISTANT)
    sink.start()
    for device, kind in ((ECHO, "voice_assistant"), (PLUG, "voice_assistant")):
        sink.publish_states([DeviceState(device, "x", kind, "", "", "192.168.1.2", False, 1, 1)])
    sink.publish_events([Event(ECHO, EventType.HEARTBEAT, T0, "beat", host="h", device_name="x")])
    assert sink.flush(10)
    sink.close()


def test_forget_clears_the_retained_state_and_discovery_on_the_broker(
    influxdb: Service, mosquitto: Service, replayed: tuple[Path, str]
) -> None:
    config, database = replayed
    gateway = f"g{uuid.uuid4().hex[:8]}"
    config = mqtt_config(config.parent, influxdb.url, database, mosquitto.port, gateway)
    publish_states(config)
    watch = Retained(mosquitto.port, [f"mouchard/{gateway}/#", "homeassistant/+/+/+/config"])
    echo_topics = [
        f"mouchard/{gateway}/device/{ECHO}",
        f"homeassistant/binary_sensor/{node_id(gateway, ECHO)}/activation/config",
        f"homeassistant/sensor/{node_id(gateway, ECHO)}/upload_last_hour/config",
    ]
    plug_topics = [
        t.replace(node_id(gateway, ECHO), node_id(gateway, PLUG)).replace(ECHO, PLUG) for t in echo_topics
    ]
    before = watch.read()
    assert set(echo_topics + plug_topics) <= set(before)

    done = mouchard(config, "forget", ECHO)
    assert done.returncode == 0, done.stderr
    assert f"{ECHO}: cleared the retained topics" in done.stdout
    after = watch.read()
    assert not set(echo_topics) & set(after)
    assert {t: after[t] for t in plug_topics} == {t: before[t] for t in plug_topics}


def test_forget_takes_the_device_out_of_the_mqtt_outbox_when_the_broker_is_away(
    influxdb: Service, replayed: tuple[Path, str]
) -> None:
    config, database = replayed
    config = mqtt_config(config.parent, influxdb.url, database, free_port(), "away")
    outbox_path = config.parent / "state" / "mqtt" / "outbox.sqlite3"
    outbox = Outbox(outbox_path)
    outbox.put(
        [
            Outgoing(f"mouchard/away/device/{ECHO}", b'{"device": "x"}', retain=True),
            Outgoing(f"mouchard/away/device/{PLUG}", b"{}", retain=True),
            Outgoing("mouchard/away/event/heartbeat", json.dumps({"device": ECHO}).encode()),
            Outgoing("mouchard/away/event/heartbeat", json.dumps({"device": PLUG, "text": ECHO}).encode()),
        ]
    )
    outbox.close()
    done = mouchard(config, "forget", ECHO)
    assert done.returncode == 1  # the broker still holds its retained state: not finished
    assert f"{ECHO}: removed 2 MQTT messages from the outbox" in done.stdout
    assert "goes out with the next `mouchard run`" in done.stderr
    outbox = Outbox(outbox_path)
    left = outbox.after(0, 100)
    outbox.close()
    assert [(m.topic, m.payload) for m in left[:2]] == [
        (f"mouchard/away/device/{PLUG}", b"{}"),
        ("mouchard/away/event/heartbeat", json.dumps({"device": PLUG, "text": ECHO}).encode()),
    ]
    # the clearing messages wait for the broker: empty and retained
    assert {(m.payload, m.retain) for m in left[2:]} == {(b"", True)}
    assert f"mouchard/away/device/{ECHO}" in {m.topic for m in left[2:]}
