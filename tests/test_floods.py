"""Floods from devices nobody trusts: memory and the series written to InfluxDB stay bounded.

Each pipeline flood is a capture written here and replayed by `mouchard replay --output FILE` in a
child process; its peak resident memory (VmHWM) and the distinct series of its line protocol are
compared with the bounds documented in docs/bounds.md.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fuzz.checks import fresh_gateway
from gateway import app
from gateway.enrichers import devices, evidence, names
from gateway.replay import replay_files
from gateway.samples import frames as fr
from gateway.samples.pcapwriter import PcapWriter
from gateway.sinks.lineproto import MemorySink
from tests.conftest import ROOT

T0 = 1_700_000_000 * 1_000_000_000
DEVICE = "02:00:00:00:00:01"
ROUTER = "02:00:00:00:00:fe"
DEVICE_IP = "192.168.1.10"
# Peak resident memory of one `mouchard replay` through any flood below (docs/bounds.md). The
# process itself (Python, numpy, the organisation and vendor tables, an 8 MiB read window) takes
# about 100 MiB; a flood adds its bounded tables on top, never memory that grows with the flood.
FLOOD_RSS_MB = 200
# What devices say about themselves (mDNS, DHCP, names asked), all devices together (docs/bounds.md).
EVIDENCE_MB = 64
# Distinct names one device asks for: ten times its cap. (Each new name costs about 0.3 ms
# of attribution when its bin is written, so a larger count only makes the test slower.)
QUERIED_NAMES = 20_000
# Six announcements of 8 KB fill a device's cap (`DEVICE_SHARE`); 2,000 devices at their cap would
# need more than the total (`EVIDENCE_BUDGET`), so the last ones are refused.
MDNS_DEVICES, MDNS_ROUNDS = 2_000, 6

# Runs the CLI, then records the process's own peak RSS. VmHWM belongs to the memory map made at
# exec, so unlike ru_maxrss (which Linux carries across exec) it does not count the forked pytest.
CHILD = """
import sys
from pathlib import Path
from gateway.cli import main
code = main(sys.argv[2:])
status = Path("/proc/self/status").read_text().splitlines()
Path(sys.argv[1]).write_text(next(line for line in status if line.startswith("VmHWM:")).split()[1])
sys.exit(code)
"""


@dataclass(frozen=True)
class Replayed:
    rss_mb: float
    lines: list[str]


def replay(capture: Path, folder: Path) -> Replayed:
    """`mouchard replay CAPTURE --output FILE` in a child process: its peak RSS and what it wrote."""
    out, peak = folder / "out.lp", folder / "peak_kb"
    config = folder / "mouchard.yaml"
    config.write_text(f"state_dir: {folder}/state\n")
    args = ["replay", str(capture), "--output", str(out), "--quiet", "--config", str(config)]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(peak), *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return Replayed(int(peak.read_text()) / 1024, out.read_text().splitlines())


def series_key(line: str) -> str:
    """Measurement and tag set of a line of line protocol: up to its first unescaped space."""
    at = 0
    while True:
        at = line.index(" ", at)
        if line[at - 1] != "\\":
            return line[:at]
        at += 1


def series(lines: list[str], measurement: str) -> set[str]:
    return {series_key(line) for line in lines if line.startswith(measurement + ",")}


def tag(key: str, name: str) -> str:
    return dict(part.split("=", 1) for part in key.split(",")[1:])[name]


def field(line: str, name: str) -> int:
    fields = line[len(series_key(line)) + 1 :].rsplit(" ", 1)[0]
    return int(dict(part.split("=", 1) for part in fields.split(","))[name].rstrip("i"))


def deep_size(value: object) -> int:
    """Bytes held by `value` and the strings, sets, dicts and lists inside it."""
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        size += sum(deep_size(k) + deep_size(v) for k, v in value.items())
    elif isinstance(value, set | list | tuple):
        size += sum(deep_size(item) for item in value)
    elif hasattr(value, "__slots__") and not isinstance(value, str | int):
        size += sum(deep_size(getattr(value, slot)) for slot in value.__slots__)
    return size


# ---------------------------------------------------------------- captures


def spoofed_macs(path: Path, count: int) -> None:
    """`count` MACs, each sending one packet from its own LAN address."""
    with PcapWriter(path) as pcap:
        for i in range(count):
            mac = f"02:5f:{i >> 24 & 255:02x}:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}"
            address = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
            flow = fr.FrameTemplate(mac, ROUTER, address, "93.184.216.34", sport=40000, dport=443)
            pcap.write(T0 + i * 10_000, flow.udp(b"x" * 32))


def many_destinations(path: Path, count: int) -> int:
    """One device sending a datagram to each of `count` public addresses; returns the bytes sent."""
    sent = 0
    with PcapWriter(path) as pcap:
        for i in range(count):
            remote = f"198.{18 + (i >> 16 & 1)}.{i >> 8 & 255}.{i & 255}"
            frame = fr.FrameTemplate(DEVICE, ROUTER, DEVICE_IP, remote, sport=40000, dport=443).udp(b"q" * 40)
            pcap.write(T0 + i * 100_000, frame)
            sent += len(frame)
    return sent


def _dns_parts(payload: bytes, marker: bytes, *, answer: bool) -> tuple[bytes, bytes]:
    """A DNS frame around `payload`, split at `marker`; UDP checksum zeroed (optional in IPv4)."""
    if answer:
        template = fr.FrameTemplate(ROUTER, DEVICE, "9.9.9.9", DEVICE_IP, sport=53, dport=40000)
    else:
        template = fr.FrameTemplate(DEVICE, ROUTER, DEVICE_IP, "9.9.9.9", sport=40000, dport=53)
    frame = template.udp(payload)
    frame = frame[:40] + b"\0\0" + frame[42:]
    at = frame.index(marker)
    return frame[:at], frame[at + len(marker) :]


def dns_answers(path: Path, count: int) -> None:
    """One query from the device, then `count` answers, each for a new name and a new address."""
    name = "n00000000.flood.example"
    answer = fr.dns_response(7, name, fr.DNS_A, [fr.address_record(name, "198.51.100.1")])
    head, tail = _dns_parts(answer, b"00000000", answer=True)
    tail = tail[:-4]  # the address, written per answer
    query = fr.FrameTemplate(DEVICE, ROUTER, DEVICE_IP, "9.9.9.9", sport=40000, dport=53)
    with PcapWriter(path) as pcap:
        pcap.write(T0, query.udp(fr.dns_query(7, name)))
        for i in range(count):
            address = (0xC6120000 + i).to_bytes(4, "big")  # 198.18.0.0 onwards, one per name
            pcap.write(T0 + 1000 + i * 10_000, head + b"%08d" % i + tail + address)


def dns_queries(path: Path, count: int) -> None:
    """The device asking for `count` different names."""
    head, tail = _dns_parts(fr.dns_query(7, "q00000000.flood.example"), b"00000000", answer=False)
    with PcapWriter(path) as pcap:
        for i in range(count):
            pcap.write(T0 + i * 100_000, head + b"%08d" % i + tail)


def huge_mdns(device: int, message: int) -> bytes:
    """An mDNS response of about 8 KB: five new service types, instances and hosts, 26 long TXT keys."""
    mark = f"{device:05d}{message:03d}"
    answers = []
    instance = b""
    for j in range(5):
        service = f"_s{mark}{j}{'x' * 40}._tcp.local"
        instance = fr.dns_label(f"i{mark}{j}" + "y" * 50) + fr.dns_name(service)
        answers.append(fr.ptr_record(service, instance))
        answers.append(fr.address_record(f"h{mark}{j}{'z' * 50}.local", f"192.168.{device % 250}.{1 + j}"))
    answers.append(fr.txt_record(instance, [f"k{mark}{j:02d}{'k' * 180}=" + "v" * 60 for j in range(26)]))
    return fr.dns_message(0, 0x8400, answers=answers)


# A response whose only record's name is a compression pointer to itself, and a question that loops.
MDNS_NAME_LOOP = bytes.fromhex("000084000000000100000000" + "c00c000c0001000011940002c00c")
MDNS_QUESTION_LOOP = bytes.fromhex("000000000001000000000000" + "c00c000c0001")


def mdns_flood(path: Path, count: int, rounds: int) -> None:
    """`count` devices, each sending `rounds` huge announcements, each followed by both name loops."""
    with PcapWriter(path) as pcap:
        at = 0
        for d in range(count):
            mac = f"02:00:00:{d >> 16 & 255:02x}:{d >> 8 & 255:02x}:{d & 255:02x}"
            address = f"192.168.{d >> 8 & 255}.{d & 255 or 1}"
            flow = fr.FrameTemplate(mac, "01:00:5e:00:00:fb", address, "224.0.0.251", sport=5353, dport=5353)
            for m in range(rounds):
                for payload in (huge_mdns(d, m), MDNS_NAME_LOOP, MDNS_QUESTION_LOOP):
                    pcap.write(T0 + at * 1000, flow.udp(payload))
                    at += 1


# ---------------------------------------------------------------- spoofed MACs


def test_thousands_of_spoofed_macs_stop_at_max_devices(tmp_path: Path) -> None:
    spoofed_macs(tmp_path / "macs.pcap", 3 * devices.MAX_DEVICES)
    done = replay(tmp_path / "macs.pcap", tmp_path)
    reported = {tag(key, "device") for key in series(done.lines, "device")}
    assert len(reported) == devices.MAX_DEVICES
    assert len(series(done.lines, "traffic")) <= devices.MAX_DEVICES
    assert len(series(done.lines, "event")) <= devices.MAX_DEVICES  # one new_device each
    assert done.rss_mb < FLOOD_RSS_MB, f"peak RSS {done.rss_mb:.0f} MiB"


# ---------------------------------------------------------------- 100,000 destinations

Flood = tuple[Replayed, int]


@pytest.fixture(scope="module")
def destinations_flood(tmp_path_factory: pytest.TempPathFactory) -> Flood:
    folder = tmp_path_factory.mktemp("destinations")
    sent = many_destinations(folder / "dest.pcap", 100_000)
    return replay(folder / "dest.pcap", folder), sent


def test_device_contacting_100k_destinations_has_every_byte_counted_once(destinations_flood: Flood) -> None:
    done, sent = destinations_flood
    traffic = [line for line in done.lines if line.startswith("traffic,")]
    assert sum(field(line, "bytes_out") for line in traffic) == sent


def test_device_contacting_100k_destinations_keeps_memory_bounded(destinations_flood: Flood) -> None:
    done, _sent = destinations_flood
    assert done.rss_mb < FLOOD_RSS_MB, f"peak RSS {done.rss_mb:.0f} MiB"


def test_device_contacting_100k_destinations_writes_bounded_series(destinations_flood: Flood) -> None:
    done, _sent = destinations_flood
    written = series(done.lines, "traffic")
    # the cap, and one overflow series: every address is unnamed, so a third party
    assert len(written) == app.MAX_DESTINATIONS_PER_DEVICE + 1
    (other,) = [key for key in written if tag(key, "host") == "other"]
    assert (tag(other, "party"), tag(other, "name_source")) == ("third", "none")


# ---------------------------------------------------------------- DNS


def test_dns_answers_for_a_million_names_keep_memory_bounded(tmp_path: Path) -> None:
    dns_answers(tmp_path / "answers.pcap", 1_000_000)
    done = replay(tmp_path / "answers.pcap", tmp_path)
    assert done.rss_mb < FLOOD_RSS_MB, f"peak RSS {done.rss_mb:.0f} MiB"
    assert len(series(done.lines, "traffic")) == 1  # the resolver, named by none of the answers


def test_name_table_keeps_its_bounds_through_a_million_names() -> None:
    table = names.NameTable()
    most = 0
    for i in range(1_000_000):
        table.add_dns(i, f"n{i:08d}.flood.example")
        table.add_flow(i, f"f{i:08d}.flood.example", names.SOURCE_SNI)
        most = max(most, len(table.names))
    assert len(table.dns) <= names.MAX_DNS_NAMES
    assert len(table.flows) <= names.MAX_FLOW_NAMES
    assert most <= names.MAX_NAMES


@pytest.fixture(scope="module")
def query_flood(tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    folder = tmp_path_factory.mktemp("queries")
    dns_queries(folder / "queries.pcap", QUERIED_NAMES)
    return replay(folder / "queries.pcap", folder)


def test_dns_queries_for_many_names_keep_memory_bounded(query_flood: Replayed) -> None:
    assert query_flood.rss_mb < FLOOD_RSS_MB, f"peak RSS {query_flood.rss_mb:.0f} MiB"
    queries = sum(field(line, "queries") for line in query_flood.lines if line.startswith("dns,"))
    assert queries == QUERIED_NAMES


def test_dns_queries_for_many_names_write_bounded_series(query_flood: Replayed) -> None:
    written = series(query_flood.lines, "dns")
    assert len(written) == app.MAX_DNS_NAMES_PER_DEVICE + 1
    other = [
        line
        for line in query_flood.lines
        if line.startswith("dns,") and tag(series_key(line), "host") == "other"
    ]
    assert sum(field(line, "queries") for line in other) == QUERIED_NAMES - app.MAX_DNS_NAMES_PER_DEVICE


# ---------------------------------------------------------------- mDNS


@dataclass(frozen=True)
class MdnsFlood:
    replayed: Replayed  # `mouchard replay` of the flood, in a child process
    evidence: evidence.EvidenceCollector  # the same capture replayed here


@pytest.fixture(scope="module")
def mdns(tmp_path_factory: pytest.TempPathFactory) -> MdnsFlood:
    """Devices filling their caps with huge announcements, between name loops, until the total is spent."""
    folder = tmp_path_factory.mktemp("mdns")
    mdns_flood(folder / "mdns.pcap", MDNS_DEVICES, MDNS_ROUNDS)
    gateway = fresh_gateway(MemorySink())
    replay_files(gateway, [folder / "mdns.pcap"])
    return MdnsFlood(replay(folder / "mdns.pcap", folder), gateway.evidence)


def test_mdns_flood_keeps_memory_bounded(mdns: MdnsFlood) -> None:
    assert mdns.replayed.rss_mb < FLOOD_RSS_MB, f"peak RSS {mdns.replayed.rss_mb:.0f} MiB"
    assert len(series(mdns.replayed.lines, "device")) == MDNS_DEVICES


def test_mdns_huge_txt_and_name_loops_keep_per_device_caps(mdns: MdnsFlood) -> None:
    collector = mdns.evidence
    assert len(collector.devices) == MDNS_DEVICES
    # the next service (the shortest thing announced) would not fit its device's cap or the total
    service = len("_s00000000" + "x" * 40 + "._tcp") + 49 + evidence.SET_ENTRY
    unseen = (evidence.MAX_DEVICES - len(collector.devices)) * evidence.BASE_CHARGE
    total_spent = evidence.EVIDENCE_BUDGET - unseen - collector.charged < service
    assert total_spent
    at_cap = [ev for ev in collector.devices.values() if evidence.DEVICE_SHARE - service < ev.charged]
    assert len(at_cap) > MDNS_DEVICES // 2  # the first devices filled their caps, the last were refused
    for ev in collector.devices.values():
        assert ev.charged <= evidence.DEVICE_SHARE
        assert len(ev.services) <= evidence.MAX_SERVICES
        assert len(ev.instances) <= evidence.MAX_SERVICES
        assert len(ev.mdns_hosts) <= evidence.MAX_SERVICES
        assert len(ev.properties) <= evidence.MAX_TXT_KEYS
        assert all(len(key) <= evidence.MAX_TXT_KEY for key in ev.properties)
        assert all(len(value) <= evidence.MAX_TXT_VALUE for value in ev.properties.values())
    assert all(len(ev.properties) > 0 for ev in at_cap)
    assert collector.stats.mdns_malformed == MDNS_DEVICES * MDNS_ROUNDS * 2  # every loop, counted
    assert collector.stats.refused >= MDNS_DEVICES * MDNS_ROUNDS  # what did not fit, counted


def test_mdns_evidence_of_all_devices_fits_the_total_budget(mdns: MdnsFlood) -> None:
    collector = mdns.evidence
    assert collector.charged == sum(ev.charged for ev in collector.devices.values())
    assert collector.charged <= evidence.EVIDENCE_BUDGET == EVIDENCE_MB * 2**20
    assert all(deep_size(ev) <= ev.charged for ev in collector.devices.values())  # each charged in full
    # All records together, with their keys and the table holding them: each record is charged its
    # entry in the table, so only the table's own header and first block (224 bytes) are not.
    assert deep_size(collector.devices) <= collector.charged + sys.getsizeof({0: 0})
