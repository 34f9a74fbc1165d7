"""Replay benchmark: `mouchard replay` against NFStream and a dpkt loop, on one generated capture.

    python bench/replay.py [--packets 1000000] [--keep DIR]

Writes an Ethernet pcap of a busy lab (40 devices, 5,000 remote addresses, a share of 802.1Q/QinQ frames
and of IPv6, TCP and UDP of mixed sizes, DNS answers and TLS ClientHellos so the name path works), then
runs each peer as its own process on it and prints wall time, packets/s, CPU time, peak RSS and the total
bytes each one counted. Peers: (a) `python -m gateway replay FILE --output OUT`, (b) NFStream 6
(`NFStreamer(source=FILE, statistical_analysis=False, n_dissections=0)`, all flows, bytes summed),
(c) dpkt (`dpkt.pcap.Reader`, Ethernet/IP/TCP/UDP parsed, bytes per (source MAC, destination IP)).
NFStream and dpkt come with `pip install -e '.[bench]'`; a missing one is skipped.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.samples import frames as fr
from gateway.samples.pcapwriter import PcapWriter

ROUTER_MAC = "00:07:cb:4e:11:01"
ROUTER_IPV4 = "192.168.1.1"
ROUTER_MAC_BYTES, ROUTER_IPV4_BYTES = fr.mac_bytes(ROUTER_MAC), fr.ip_bytes(ROUTER_IPV4)
SYN_OPTIONS = {mss: fr.syn_options(mss) for mss in (1440, 1460)}
PREFIX6 = "2a01:e0a:2b4:1d30::"
OUIS = ("68:db:f5", "8c:79:f5", "50:c7:bf", "f4:f5:d8", "3c:22:fb", "b8:27:eb", "44:65:0d", "d8:6c:63")
DOMAINS = (
    "amazon.com",
    "googleapis.com",
    "doubleclick.net",
    "samsungcloud.tv",
    "tplinkcloud.com",
    "netflix.com",
    "facebook.com",
    "apple.com",
    "spotify.com",
    "cloudfront.net",
    "akamaiedge.net",
)
V4_BLOCKS = (3, 13, 18, 34, 35, 52, 54, 104, 142, 151, 157, 172, 185, 198, 216)  # public /8s of clouds
ACTIVE_FLOWS = 1500  # flows open at once, interleaved packet by packet
GAP_US = 600  # mean gap between packets: a million packets span ten minutes
GENERATOR_VERSION = 3  # bump when the capture changes, so `--keep` folders regenerate


# ---------------------------------------------------------------- the capture


@dataclass(frozen=True, slots=True)
class BenchDevice:
    mac: bytes
    ipv4: bytes
    ipv6: bytes | None
    vlans: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Remote:
    ip: str
    packed: bytes
    name: str


@dataclass(slots=True)
class CaptureFacts:
    packets: int = 0
    bytes: int = 0
    vlan: int = 0
    ipv6: int = 0
    tcp: int = 0
    udp: int = 0
    dns_answers: int = 0
    client_hellos: int = 0
    flows: int = 0
    qinq: int = 0  # frames with an 802.1ad outer tag, and their bytes
    qinq_bytes: int = 0
    seconds: float = 0.0

    def describe(self) -> str:
        def share(count: int) -> str:
            return f"{100 * count / max(self.packets, 1):.0f} %"

        return (
            f"{self.packets:,} packets, {self.bytes:,} bytes, {self.flows:,} flows; VLAN-tagged "
            f"{share(self.vlan)} (QinQ {share(self.qinq)}), IPv6 {share(self.ipv6)}, TCP {share(self.tcp)}, "
            f"UDP {share(self.udp)}; {self.dns_answers:,} DNS answers, {self.client_hellos:,} ClientHellos"
        )


def make_devices(rng: random.Random, count: int) -> list[BenchDevice]:
    """Devices on 192.168.1.0/24; half speak IPv6; one in five is on VLAN 20, one in twenty on QinQ 100/20."""
    devices = []
    for index in range(count):
        mac = f"{OUIS[index % len(OUIS)]}:{index >> 8:02x}:{index & 0xFF:02x}:{rng.randrange(256):02x}"
        ipv6 = f"{PREFIX6}{index + 0x100:x}" if index % 2 == 0 else None
        vlans = (100, 20) if index % 20 == 3 else (20,) if index % 5 == 1 else ()
        packed6 = None if ipv6 is None else fr.ip_bytes(ipv6)
        devices.append(BenchDevice(fr.mac_bytes(mac), fr.ip_bytes(f"192.168.1.{10 + index}"), packed6, vlans))
    return devices


def make_remotes(rng: random.Random, count: int) -> tuple[list[Remote], list[Remote]]:
    """(IPv4, IPv6) remote servers, four in five IPv4, each with a host name."""
    v4, v6 = [], []
    for index in range(count):
        name = f"s{index}.{DOMAINS[index % len(DOMAINS)]}"
        if index % 5 == 4:
            address = f"2a00:1450:{rng.randrange(0x4000, 0x4010):x}::{index:x}"
            v6.append(Remote(address, fr.ip_bytes(address), name))
        else:
            block = V4_BLOCKS[index % len(V4_BLOCKS)]
            address = f"{block}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            v4.append(Remote(address, fr.ip_bytes(address), name))
    return v4, v6


@dataclass(slots=True)
class Flow:
    frames: Iterator[bytes]
    vlan: bool
    qinq: bool
    ipv6: bool
    tcp: bool


@dataclass(slots=True)
class Generator:
    """Flows of the benchmark lab. Payloads come from pools whose checksum sums are computed once; DNS
    messages and ClientHellos are built once per remote and reused (a DNS message gets a fresh id)."""

    rng: random.Random
    devices: list[BenchDevice]
    remotes_v4: list[Remote]
    remotes_v6: list[Remote]
    facts: CaptureFacts
    pools: dict[int, tuple[bytes, int]] = field(default_factory=dict)
    dns_cache: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    hello_cache: dict[str, tuple[bytes, int]] = field(default_factory=dict)

    def payload(self, size: int) -> tuple[bytes, int]:
        """Random bytes of `size` and their checksum sum; the first byte is a QUIC short header's."""
        if size not in self.pools:
            data = bytes([0x40 | self.rng.getrandbits(6)]) + self.rng.randbytes(size - 1)
            self.pools[size] = (data, fr.ones_sum(data))
        return self.pools[size]

    def new_flow(self) -> Flow:
        rng = self.rng
        device = self.devices[int(len(self.devices) * rng.random() ** 1.5)]
        use_v6 = device.ipv6 is not None and rng.random() < 0.45
        remotes = self.remotes_v6 if use_v6 else self.remotes_v4
        remote = remotes[int(len(remotes) * rng.random() ** 2)]
        local = device.ipv6 if use_v6 and device.ipv6 else device.ipv4
        kind = rng.random()
        length = min(int(rng.lognormvariate(3.0, 1.3)) + 4, 5000)
        self.facts.flows += 1
        tagged, qinq = bool(device.vlans), len(device.vlans) > 1
        if kind < 0.72:
            port = 443 if kind < 0.65 else 80
            frames = self.tcp_flow(device, local, remote, port, length)
            return Flow(frames, tagged, qinq, use_v6, tcp=True)
        port = 443 if kind < 0.87 else 20000 + int(rng.random() * 40000)
        return Flow(self.udp_flow(device, local, remote, port, length), tagged, qinq, use_v6, tcp=False)

    def templates(
        self, device: BenchDevice, local: bytes, remote: bytes, sport: int, dport: int
    ) -> tuple[fr.FrameTemplate, fr.FrameTemplate]:
        qinq = len(device.vlans) > 1
        label = self.rng.getrandbits(20) if len(local) == 16 else 0
        up = fr.FrameTemplate(
            device.mac,
            ROUTER_MAC_BYTES,
            local,
            remote,
            sport=sport,
            dport=dport,
            vlans=device.vlans,
            qinq=qinq,
            flow_label=label,
        )
        down = fr.FrameTemplate(
            ROUTER_MAC_BYTES,
            device.mac,
            remote,
            local,
            sport=dport,
            dport=sport,
            vlans=device.vlans,
            qinq=qinq,
            ttl=53,
            flow_label=label,
        )
        return up, down

    def dns(self, device: BenchDevice, remote: Remote) -> Iterator[bytes]:
        """The device's question to the router and the answer (A or AAAA, one CNAME)."""
        if remote.name not in self.dns_cache:
            qtype = fr.DNS_AAAA if ":" in remote.ip else fr.DNS_A
            answers = fr.dns_answer_chain(remote.name, ["edge." + remote.name], [remote.ip])
            self.dns_cache[remote.name] = (
                fr.dns_query(0, remote.name, qtype),
                fr.dns_response(0, remote.name, qtype, answers),
            )
        query, response = self.dns_cache[remote.name]
        txid, port = self.rng.getrandbits(16).to_bytes(2, "big"), 1024 + self.rng.getrandbits(15)
        up, down = self.templates(device, device.ipv4, ROUTER_IPV4_BYTES, port, 53)
        yield up.udp(txid + query[2:])
        self.facts.dns_answers += 1
        yield down.udp(txid + response[2:])

    def hello(self, remote: Remote, port: int) -> tuple[bytes, int]:
        """The first client segment: a TLS ClientHello on 443, an HTTP GET elsewhere."""
        key = f"{port}/{remote.name}"
        if key not in self.hello_cache:
            if port == 443:
                rng = self.rng
                hello = fr.tls_client_hello(
                    remote.name, random=rng.randbytes(32), key_share=rng.randbytes(32)
                )
            else:
                hello = fr.http_get(remote.name, "/")
            self.hello_cache[key] = (hello, fr.ones_sum(hello))
        self.facts.client_hellos += port == 443
        return self.hello_cache[key]

    def tcp_flow(
        self, device: BenchDevice, local: bytes, remote: Remote, port: int, length: int
    ) -> Iterator[bytes]:
        rng = self.rng
        if rng.random() < 0.9:
            yield from self.dns(device, remote)
        up, down = self.templates(device, local, remote.packed, 1024 + rng.getrandbits(15), port)
        mss = 1440 if len(local) == 16 else 1460
        client, server = rng.getrandbits(32), rng.getrandbits(32)
        yield up.tcp(client, 0, fr.SYN, options=SYN_OPTIONS[mss])
        yield down.tcp(server, client + 1, fr.SYN | fr.ACK, options=SYN_OPTIONS[mss])
        client, server = client + 1, server + 1
        yield up.tcp(client, server, fr.ACK)
        hello, hello_sum = self.hello(remote, port)
        yield up.tcp(client, server, fr.ACK | fr.PSH, hello, payload_sum=hello_sum)
        client += len(hello)
        random_, pools, up_tcp, down_tcp = rng.random, self.pools, up.tcp, down.tcp  # the hot loop's names
        ack, push = fr.ACK, fr.ACK | fr.PSH
        for index in range(length):
            if random_() < 0.65:
                size = mss if random_() < 0.55 else 100 + int(random_() * (mss - 100))
                data, total = pools.get(size) or self.payload(size)
                yield down_tcp(server, client, ack, data, payload_sum=total)
                server += size
                if index % 2:
                    yield up_tcp(client, server, ack)
            else:
                size = 40 + 40 * int(random_() * 15)
                data, total = pools.get(size) or self.payload(size)
                yield up_tcp(client, server, push, data, payload_sum=total)
                client += size
        yield up.tcp(client, server, fr.FIN | fr.ACK)
        yield down.tcp(server, client + 1, fr.FIN | fr.ACK)
        yield up.tcp(client + 1, server + 1, fr.ACK)

    def udp_flow(
        self, device: BenchDevice, local: bytes, remote: Remote, port: int, length: int
    ) -> Iterator[bytes]:
        rng = self.rng
        up, down = self.templates(device, local, remote.packed, 1024 + rng.getrandbits(15), port)
        random_, pools = rng.random, self.pools
        for _ in range(length):
            if random_() < 0.6:
                size = 1200 if random_() < 0.6 else 60 + int(random_() * 1100)
                data, total = pools.get(size) or self.payload(size)
                yield down.udp(data, payload_sum=total)
            else:
                size = 48 + 32 * int(random_() * 8)
                data, total = pools.get(size) or self.payload(size)
                yield up.udp(data, payload_sum=total)


