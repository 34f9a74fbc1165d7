"""The v1 sink against Debian's InfluxDB 1.6.7, stopped and started under it: nothing lost, nothing twice.

Totals per device in InfluxDB are held to what the gateway counted and to tshark's count.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.cli import main
from gateway.commands import replay_cmd
from gateway.replay import replay_files
from gateway.samples.lab import LAB_START_NS
from gateway.sinks.factory import open_influx_sink
from gateway.sinks.lineproto import LineFileSink
from gateway.sources.capfile import open_capture
from tests.conftest import free_port
from tests.sinks.conftest import (
    FAST,
    Server,
    assert_totals,
    config,
    influx_count,
    influx_device_totals,
    influx_query,
    influx_write,
    wait_until,
    write_config,
)


def test_replay_with_influxdb_stopped_midway_then_flushed(
    own_influxd: Server, lab_parts: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(tmp_path, own_influxd.url, "midway")
    sink = open_influx_sink(cfg, timing=FAST)
    gateway = Gateway(cfg, sink)
    half = sum(p.stat().st_size for p in lab_parts) // 2
    seen = 0

    def progress(n: int) -> None:
        nonlocal seen
        seen += n
        if seen >= half and seen - n < half:
            own_influxd.stop()

    try:
        replay_files(gateway, lab_parts, progress)
    finally:
        sink.close()
    report = sink.report()
    assert report.spooled > 0
    assert report.spool.points > 0  # InfluxDB is still down: it waits on disk
    own_influxd.start()
    config_file = tmp_path / "mouchard.yaml"
    capsys.readouterr()
    assert main(["spool", "flush", "--config", str(config_file)]) == 0
    assert f"delivered {report.spool.points:,} points" in capsys.readouterr().out
    assert_totals(influx_device_totals(own_influxd.url, "midway"), gateway, lab_parts)
    assert main(["spool", "flush", "--config", str(config_file)]) == 0
    assert "the spool is empty" in capsys.readouterr().out  # the second flush delivers nothing


def test_the_running_sink_delivers_its_spool_when_influxdb_is_back(
    own_influxd: Server, lab_parts: list[Path], tmp_path: Path
) -> None:
    """A live gateway: no close, no flush command; the sink's own thread catches up."""
    cfg = config(tmp_path, own_influxd.url, "live")
    sink = open_influx_sink(cfg, timing=FAST)
    gateway = Gateway(cfg, sink)
    try:
        for i, part in enumerate(lab_parts):
            if i == 1:
                own_influxd.stop()
            for batch in open_capture(part):
                gateway.process(batch)
            if i == 1:
                assert wait_until(lambda: sink.report().spool.points > 0, 5)
                own_influxd.start()
        gateway.finish()
        assert wait_until(lambda: sink.report().spool.batches == 0, 15), "the spool was not delivered"
    finally:
        sink.close()
    assert sink.report().spooled > 0
    assert_totals(influx_device_totals(own_influxd.url, "live"), gateway, lab_parts)


