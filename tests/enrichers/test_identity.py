"""Devices recognised end to end: packets → passive evidence → profiles → identity and inventory."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import default_config
from gateway.enrichers.identity import profile_matcher
from gateway.profiles import Matcher
from gateway.replay import replay_files
from gateway.samples.lab import write_lab_capture
from gateway.sinks.inventory import Inventory
from gateway.sinks.lineproto import MemorySink
from tests.conftest import CAPTURES


def replay(path: Path, inventory: Inventory | None = None) -> Gateway:
    gw = Gateway(default_config(), MemorySink(), inventory=inventory, profiles=profile_matcher(Matcher()))
    replay_files(gw, [path])
    return gw


def test_lab_devices_are_recognised_and_stored(tmp_path: Path) -> None:
    capture = tmp_path / "lab.pcap"
    summary = write_lab_capture(capture, seconds=120)
    inventory = Inventory(tmp_path / "inventory.sqlite3")
    gw = replay(capture, inventory)
    stored = {r.id: r for r in inventory.devices()}
    for device in summary.devices:
        record = stored[device.mac]
        assert record.kind == device.kind, device.mac
        assert record.ip == device.ipv4
    # the Nest Mini announces its friendly name over mDNS; the plug only has its DHCP host name
    names = {d.mac: stored[d.mac].name for d in summary.devices}
    assert names["f4:f5:d8:6b:02:9e"] == "Kitchen"
    assert names["50:c7:bf:a1:3c:5e"] == "HS110"
    sink = gw.sink
    assert isinstance(sink, MemorySink)
    events = [line for line in sink.lines if line.startswith("event,") and "type=new_device" in line]
    assert len(events) == len(summary.devices)  # one new_device each
    assert not replay(capture, inventory).update_inventory()  # a second replay finds nothing new


@pytest.mark.skipif(not CAPTURES.is_dir(), reason="shared/captures absent")
def test_apple_capture_without_link_layer_is_recognised() -> None:
    gw = replay(CAPTURES / "nfstream" / "mdns_apple_2011.pcap")
    kinds = Counter(ident.kind for ident in gw.identities().values())
    assert kinds["streaming_player"] >= 2  # Apple TVs
    assert kinds["computer"] >= 2  # Macs
    assert kinds["phone"] >= 1  # iPhones
    assert kinds["network"] >= 2  # AirPort base stations
    assert gw.evidence.stats.mdns_messages > 200


def test_active_mdns_sighting_joins_the_device_at_its_address(tmp_path: Path) -> None:
    capture = tmp_path / "lab.pcap"
    write_lab_capture(capture, seconds=60)
    gw = replay(capture)
    plug = (1, 0, int("50c7bfa13c5e", 16))
    before = gw.evidence.devices[plug].version
    assert gw.evidence.add_sighting(
        ("192.168.1.42",), "_hap._tcp.local.", "Desk Plug", "HS110.local.", {"md": "HS110"}
    )
    ev = gw.evidence.devices[plug]
    assert "_hap._tcp" in ev.services
    assert ev.instances["Desk Plug"] == "_hap._tcp"
    assert ev.version > before
    assert not gw.evidence.add_sighting(("10.9.9.9",), "_hap._tcp.local.", "Nobody", "", {})
