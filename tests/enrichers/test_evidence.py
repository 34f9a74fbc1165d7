"""The evidence budget: each record is charged what it holds, to its device and to the total of all
devices, and what does not fit is counted; and what the packets of each LAN sender say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gateway.enrichers import evidence
from gateway.enrichers.evidence import EvidenceCollector
from gateway.parsers.headers import decode
from gateway.samples import frames as fr
from gateway.samples.pcapwriter import PcapWriter
from gateway.sources.capfile import open_capture
from tests.test_floods import deep_size

KEY = (1, 0, 0x0200_0000_0001)


def collector_with_device() -> tuple[EvidenceCollector, evidence.Evidence]:
    collector = EvidenceCollector()
    collector.add_domain(KEY, "first.example")
    ev = collector.devices[KEY]
    ev.ipv4 = "192.168.1.10"
    return collector, ev


def test_txt_keys_and_values_are_cut() -> None:
    collector, ev = collector_with_device()
    assert collector.add_sighting(("192.168.1.10",), "_http._tcp.local.", "x", "", {"k" * 300: "v" * 300})
    ((key, value),) = ev.properties.items()
    assert (len(key), len(value)) == (evidence.MAX_TXT_KEY, evidence.MAX_TXT_VALUE)


def test_a_device_that_says_too_much_stops_at_its_share_and_is_counted() -> None:
    collector, ev = collector_with_device()
    for i in range(evidence.MAX_SERVICES):
        props = {f"key{i}-{j}": "v" * 200 for j in range(4)}
        collector.add_sighting(
            ("192.168.1.10",), f"_s{i}{'x' * 40}._tcp.local.", f"inst{i}", f"h{i}.local", props
        )
    assert ev.charged <= evidence.DEVICE_SHARE
    assert deep_size(ev) <= ev.charged
    assert collector.stats.refused > 0
    assert len(ev.services) < evidence.MAX_SERVICES


def test_names_asked_take_at_most_their_part_of_the_share() -> None:
    collector, ev = collector_with_device()
    for i in range(evidence.MAX_DOMAINS):
        collector.add_domain(KEY, f"name{i:03d}.example.com")
    assert 0 < ev.domains_charged <= evidence.DOMAIN_SHARE
    assert 1 < len(ev.domains) < evidence.MAX_DOMAINS
    assert collector.stats.refused == evidence.MAX_DOMAINS + 1 - len(ev.domains)
    # what is left of the share still takes what the device says about itself
    assert collector.add_sighting(("192.168.1.10",), "_hap._tcp.local.", "Lamp", "lamp.local", {"md": "Lamp"})
    assert ev.properties == {"md": "Lamp"}


# An Apple TV's announcements: fifteen services, each with an instance and TXT keys of its own.
APPLE_TV_SERVICES = [
    "_airplay._tcp", "_raop._tcp", "_companion-link._tcp", "_homekit._tcp", "_hap._tcp",
    "_sleep-proxy._udp", "_touch-able._tcp", "_appletv-v2._tcp", "_mediaremotetv._tcp",
    "_device-info._tcp", "_rdlink._tcp", "_remotepairing._tcp", "_airport._tcp",
    "_matter._tcp", "_trel._udp",
]  # fmt: skip


def announce_apple_tv(collector: EvidenceCollector, address: str) -> None:
    for n, stype in enumerate(APPLE_TV_SERVICES):
        txt = {f"s{n}k{k}": f"{k:02d}:" + "0123456789abcdef" * 4 for k in range(3)}
        if n == 0:
            txt |= {"model": "AppleTV11,1", "osvers": "17.4", "deviceid": "AA:BB:CC:DD:EE:FF"}
        collector.add_sighting(
            (address,), f"{stype}.local.", f"Living Room {stype}", "Living-Room.local.", txt
        )


def device_at(collector: EvidenceCollector, mac: int, address: str) -> evidence.Evidence:
    """A record made as the first packet of a device makes it: before anything it announces."""
    ev = collector._evidence((1, 0, mac))
    assert ev is not None
    ev.ipv4 = address
    return ev


def test_a_device_within_its_cap_keeps_what_it_announced_whole() -> None:
    collector = EvidenceCollector()
    ev = device_at(collector, 0x0200_0000_0001, "192.168.1.20")
    announce_apple_tv(collector, "192.168.1.20")
    assert collector.stats.refused == 0
    assert ev.services == set(APPLE_TV_SERVICES)
    assert len(ev.instances) == len(APPLE_TV_SERVICES)
    assert len(ev.properties) == 3 * len(APPLE_TV_SERVICES) + 3
    assert ev.properties["model"] == "AppleTV11,1"
    # more than the equal share of 64 MiB among 10,000 devices (6,710 bytes) it was once limited to
    assert 64 * 2**20 // 10_000 < ev.charged <= evidence.DEVICE_SHARE
    assert deep_size(ev) <= ev.charged
    assert collector.charged == ev.charged


def test_once_the_total_is_spent_announcements_are_refused_and_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # room for the record of every device, and 40,000 bytes for what they announce
    budget = evidence.MAX_DEVICES * evidence.BASE_CHARGE + 40_000
    monkeypatch.setattr(evidence, "EVIDENCE_BUDGET", budget)
    collector = EvidenceCollector()
    apple_tv = device_at(collector, 0x0200_0000_0001, "192.168.1.20")
    announce_apple_tv(collector, "192.168.1.20")
    assert collector.stats.refused == 0  # within its cap, and the total had room: kept whole
    assert len(apple_tv.services) == len(APPLE_TV_SERVICES)
    # a device saying as much as its cap allows spends the rest of the total
    loud = device_at(collector, 0x0200_0000_0002, "192.168.1.21")
    for i in range(evidence.MAX_SERVICES):
        props = {f"key{i}-{j}": "v" * 200 for j in range(4)}
        collector.add_sighting(
            ("192.168.1.21",), f"_s{i}{'x' * 40}._tcp.local.", f"inst{i}", f"h{i}.local", props
        )
    assert loud.charged < evidence.DEVICE_SHARE - 1_000  # stopped by the total, not by its own cap
    left = budget - (evidence.MAX_DEVICES - len(collector.devices)) * evidence.BASE_CHARGE - collector.charged
    assert left < evidence._set_cost("h63.local")  # less than the cheapest thing it announced
    refused = collector.stats.refused
    assert refused > 0
    # a new device still gets its record (room for it was kept aside), but not what it announces:
    # a Chromecast, each of whose entries costs more than is left
    late = device_at(collector, 0x0200_0000_0003, "192.168.1.22")
    uuid = "5a0f0c3a1ee4d2b7c2c9e37c6d1f7a66"
    txt = {"id": uuid, "cd": uuid.upper()}
    assert collector.add_sighting(
        ("192.168.1.22",), "_googlecast._tcp.local.", f"Chromecast-{uuid}", f"{uuid}.local.", txt
    )
    collector.add_domain((1, 0, 0x0200_0000_0003), "clients3.google.com")
    held = (late.services, late.instances, late.properties, late.mdns_hosts, late.domains)
    assert [len(entries) for entries in held] == [0, 0, 0, 0, 0]
    assert late.ipv4 == "192.168.1.22"
    assert collector.stats.refused == refused + 6  # service, instance, two TXT keys, host and name
    # the Apple TV kept everything it said, and nothing holds more than it was charged
    assert len(apple_tv.properties) == 3 * len(APPLE_TV_SERVICES) + 3
    assert sum(ev.charged for ev in collector.devices.values()) == collector.charged
    unseen = (evidence.MAX_DEVICES - len(collector.devices)) * evidence.BASE_CHARGE
    assert collector.charged + unseen <= budget
    assert all(deep_size(ev) <= ev.charged for ev in collector.devices.values())


def test_records_are_refused_only_at_max_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evidence, "MAX_DEVICES", 3)
    monkeypatch.setattr(evidence, "EVIDENCE_BUDGET", 3 * evidence.BASE_CHARGE)  # nothing left to announce
    collector = EvidenceCollector()
    for mac in range(4):
        collector.add_domain((1, 0, mac), "example.com")
    assert len(collector.devices) == 3
    assert (collector.stats.overflow, collector.stats.refused) == (1, 3)
    assert collector.charged == evidence.EVIDENCE_BUDGET


# ---------------------------------------------------------------- when and where each sender was seen

T0 = 1_700_000_000


def observe(tmp_path: Path, packets: list[tuple[int, str, str]]) -> EvidenceCollector:
    """Packets (second, MAC, IPv4 source), in this order, in one batch; every sender on the LAN."""
    with PcapWriter(tmp_path / "seen.pcap") as pcap:
        for second, mac, address in packets:
            flow = fr.FrameTemplate(
                mac, "02:00:00:00:00:fe", address, "93.184.216.34", sport=40000, dport=443
            )
            pcap.write((T0 + second) * 1_000_000_000, flow.udp(b"x"))
    collector = EvidenceCollector()
    for batch in open_capture(tmp_path / "seen.pcap"):
        h = decode(batch)
        collector.observe(batch, h, np.ones(len(batch), np.bool_))
    return collector


def test_each_sender_has_its_first_and_last_time_and_its_last_ipv4_address(tmp_path: Path) -> None:
    a, b, c = "02:00:00:00:00:0c", "02:00:00:00:00:0a", "02:00:00:00:00:0b"
    collector = observe(
        tmp_path,
        [
            (5, a, "192.168.1.30"),
            (3, b, "0.0.0.0"),  # a DHCP client before it has an address; out of time order
            (9, a, "192.168.1.31"),
            (4, c, "192.168.1.40"),
            (7, b, "192.168.1.20"),
            (6, a, "192.168.1.30"),  # a's last IPv4 packet, though not its latest
            (8, b, "0.0.0.0"),
        ],
    )
    found = {f"{key[2]:012x}"[-2:]: ev for key, ev in collector.devices.items()}
    assert list(found) == ["0c", "0a", "0b"]  # records made in the order senders appear
    seen = {mac: (ev.first_seen - T0, ev.last_seen - T0, ev.ipv4) for mac, ev in found.items()}
    assert seen == {"0c": (5, 9, "192.168.1.30"), "0a": (3, 8, "192.168.1.20"), "0b": (4, 4, "192.168.1.40")}
