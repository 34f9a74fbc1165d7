"""Live load benchmark: `mouchard run`'s loop under tcpreplay, in namespaces it creates and removes.

    python bench/live.py [--rates 50000,100000,150000,200000,250000,300000] [--seconds 4]
                         [--conntrack-rate 100000] [--modes pcap,conntrack]

Three network namespaces: ``src`` (tcpreplay), ``gw`` (the gateway: routes LAN to WAN, runs
Mouchard's live loop) and ``wan`` (a next hop that swallows the traffic). A generated capture of
small frames (UDP datagrams of 60-160 bytes, 160 flows of 40 LAN devices to TEST-NET-3, written
with `gateway.samples.frames`, its destination MAC the gateway's) is replayed at rising
``tcpreplay --pps`` rates onto the gateway's LAN interface.

- **pcap mode**: for each rate, the highest lossless rate is the last one where libpcap's kernel
  drop counter stayed 0 and the gateway processed every packet tcpreplay sent (packets lost before
  the capture, in the veth backlog, count as loss too); the run stops at the first lossy rate.
- **conntrack mode** (router mode): at one fixed rate, the gateway process's CPU share (CPU seconds
  over wall seconds of the replay), beside pcap mode's at the same rate; the kernel forwards and
  counts, Mouchard reads the flow table.

The gateway side is `gateway.run.LiveGateway` with the real capture (and conntrack) sources, the
real `Gateway`, and a sink that only counts lines (InfluxDB would compete for the same two cores).
It runs as a child process in the ``gw`` namespace (``--child``); CPU is measured by the child
between the start and the end of each replay. Needs root, tcpreplay, nft and ethtool. Timing
belongs here, never in a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.samples import frames as fr  # noqa: E402
from gateway.samples.pcapwriter import PcapWriter  # noqa: E402
from tests.netns import Namespace, NetnsLab  # noqa: E402

GW_LAN, GW_WAN, WAN_HOP = "192.168.77.1", "198.51.100.1", "198.51.100.2"
GW_MAC, SRC_MAC = "02:00:00:00:77:01", "02:00:00:00:77:fe"
REMOTE_NET = "203.0.113.0/24"
DEVICES, FLOWS, FRAMES = 40, 160, 200_000
RATES = (50_000, 100_000, 150_000, 200_000, 250_000, 300_000, 400_000, 500_000)


# ---------------------------------------------------------------- the capture


def generate(path: Path, frames: int, seed: int = 1) -> int:
    """Small UDP frames from LAN devices to remote addresses, addressed to the gateway's MAC."""
    rng = random.Random(seed)  # noqa: S311  (a reproducible capture, not a secret)
    flows = []
    for _ in range(FLOWS):
        dev = rng.randrange(DEVICES)
        remote = f"203.0.113.{rng.randrange(1, 255)}"
        flows.append(
            fr.FrameTemplate(
                f"02:00:00:00:01:{dev:02x}",
                GW_MAC,
                f"192.168.77.{10 + dev}",
                remote,
                sport=rng.randrange(1024, 65535),
                dport=rng.choice((443, 123, 5683, 8883)),
            )
        )
    payloads = [bytes(rng.randrange(256) for _ in range(n)) for n in (18, 40, 64, 96, 118)]
    total = 0
    with PcapWriter(path) as out:
        for i in range(frames):
            frame = rng.choice(flows).udp(rng.choice(payloads), ident=i & 0xFFFF)
            out.write(i * 10_000, frame)
            total += len(frame)
    return total


# ---------------------------------------------------------------- the gateway side (child process)


def child(mode: str, interface: str) -> int:
    """Mouchard's live loop on ``interface``; SIGUSR1 marks the start of a measurement, SIGUSR2 its
    end (a JSON line with the counters since the mark), SIGTERM stops."""
    from gateway.app import Gateway
    from gateway.config import CaptureSource, default_config
    from gateway.run import LiveGateway, live_hold_s
    from gateway.sources.conntrack import ConntrackSource, names_filter, prepare_kernel
    from gateway.sources.live import LiveCapture

    class CountingSink:
        lines = 0

        def write(self, lines: list[str]) -> None:
            self.lines += len(lines)

        def close(self) -> None: ...

        def describe(self) -> str:
            return "a line counter"

    base = default_config()
    source = CaptureSource.CONNTRACK if mode == "conntrack" else CaptureSource.PCAP
    capture_cfg = base.capture.model_copy(update={"interface": interface, "source": source})
    cfg = base.model_copy(update={"capture": capture_cfg})
    flows = None
    bpf = ""
    if mode == "conntrack":
        for note in prepare_kernel():
            print(note, file=sys.stderr)
        flows = ConntrackSource(interface)
        bpf = names_filter()
    capture = LiveCapture(interface, cfg.capture.snaplen, bpf)
    sink = CountingSink()
    gateway = Gateway(cfg, sink, hold_s=live_hold_s(cfg.aggregation.interval_s))
    live = LiveGateway(cfg, gateway, capture, None, flows)
    mark: dict[str, float] = {}

    def snapshot() -> dict[str, float]:
        use = resource.getrusage(resource.RUSAGE_SELF)
        st = capture.stats()
        return {
            "wall": time.monotonic(),
            "cpu": use.ru_utime + use.ru_stime,
            "received": st.received,
            "dropped": st.dropped,
            "if_dropped": st.if_dropped,
            "packets": gateway.stats.packets,
            "flow_rows": flows.stats.rows if flows else 0,
            "events": flows.stats.events if flows else 0,
        }

    def start() -> None:
        live._readable()  # what arrived before the mark is not measured
        mark.update(snapshot())

    def report() -> None:
        live._readable()
        if flows is not None:  # router mode: one table dump inside the window, as every bin has one
            live._dump(flows)
        now = snapshot()
        print(json.dumps({k: now[k] - mark.get(k, 0) for k in now}), flush=True)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, start)
        loop.add_signal_handler(signal.SIGUSR2, report)
        await live.run(ready=lambda: print("ready", flush=True))

    try:
        asyncio.run(main())
    finally:
        capture.close()
        if flows:
            flows.close()
    return 0


