"""`mouchard forget DEVICE` against Debian's InfluxDB 1.6.7: a replay writes two devices, forget
removes every series and the inventory entry of one, and leaves the other whole."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from gateway.config import InfluxConfig
from gateway.samples import frames as fr
from gateway.samples.pcapwriter import PcapWriter
from gateway.sinks.influxdb import InfluxV1Client
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