def test_a_replay_with_influxdb_down_spools_says_so_and_exits_0(
    own_influxd: Server,
    lab_parts: list[Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(replay_cmd, "REPLAY_TIMING", FAST)
    down = write_config(tmp_path, f"http://127.0.0.1:{free_port()}", "down")
    assert main(["replay", *map(str, lab_parts), "--config", str(down), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "InfluxDB was unavailable" in err
    assert "points went to the spool" in err
    assert main(["spool", "status", "--config", str(down)]) == 0
    assert "points" in capsys.readouterr().out
    up = write_config(tmp_path, own_influxd.url, "down")  # same state_dir, InfluxDB now reachable
    assert main(["spool", "flush", "--config", str(up)]) == 0
    lines = tmp_path / "x.lp"
    assert main(["replay", *map(str, lab_parts), "--config", str(up), "--output", str(lines)]) == 0
    expected = _totals_of_lines(lines)
    assert influx_device_totals(own_influxd.url, "down") == expected


def _totals_of_lines(path: Path) -> dict[str, int]:
    """bytes_out + bytes_in per device from a line-protocol file."""
    totals: dict[str, int] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("traffic,"):
            device = line.split(",device=", 1)[1].split(",", 1)[0].split(" ", 1)[0]
            fields = dict(kv.split("=") for kv in line.rsplit(" ", 2)[1].split(","))
            n = int(fields["bytes_out"].rstrip("i")) + int(fields["bytes_in"].rstrip("i"))
            totals[device] = totals.get(device, 0) + n
    return totals


def test_bad_points_are_dropped_counted_and_logged_once(
    own_influxd: Server, lab_parts: list[Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A field type conflict: InfluxDB refuses those points, writes the others; no retry, no spool."""
    lines_file = tmp_path / "lab.lp"
    gateway = Gateway(config(tmp_path, own_influxd.url, "conflict"), LineFileSink(str(lines_file)))
    replay_files(gateway, lab_parts[:1])
    gateway.sink.close()
    lines = lines_file.read_text(encoding="utf-8").splitlines()
    traffic = sum(line.startswith("traffic,") for line in lines)
    dns = sum(line.startswith("dns,") for line in lines)
    assert traffic > 50  # several batches of 50 carry bad points
    influx_query(own_influxd.url, "CREATE DATABASE conflict")
    influx_write(own_influxd.url, "conflict", f'traffic,device=x bytes_out="a string" {LAB_START_NS}')

    sink = open_influx_sink(config(tmp_path, own_influxd.url, "conflict"), timing=FAST)
    with caplog.at_level(logging.WARNING, logger="gateway.sinks"):
        for i in range(0, len(lines), 40):
            sink.write(lines[i : i + 40])
        sink.close()
    report = sink.report()
    assert report.dropped == traffic
    assert (report.retried, report.spooled, report.spool.points) == (0, 0, 0)
    assert report.written == len(lines) - traffic + 2  # and the two `mouchard` points
    assert influx_count(own_influxd.url, "conflict", 'SELECT count("queries") FROM dns') == dns
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 1
    assert "field type conflict" in refused[0].getMessage()


def test_a_full_spool_drops_the_oldest_points_and_counts_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(tmp_path, f"http://127.0.0.1:{free_port()}", "full")
    lines = [f"traffic,device=d{i % 7} bytes_out={i}i {LAB_START_NS + i}" for i in range(2000)]
    with caplog.at_level(logging.WARNING):
        sink = open_influx_sink(cfg, spool_max_bytes=20_000, timing=FAST)
        for i in range(0, len(lines), 100):
            sink.write(lines[i : i + 100])
        sink.close()
    report = sink.report()
    assert report.dropped > 0
    assert report.spool.bytes <= 20_000
    assert report.spooled == report.dropped + report.spool.points
    assert "is full" in caplog.text
    assert "DROPPED its" in caplog.text
    kept = b"".join(p.read_bytes() for p in sorted((tmp_path / "state" / "spool").glob("*.lp")))
    assert lines[-1].encode() in kept  # the newest are kept ...
    assert lines[0].encode() not in kept  # ... the oldest went first


def test_lines_are_sent_by_age_when_no_batch_fills(own_influxd: Server, tmp_path: Path) -> None:
    """An idle lab: one line waits flush_interval_s, not for 49 more."""
    sink = open_influx_sink(config(tmp_path, own_influxd.url, "idle"), timing=FAST)
    try:
        sink.write([f"traffic,device=aa:bb:cc:dd:ee:ff bytes_out=1i,bytes_in=1i {LAB_START_NS}"])
        assert wait_until(lambda: sink.report().written == 2, 5)
    finally:
        sink.close()


def test_a_5xx_is_retried_then_spooled_and_delivered_once_fixed(own_influxd: Server, tmp_path: Path) -> None:
    """InfluxDB 1.6.7 answers 500 to writes into a missing retention policy: retryable, so spooled."""
    cfg = config(tmp_path, own_influxd.url, "rp5xx", "  retention_policy: gone\n")
    sink = open_influx_sink(cfg, timing=FAST)
    try:
        influx_query(own_influxd.url, 'DROP RETENTION POLICY "gone" ON "rp5xx"')
        now = time.time_ns()  # a 30-day policy refuses older points ("beyond retention policy")
        sink.write([f"traffic,device=aa:bb:cc:dd:ee:ff bytes_out=7i,bytes_in=8i {now}"])
        assert wait_until(lambda: sink.report().spool.points > 0, 5)
        report = sink.report()
        assert report.retried > 0
        assert (report.dropped, report.problem) == (0, None)
        influx_query(own_influxd.url, 'CREATE RETENTION POLICY "gone" ON "rp5xx" DURATION 30d REPLICATION 1')
        assert wait_until(lambda: sink.report().spool.points == 0, 10)
    finally:
        sink.close()
    totals = influx_query(own_influxd.url, 'SELECT sum(bytes_out) FROM "rp5xx"."gone"."traffic"')
    assert totals[0]["series"][0]["values"][0][1] == 7  # type: ignore[index]
