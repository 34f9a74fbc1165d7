"""The per-device series caps of `Gateway` at small scale: what overflows is summed under host=other.

The same bounds at flood scale, with memory, are in tests/test_floods.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.checks import fresh_gateway
from gateway import app
from gateway.app import Gateway
from gateway.replay import replay_files
from gateway.samples import frames as fr
from gateway.samples.pcapwriter import PcapWriter
from gateway.sinks.lineproto import MemorySink
from tests.test_floods import DEVICE, DEVICE_IP, ROUTER, T0, dns_queries, field, series, series_key, tag

CAP = 10


@pytest.fixture
def small_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "MAX_DESTINATIONS_PER_DEVICE", CAP)
    monkeypatch.setattr(app, "MAX_DNS_NAMES_PER_DEVICE", CAP)


def replayed(path: Path) -> tuple[Gateway, list[str]]:
    sink = MemorySink()
    gateway = fresh_gateway(sink)
    replay_files(gateway, [path])
    return gateway, sink.lines


def traffic(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("traffic,")]


def send(pcap: PcapWriter, remote: str, at_ms: int, size: int = 40) -> int:
    frame = fr.FrameTemplate(DEVICE, ROUTER, DEVICE_IP, remote, sport=40000, dport=443).udp(b"q" * size)
    pcap.write(T0 + at_ms * 1_000_000, frame)
    return len(frame)


@pytest.mark.usefixtures("small_caps")
def test_destinations_beyond_the_cap_are_summed_by_party_with_every_byte(tmp_path: Path) -> None:
    public = [f"198.18.0.{i + 1}" for i in range(3 * CAP)]  # unnamed: third party
    with PcapWriter(tmp_path / "c.pcap") as pcap:
        first = sum(send(pcap, remote, i, size=40 + i) for i, remote in enumerate(public))
        # Later bins, flushed apart (which destinations of one flush come first is not the capture's order).
        lan = sum(send(pcap, f"192.168.1.{100 + i}", 100_000 + i) for i in range(5))
        again = sum(send(pcap, remote, 200_000 + i) for i, remote in enumerate(public))
    gateway, lines = replayed(tmp_path / "c.pcap")
    written = series(lines, "traffic")
    assert len(written) == CAP + 2
    assert sum(field(line, "bytes_out") for line in traffic(lines)) == first + lan + again
    others = {tag(key, "party"): key for key in written if tag(key, "host") == "other"}
    assert set(others) == {"third", "local"}
    assert all(tag(key, "name_source") == "none" and "country=" not in key for key in others.values())
    local = [line for line in traffic(lines) if series_key(line) == others["local"]]
    assert sum(field(line, "bytes_out") for line in local) == lan
    # the destinations admitted first keep their own series in later bins; the others stay folded
    by_bin: dict[str, set[str]] = {}
    for line in traffic(lines):
        by_bin.setdefault(line.rsplit(" ", 1)[1], set()).add(tag(series_key(line), "host"))
    first, *_, last = by_bin.values()
    assert first == last
    assert gateway.stats.destination_overflow == 2 * (2 * CAP) + 5
    assert len(gateway.totals[DEVICE].destinations) == CAP + 2


@pytest.mark.usefixtures("small_caps")
def test_named_destinations_beyond_the_cap_fold_into_other(tmp_path: Path) -> None:
    answers = fr.FrameTemplate(ROUTER, DEVICE, "9.9.9.9", DEVICE_IP, sport=53, dport=40000)
    with PcapWriter(tmp_path / "c.pcap") as pcap:
        for i in range(2 * CAP):
            name, address = f"n{i}.flood.example", f"198.18.1.{i + 1}"
            answer = fr.dns_response(i, name, fr.DNS_A, [fr.address_record(name, address)])
            pcap.write(T0 + i * 1000, answers.udp(answer))
        sent = [send(pcap, f"198.18.1.{i + 1}", 100_000 + i, size=40 + i) for i in range(2 * CAP)]
    gateway, lines = replayed(tmp_path / "c.pcap")
    written = series(lines, "traffic")
    named = {tag(key, "host") for key in written if tag(key, "name_source") == "dns"}
    assert len(named) == CAP - 1  # the resolver took one of the device's series
    assert {tag(key, "host") for key in written} - named == {"9.9.9.9", "other"}
    other = [line for line in traffic(lines) if "host=other" in line]
    assert [tag(series_key(line), "party") for line in other] == ["third"]
    kept = sum(sent[i] for i in range(2 * CAP) if f"n{i}.flood.example" in named)
    assert sum(field(line, "bytes_out") for line in other) == sum(sent) - kept
    assert gateway.stats.destination_overflow == CAP + 1


@pytest.mark.usefixtures("small_caps")
def test_names_asked_beyond_the_cap_are_counted_under_other(tmp_path: Path) -> None:
    dns_queries(tmp_path / "q.pcap", 3 * CAP)
    gateway, lines = replayed(tmp_path / "q.pcap")
    written = series(lines, "dns")
    assert len(written) == CAP + 1
    dns = [line for line in lines if line.startswith("dns,")]
    other = [line for line in dns if tag(series_key(line), "host") == "other"]
    assert [series_key(line).split(",host=")[1] for line in other] == ["other"]  # no domain, no org
    assert sum(field(line, "queries") for line in other) == 2 * CAP == gateway.stats.dns_name_overflow
    assert sum(field(line, "queries") for line in dns) == 3 * CAP


def test_self_metrics_report_the_overflows() -> None:
    sink = MemorySink()
    gateway = fresh_gateway(sink)
    gateway.stats.destination_overflow, gateway.stats.dns_name_overflow = 7, 3
    gateway.self_metrics(T0, {})
    (line,) = sink.lines
    fields = dict(part.split("=") for part in line.split(" ")[1].split(","))
    assert (fields["destination_overflow"], fields["dns_name_overflow"], fields["evidence_refused"]) == (
        "7i",
        "3i",
        "0i",
    )
