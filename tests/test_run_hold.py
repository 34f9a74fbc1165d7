"""How long the live gateway holds a bin before writing it: Grafana shows a bin 10-20 s after it ends,
not the 30-40 s a replay waits for a merged file's stragglers; names still reach the handshake."""

from __future__ import annotations

from pathlib import Path

from gateway.app import REPLAY_HOLD_S, Gateway
from gateway.config import default_config
from gateway.run import live_hold_s
from gateway.samples import frames as fr
from gateway.samples.pcapwriter import PcapWriter
from gateway.sinks.lineproto import MemorySink
from gateway.sources.capfile import open_capture

NS = 1_000_000_000
T0 = 1_700_000_000  # a multiple of 10: bin 0 is [T0, T0 + 10)
DEVICE, ROUTER = "02:00:00:00:00:01", "02:00:00:00:00:fe"


def bin_zero_capture(path: Path) -> None:
    """A device's datagrams in the first bin, the last one 0.1 s before the bin ends."""
    flow = fr.FrameTemplate(DEVICE, ROUTER, "192.168.1.20", "198.51.100.7", sport=40000, dport=443)
    with PcapWriter(path) as pcap:
        for t in (1.0, 5.0, 9.9):
            pcap.write(int((T0 + t) * NS), flow.udp(b"x" * 100))


def written_bins(hold_s: int, capture: Path, now_s: float) -> set[int]:
    """The traffic bins written once the clock reads ``now_s`` (no newer packet has come)."""
    sink = MemorySink()
    gateway = Gateway(default_config(), sink, hold_s=hold_s)
    for batch in open_capture(capture):
        gateway.process(batch)
    gateway.tick(int(now_s * NS))
    return {int(line.rsplit(" ", 1)[1]) // NS for line in sink.lines if line.startswith("traffic,")}


def test_the_live_gateway_writes_a_bin_once_the_next_one_is_over(tmp_path: Path) -> None:
    capture = tmp_path / "bin0.pcap"
    bin_zero_capture(capture)
    hold = live_hold_s(default_config().aggregation.interval_s)
    assert written_bins(hold, capture, T0 + 19.5) == set()  # the next bin is still open: names may come
    assert written_bins(hold, capture, T0 + 20.5) == {T0}
    assert written_bins(REPLAY_HOLD_S, capture, T0 + 20.5) == set()  # a replay waits for stragglers
    assert written_bins(REPLAY_HOLD_S, capture, T0 + 40.5) == {T0}