# ---------------------------------------------------------------- the parent


@dataclass
class Step:
    mode: str
    rate: int
    sent: int
    actual_pps: float
    received: int
    dropped: int
    processed: int
    cpu_share: float
    cpu_s: float
    flow_rows: int = 0

    @property
    def us_per_packet(self) -> float:
        """Gateway CPU per packet it processed: the load-independent cost (1e6 / it = one core's rate)."""
        return self.cpu_s / self.processed * 1e6 if self.processed else 0.0

    @property
    def lossless(self) -> bool:
        """No kernel drop; in pcap mode, every packet sent also reached the gateway's pipeline (the
        router-mode capture takes only its narrow filter's packets, so only drops count there)."""
        if self.mode != "pcap":
            return self.dropped == 0
        return self.dropped == 0 and self.processed >= self.sent


def build(lab: NetnsLab) -> tuple[Namespace, Namespace]:
    src, gw, wan = lab.namespace("src"), lab.namespace("gw"), lab.namespace("wan")
    lab.veth(src, "src0", gw, "gwlan")
    lab.veth(gw, "gwwan", wan, "wan0")
    for ns in (src, gw, wan):
        ns.run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
    gw.ip("link", "set", "gwlan", "address", GW_MAC)
    src.ip("link", "set", "src0", "address", SRC_MAC)
    gw.ip("addr", "add", f"{GW_LAN}/24", "dev", "gwlan")
    gw.ip("addr", "add", f"{GW_WAN}/24", "dev", "gwwan")
    wan.ip("addr", "add", f"{WAN_HOP}/24", "dev", "wan0")
    gw.ip("route", "add", REMOTE_NET, "via", WAN_HOP)
    gw.run("sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.gwlan.rp_filter=0")
    for ns, iface in ((src, "src0"), (gw, "gwlan"), (gw, "gwwan"), (wan, "wan0")):
        ns.run("ethtool", "-K", iface, "gro", "off", "gso", "off", "tso", "off", check=False)
    # the devices' neighbour entries on the gateway, as their ARP would have left them
    for dev in range(DEVICES):
        gw.ip(
            "neigh",
            "replace",
            f"192.168.77.{10 + dev}",
            "lladdr",
            f"02:00:00:00:01:{dev:02x}",
            "dev",
            "gwlan",
        )
    return src, gw


def replay(src: Namespace, capture: Path, rate: int, seconds: float) -> tuple[int, float]:
    """(packets sent, actual packets/s) of one tcpreplay run."""
    count = int(rate * seconds)
    done = src.run(
        "tcpreplay",
        "-i",
        "src0",
        "-K",
        f"--pps={rate}",
        f"--limit={count}",
        "--loop=0",
        str(capture),
        timeout=seconds * 4 + 30,
    )
    sent = int(_field(done.stdout, r"Successful packets:\s+(\d+)") or count)
    rated = _field(done.stdout, r"Rated:.*?,\s*([\d.]+) pps") or str(rate)
    return sent, float(rated)


def _field(text: str, pattern: str) -> str | None:
    m = re.search(pattern, text)
    return m.group(1) if m else None


