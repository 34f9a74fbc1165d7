"""Heartbeat periods: estimated within 10 % despite jitter, extra contacts and missed beats; nothing
found in irregular traffic or in a busy connection; one destination across its addresses."""

from __future__ import annotations

import random

import numpy as np
import numpy.typing as npt
import pytest

from gateway.aggregators.detectors import heartbeat
from gateway.aggregators.detectors.events import EventType
from gateway.aggregators.detectors.heartbeat import HeartbeatDetector, estimate_period
from gateway.aggregators.detectors.inputs import SentPackets, flow_hosts, packet_hosts
from gateway.aggregators.grouping import key_hash_one
from gateway.aggregators.traffic import KIND_MAC
from gateway.enrichers.lan import address_text
from gateway.enrichers.names import NameTable
from tests.aggregators.synthetic import PLUG, sent


def beats(period: float, count: int, jitter: float = 0.02, seed: int = 1) -> list[float]:
    rng = random.Random(seed)  # noqa: S311 reproducible test data
    times, t = [], 10.0
    for _ in range(count):
        times.append(t)
        t += period * rng.uniform(1 - jitter, 1 + jitter)
    return times


@pytest.mark.parametrize("period", [5.5, 15, 30, 60, 300, 3600])
def test_a_jittered_period_is_found_within_ten_percent(period: float) -> None:
    found = estimate_period(beats(period, 12))
    assert found == pytest.approx(period, rel=0.10)


def test_extra_contacts_and_a_missed_beat_do_not_hide_the_period() -> None:
    times = beats(30, 16)
    times += [times[3] + 11, times[9] + 21]  # a voice request, a firmware check on the same connection
    del times[12]  # a ping that fell inside another exchange
    assert estimate_period(sorted(times)) == pytest.approx(30, rel=0.10)


def test_irregular_contacts_too_few_contacts_and_busy_links_have_no_period() -> None:
    rng = random.Random(3)  # noqa: S311 reproducible test data
    t, poisson = 0.0, []
    for _ in range(16):
        t += rng.expovariate(1 / 40)
        poisson.append(t)
    assert estimate_period(poisson) is None
    assert estimate_period(beats(30, heartbeat.MIN_CONTACTS - 1)) is None
    assert estimate_period(beats(2, 16)) is None  # below MIN_PERIOD_S: a busy connection


def host_by_address(packets: SentPackets, at: npt.NDArray[np.int64]) -> list[str]:
    named = {"3.120.171.18": "n-devs.tplinkcloud.com", "3.120.171.19": "n-devs.tplinkcloud.com"}
    flows = [packets.flow(i) for i in at.tolist()]
    return [named.get(address_text(f[3], f[4]), address_text(f[3], f[4])) for f in flows]


def address_of(packets: SentPackets, at: npt.NDArray[np.int64]) -> list[str]:
    return [address_text(f[3], f[4]) for f in (packets.flow(i) for i in at.tolist())]


def contacts(times: list[float], remote: str = "3.120.171.18") -> list[SentPackets]:
    """Each contact: a request and the ACK of the answer, 40 ms apart."""
    return [sent(PLUG, [t, t + 0.04], [234, 54], remote=remote) for t in times]


def test_the_detector_reports_a_period_once_then_when_it_changes() -> None:
    d = HeartbeatDetector(host_by_address)
    events = [e for batch in contacts(beats(60, 10)) for e in d.observe(batch)]
    assert len(events) == 1
    [found] = events
    assert found.type == EventType.HEARTBEAT
    assert found.period_s == pytest.approx(60, rel=0.10)
    assert found.host == "n-devs.tplinkcloud.com"
    assert found.text == "Desk Plug calls n-devs.tplinkcloud.com every 60 s"
    later = [t + 700 for t in beats(120, 16)]
    changed = [e for batch in contacts(later) for e in d.observe(batch)]
    assert [e.period_s for e in changed] == [pytest.approx(120, rel=0.10)]
    assert changed[0].text.startswith("Desk Plug now calls")


def test_a_host_answering_from_two_addresses_is_one_destination() -> None:
    d = HeartbeatDetector(host_by_address)
    times = beats(60, 10)
    batches = [contacts([t], "3.120.171.18" if i % 2 else "3.120.171.19")[0] for i, t in enumerate(times)]
    events = [e for batch in batches for e in d.observe(batch)]
    assert [(e.host, round(e.period_s or 0)) for e in events] == [("n-devs.tplinkcloud.com", 60)]


def test_a_continuous_stream_is_not_a_heartbeat() -> None:
    d = HeartbeatDetector(host_by_address)
    stream = sent(PLUG, [i * 0.5 for i in range(2000)], 1500)  # a packet every 0.5 s for 1000 s
    assert d.observe(stream) == []


def test_state_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heartbeat, "MAX_PAIRS", 50)
    monkeypatch.setattr(heartbeat, "MAX_BEATS", 50)
    d = HeartbeatDetector(address_of)
    for i in range(500):  # a scan: one new address a second
        d.observe(sent(PLUG, [float(i)], 60, remote=f"198.51.{i // 250}.{i % 250}"))
    assert len(d.last_seen) <= 50
    assert len(d.beats) <= 50


def test_packet_hosts_name_packets_as_flow_hosts_names_their_flows() -> None:
    """The heartbeat's column path gives each packet the host the per-flow path gives its flow."""
    names = NameTable()
    named = sent(PLUG, [1.0], remote="3.120.171.18")
    device_remote = key_hash_one([KIND_MAC, 0, int(named.dlo[0]), int(named.rhi[0]), int(named.rlo[0])])
    names.add_dns(device_remote, "n-devs.tplinkcloud.com")
    flow = named.flow(0)
    names.add_flow(key_hash_one(flow), "sni.example.net", 2)
    batches = [
        named,
        sent(PLUG, [2.0], remote="3.120.171.18", lport=40001),  # same address, another flow: DNS name
        sent(PLUG, [3.0], remote="2001:db8::7"),  # unnamed: the address
        sent(PLUG, [4.0], remote="198.51.100.9"),
    ]
    packets = SentPackets(
        **{
            f: (batches[0].subjects if f == "subjects" else np.concatenate([getattr(b, f) for b in batches]))
            for f in SentPackets.__slots__
        }
    )
    at = np.array([3, 0, 2, 1, 0], np.int64)
    expected = flow_hosts(names, [packets.flow(i) for i in at.tolist()])
    assert packet_hosts(names, packets, at) == expected
    named_by = ["198.51.100.9", "sni.example.net", "2001:db8::7", "n-devs.tplinkcloud.com", "sni.example.net"]
    assert expected == named_by