def generate(path: Path, packets: int, devices: int, remotes: int, seed: int) -> CaptureFacts:
    """Write `packets` frames from ACTIVE_FLOWS interleaved flows; returns what was written."""
    rng = random.Random(seed)  # noqa: S311 reproducible traffic, not secrets
    facts = CaptureFacts()
    v4, v6 = make_remotes(rng, remotes)
    gen = Generator(rng, make_devices(rng, devices), v4, v6, facts)
    active = [gen.new_flow() for _ in range(ACTIVE_FLOWS)]
    started = time.perf_counter()
    ts_ns = 1_730_836_200 * 1_000_000_000
    random_ = rng.random
    written = total = vlan = ipv6 = tcp = qinq = qinq_bytes = 0
    with PcapWriter(path) as writer:
        write = writer.write
        while written < packets:
            slot = int(random_() * ACTIVE_FLOWS)
            flow = active[slot]
            frame = next(flow.frames, None)
            if frame is None:
                active[slot] = gen.new_flow()
                continue
            ts_ns += 1000 + int(random_() * 2 * GAP_US) * 1000
            write(ts_ns, frame)
            written += 1
            total += len(frame)
            if flow.qinq:
                qinq += 1
                qinq_bytes += len(frame)
            vlan += flow.vlan
            ipv6 += flow.ipv6
            tcp += flow.tcp
    facts.packets, facts.bytes, facts.vlan, facts.ipv6, facts.tcp = written, total, vlan, ipv6, tcp
    facts.udp = written - tcp
    facts.qinq, facts.qinq_bytes = qinq, qinq_bytes
    facts.seconds = time.perf_counter() - started
    return facts