def measure(
    forward: bool,
    gw: Namespace,
    src: Namespace,
    mode: str,
    capture: Path,
    rates: Sequence[int],
    seconds: float,
    stop_at_loss: bool,
) -> list[Step]:
    gw.run("sysctl", "-qw", f"net.ipv4.ip_forward={int(forward)}")
    proc = gw.popen(sys.executable, str(Path(__file__).resolve()), "--child", mode, "gwlan", cwd=ROOT)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"the gateway did not start: {proc.stderr.read() if proc.stderr else ''}")
    steps = []
    try:
        for rate in rates:
            time.sleep(1.0)
            proc.send_signal(signal.SIGUSR1)
            time.sleep(0.2)
            started = time.monotonic()
            sent, actual = replay(src, capture, rate, seconds)
            time.sleep(1.5)  # the loop drains the ring buffer
            proc.send_signal(signal.SIGUSR2)
            got = json.loads(proc.stdout.readline())
            wall = time.monotonic() - started
            step = Step(
                mode,
                rate,
                sent,
                actual,
                int(got["received"]),
                int(got["dropped"] + got["if_dropped"]),
                int(got["packets"]),
                got["cpu"] / wall,
                got["cpu"],
                int(got["flow_rows"]),
            )
            steps.append(step)
            where = f"{mode}{'+fwd' if forward else ''}"
            print(
                f"  {where:14} {rate:>9,} pps offered, {actual:>9,.0f} sent/s: received {step.received:,} "
                f"of {sent:,}, kernel drops {step.dropped:,}, CPU {step.cpu_share:.1%}",
                flush=True,
            )
            if stop_at_loss and not step.lossless:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
    return steps


def report(pcap: list[Step], conntrack: list[Step], reference: list[Step]) -> None:
    print(
        "\nmode              offered pps   sent pps   received  kernel drops  processed  CPU share"
        "  µs CPU/packet  lossless"
    )
    rows = [("pcap", s) for s in pcap] + [("conntrack+fwd", s) for s in conntrack]
    rows += [("pcap+fwd", s) for s in reference]
    for label, s in rows:
        print(
            f"{label:14} {s.rate:>14,} {s.actual_pps:>10,.0f} {s.received:>10,} {s.dropped:>13,} "
            f"{s.processed:>10,} {s.cpu_share:>10.1%} {s.us_per_packet:>14.1f}  "
            f"{'yes' if s.lossless else 'no'}"
        )
    lossless = [s for s in pcap if s.lossless]
    if lossless:
        best = max(lossless, key=lambda s: s.actual_pps)
        print(
            f"\npcap mode: highest lossless rate {best.actual_pps:,.0f} packets/s sent "
            f"({best.rate:,} offered)"
        )
    else:
        print("\npcap mode: lossy at every rate tried")
    costs = [s.us_per_packet for s in pcap if s.processed]
    if costs:
        cost = sorted(costs)[len(costs) // 2]
        print(
            f"pcap mode costs {cost:.1f} µs of CPU per packet (median over the rates): one whole core "
            f"would keep up with about {1e6 / cost:,.0f} packets/s"
        )
    short = [s for s in pcap if s.actual_pps < 0.9 * s.rate]
    if short:
        print(
            f"tcpreplay sent less than offered from {short[0].rate:,} packets/s on: on a veth the receiving "
            "side's kernel work (capture tap, IP input) runs on the sender's core, so the sender is the limit"
        )
    for c in conntrack:
        same = [r for r in reference if r.rate == c.rate]
        versus = f" (pcap mode at the same rate: {same[0].cpu_share:.1%})" if same else ""
        print(
            f"conntrack mode at {c.rate:,} packets/s offered ({c.actual_pps:,.0f} forwarded): "
            f"{c.cpu_share:.1%} of one core{versus}, {c.flow_rows:,} flow readings from the kernel's table"
        )


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default=",".join(map(str, RATES)), help="offered packets/s, rising")
    p.add_argument("--seconds", type=float, default=4.0, help="length of each replay")
    p.add_argument("--conntrack-rate", type=int, default=50_000, help="fixed rate for conntrack mode")
    p.add_argument("--modes", default="pcap,conntrack")
    p.add_argument("--frames", type=int, default=FRAMES, help="frames in the generated capture")
    p.add_argument("--child", nargs=2, metavar=("MODE", "IFACE"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    if args.child:
        return child(*args.child)
    if os.geteuid() != 0:
        print("bench/live.py needs root (network namespaces, tcpreplay, nft)", file=sys.stderr)
        return 2
    rates = [int(r) for r in args.rates.split(",")]
    modes = args.modes.split(",")
    with tempfile.TemporaryDirectory(prefix="mouchard-live-") as tmp, NetnsLab() as lab:
        capture = Path(tmp) / "small.pcap"
        octets = generate(capture, args.frames)
        print(
            f"generated {args.frames:,} frames ({octets / args.frames:.0f} bytes on average); "
            f"{args.seconds:g} s per rate",
            flush=True,
        )
        src, gw = build(lab)
        print(f"load average before: {os.getloadavg()[0]:.2f} (on {os.cpu_count()} cores)", flush=True)
        pcap: list[Step] = []
        conntrack: list[Step] = []
        reference: list[Step] = []
        if "pcap" in modes:  # capture only: the gateway does not forward, as on a mirror port
            pcap = measure(False, gw, src, "pcap", capture, rates, args.seconds, True)
        if "conntrack" in modes:  # router mode needs routed traffic; pcap mode beside it, same load
            fixed = [args.conntrack_rate]
            conntrack = measure(True, gw, src, "conntrack", capture, fixed, args.seconds, False)
            reference = measure(True, gw, src, "pcap", capture, fixed, args.seconds, False)
        report(pcap, conntrack, reference)
    return 0


if __name__ == "__main__":
    sys.exit(main())
