"""The evidence budget: each device's record is charged what it holds, and what does not fit is counted."""

from __future__ import annotations

from gateway.enrichers import evidence
from gateway.enrichers.evidence import EvidenceCollector
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