# ---------------------------------------------------------------- the peers, as child processes


def child_nfstream(path: str) -> dict[str, int]:
    from nfstream import NFStreamer  # type: ignore[import-not-found]

    flows = packets = total = 0
    for flow in NFStreamer(source=path, statistical_analysis=False, n_dissections=0):
        flows += 1
        packets += flow.bidirectional_packets
        total += flow.bidirectional_bytes
    return {"packets": packets, "bytes": total, "flows": flows}


def child_dpkt(path: str) -> dict[str, int]:
    import dpkt  # type: ignore[import-not-found]

    per_key: dict[tuple[bytes, bytes], int] = {}
    packets = total = 0
    with Path(path).open("rb") as handle:
        for _ts, buf in dpkt.pcap.Reader(handle):
            packets += 1
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
                continue
            transport = ip.data
            if isinstance(transport, dpkt.tcp.TCP | dpkt.udp.UDP):
                _ports = (transport.sport, transport.dport)
            key = (eth.src, ip.dst)
            per_key[key] = per_key.get(key, 0) + len(buf)
            total += len(buf)
    return {"packets": packets, "bytes": total, "flows": len(per_key)}


CHILDREN = {"nfstream": child_nfstream, "dpkt": child_dpkt}


@dataclass(slots=True)
class Result:
    peer: str
    status: str = "ok"
    wall_s: float = 0.0
    cpu_s: float = 0.0
    rss_mb: float = 0.0
    bytes: int | None = None


