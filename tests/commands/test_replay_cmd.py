"""`mouchard replay`'s summary says what the bounds folded, so a lab knows why a series reads `other`."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import app
from gateway.cli import main
from gateway.samples import frames as fr
from gateway.samples.pcapwriter import PcapWriter

T0 = 1_700_000_000 * 1_000_000_000
DEVICE, ROUTER = "02:00:00:00:00:01", "02:00:00:00:00:fe"


def scan(path: Path, count: int) -> None:
    """One device sending a datagram to each of ``count`` public addresses."""
    with PcapWriter(path) as pcap:
        for i in range(count):
            frame = fr.FrameTemplate(
                DEVICE, ROUTER, "192.168.1.20", f"198.18.0.{i + 1}", sport=40000, dport=443
            )
            pcap.write(T0 + i * 100_000, frame.udp(b"q" * 40))


def test_the_summary_says_how_much_traffic_the_destination_cap_folded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(app, "MAX_DESTINATIONS_PER_DEVICE", 10)
    scan(tmp_path / "scan.pcap", 25)
    config = tmp_path / "mouchard.yaml"
    config.write_text(f"state_dir: {tmp_path}/state\n")
    out = tmp_path / "out.lp"
    assert main(["replay", str(tmp_path / "scan.pcap"), "--output", str(out), "--config", str(config)]) == 0
    captured = capsys.readouterr()
    printed = " ".join((captured.out + captured.err).split())
    assert "15 traffic rows of devices past their destination cap counted under host=other" in printed
    hosts = {
        line.split("host=")[1].split(",")[0] for line in out.read_text().splitlines() if "traffic," in line
    }
    assert len(hosts) == 11
    assert "other" in hosts