def run_child(peer: str, argv: Sequence[str], workdir: Path) -> tuple[Result, str]:
    """Run one peer; wall clock around the process, its own rusage (and its reaped children's) via wait4."""
    result = Result(peer)
    with (workdir / f"{peer}.stdout").open("w") as out, (workdir / f"{peer}.stderr").open("w") as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        result.wall_s = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
    result.cpu_s = usage.ru_utime + usage.ru_stime
    result.rss_mb = usage.ru_maxrss / 1024  # Linux reports kilobytes
    if process.returncode != 0:
        lines = (workdir / f"{peer}.stderr").read_text(errors="replace").strip().splitlines()
        result.status = f"failed (exit {process.returncode}): {lines[-1] if lines else 'no message'}"
    return result, (workdir / f"{peer}.stdout").read_text(errors="replace")


_UNESCAPED_SPACE = re.compile(r"(?<!\\) ")


def line_protocol_bytes(path: Path) -> int:
    """bytes_out + bytes_in over the `traffic` points of a line-protocol file."""
    total = 0
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.startswith(("traffic,", "traffic ")):
                continue
            parts = _UNESCAPED_SPACE.split(line.rstrip("\n"))
            for pair in parts[1].split(",") if len(parts) > 1 else ():
                key, _, value = pair.partition("=")
                if key in ("bytes_out", "bytes_in"):
                    total += int(value.rstrip("i"))
    return total


def run_mouchard(capture: Path, workdir: Path, output: str) -> Result:
    if importlib.util.find_spec("gateway.cli") is None:
        return Result("mouchard", status="skipped: gateway.cli is not there yet")
    target = Path(output) if output != "/dev/null" else None
    argv = [sys.executable, "-m", "gateway", "replay", str(capture), "--output", output]
    result, _ = run_child("mouchard", argv, workdir)
    if result.status == "ok" and target is not None and target.exists():
        result.bytes = line_protocol_bytes(target)
    return result


def run_peer(peer: str, capture: Path, workdir: Path) -> Result:
    if importlib.util.find_spec(peer) is None:
        return Result(peer, status=f"skipped: {peer} missing (pip install -e '.[bench]')")
    result, stdout = run_child(peer, [sys.executable, __file__, "--child", peer, str(capture)], workdir)
    if result.status == "ok":
        result.bytes = int(json.loads(stdout.strip().splitlines()[-1])["bytes"])
    return result


# ---------------------------------------------------------------- report


ROW = "{:<10} {:>8} {:>8} {:>11} {:>12} {:>15}"


def report(results: list[Result], facts: CaptureFacts) -> None:
    packets = facts.packets
    print("\n" + ROW.format("peer", "wall s", "CPU s", "packets/s", "peak RSS MB", "bytes counted"))
    for result in results:
        if result.status != "ok":
            print(f"{result.peer:<10} {result.status}")
            continue
        counted = "-" if result.bytes is None else f"{result.bytes:,}"
        rate = f"{packets / result.wall_s:,.0f}"
        print(
            ROW.format(
                result.peer,
                f"{result.wall_s:.2f}",
                f"{result.cpu_s:.2f}",
                rate,
                f"{result.rss_mb:,.0f}",
                counted,
            )
        )
    ok = {result.peer: result for result in results if result.status == "ok"}
    if "mouchard" in ok:
        for peer in ("nfstream", "dpkt"):
            if peer in ok:
                ratio = ok[peer].wall_s / ok["mouchard"].wall_s
                print(
                    f"mouchard / {peer}: {ratio:.2f}x the packets/s, "
                    f"{ok['mouchard'].rss_mb / max(ok[peer].rss_mb, 1):.2f}x the peak RSS"
                )
    print(f"bytes cross-check (IPv4/IPv6 frame bytes written: {facts.bytes:,}):")
    for result in results:
        if result.bytes is not None:
            delta = result.bytes - facts.bytes
            verdict = "equal" if delta == 0 else f"{delta:+,}"
            if delta and delta == -facts.qinq_bytes:
                verdict += f": exactly the {facts.qinq:,} QinQ (802.1ad) frames, which it does not decode"
            print(f"  {result.peer:<10} {result.bytes:>15,}  {verdict}")


# ---------------------------------------------------------------- command line


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--packets", type=int, default=1_000_000, help="packets to generate (default 1,000,000)"
    )
    parser.add_argument("--devices", type=int, default=40, help="LAN devices (default 40, at most 240)")
    parser.add_argument("--remotes", type=int, default=5000, help="remote addresses (default 5,000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep the capture and outputs in DIR, and reuse a capture made with the same options",
    )
    parser.add_argument("--peers", default="mouchard,nfstream,dpkt", help="comma-separated peers to run")
    parser.add_argument(
        "--mouchard-output",
        metavar="FILE",
        help="mouchard's --output (default: a file in the work folder, summed for the "
        "cross-check; /dev/null skips it)",
    )
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("capture", nargs="?", help=argparse.SUPPRESS)
    parsed = parser.parse_args(argv)
    if not 1 <= parsed.devices <= 240:
        parser.error("--devices must be between 1 and 240 (one /24)")
    return parsed


def prepare_capture(args: argparse.Namespace, workdir: Path) -> tuple[Path, CaptureFacts]:
    capture = workdir / "bench.pcap"
    sidecar = workdir / "bench.json"
    options = {"packets": args.packets, "devices": args.devices, "remotes": args.remotes, "seed": args.seed,
               "generator": GENERATOR_VERSION}  # fmt: skip
    if capture.exists() and sidecar.exists():
        saved = json.loads(sidecar.read_text())
        if saved.get("options") == options:
            facts = CaptureFacts(**saved["facts"])
            print(f"reusing {capture}: {facts.describe()}")
            return capture, facts
    facts = generate(capture, args.packets, args.devices, args.remotes, args.seed)
    sidecar.write_text(json.dumps({"options": options, "facts": dataclasses.asdict(facts)}))
    print(
        f"generated {capture} in {facts.seconds:.1f} s "
        f"({facts.packets / max(facts.seconds, 1e-9):,.0f} packets/s): {facts.describe()}"
    )
    return capture, facts


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child](args.capture)))
        return 0
    with tempfile.TemporaryDirectory(prefix="mouchard-bench-") as scratch:
        workdir = args.keep or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        capture, facts = prepare_capture(args, workdir)
        peers = [peer.strip() for peer in args.peers.split(",") if peer.strip()]
        results = []
        for peer in peers:
            print(f"running {peer} ...", flush=True)
            if peer == "mouchard":
                output = args.mouchard_output or str(workdir / "mouchard.lp")
                results.append(run_mouchard(capture, workdir, output))
            else:
                results.append(run_peer(peer, capture, workdir))
        report(results, facts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
