"""The v2 sink (influxdb-client's batching write API, /api/v2/write) against Debian's VictoriaMetrics.

No InfluxDB 2.x package installs here; VictoriaMetrics implements /api/v2/write and exports what
arrived (``<measurement>_<field>`` series with the tags as labels), which is checked point by point.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.cli import main
from gateway.config import Config, load_config
from gateway.replay import replay_files
from gateway.sinks.factory import open_influx_sink
from gateway.sinks.influxdb import InfluxSetupError
from gateway.sinks.influxdb_v2 import InfluxV2Client
from gateway.sources.capfile import open_capture
from tests.conftest import Service
from tests.sinks.conftest import (
    FAST,
    Server,
    assert_totals,
    gateway_totals,
    vm_device_totals,
    vm_export,
    wait_until,
    write_config,
)

TOKEN = "Tok3n-Distinctive-Quokka-77"  # noqa: S105 - a test token, distinctive: found anywhere = leaked


def v2_config(folder: Path, url: str, token: str = TOKEN) -> Config:
    path = write_config(folder, url, "lab_bucket", "  org: lab\n", api="v2")
    return load_config(path, env={"MOUCHARD_INFLUXDB_TOKEN": token})


def vm_totals_when_settled(url: str, gateway: Gateway) -> dict[str, int]:
    """VictoriaMetrics' totals once the newest samples are searchable (they may take a moment)."""
    wait_until(lambda: vm_device_totals(url) == gateway_totals(gateway), 5)
    return vm_device_totals(url)


def test_a_replay_arrives_whole_through_api_v2(
    victoria_metrics: Service, lab_parts: list[Path], tmp_path: Path
) -> None:
    cfg = v2_config(tmp_path, victoria_metrics.url)
    sink = open_influx_sink(cfg, timing=FAST)
    assert isinstance(sink.transport, InfluxV2Client)
    gateway = Gateway(cfg, sink)
    try:
        replay_files(gateway, lab_parts)
    finally:
        sink.close()
    report = sink.report()
    assert (report.spooled, report.dropped) == (0, 0)
    assert_totals(vm_totals_when_settled(victoria_metrics.url, gateway), gateway, lab_parts)
    vendors = {series.labels.get("vendor") for series in vm_export(victoria_metrics.url, "traffic_flows")}
    assert "Samsung Electronics" in vendors  # an escaped space in a tag survives the trip

    def final_metrics_arrived() -> bool:  # the newest samples may take a moment to be searchable
        written = vm_export(victoria_metrics.url, 'mouchard_points_written{gateway="lab"}')
        return max(v for series in written for v in series.values) == report.written - 1

    assert wait_until(final_metrics_arrived, 5)


def test_v2_spools_while_the_server_is_down_and_a_flush_delivers_it(
    own_victoria: Server, lab_parts: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = v2_config(tmp_path, own_victoria.url)
    sink = open_influx_sink(cfg, timing=FAST)
    gateway = Gateway(cfg, sink)
    try:
        for i, part in enumerate(lab_parts):
            if i == 2:
                own_victoria.stop()
            for batch in open_capture(part):
                gateway.process(batch)
        gateway.finish()
    finally:
        sink.close()
    report = sink.report()
    assert report.spool.points > 0
    own_victoria.start()
    assert main(["spool", "flush", "--config", str(tmp_path / "mouchard.yaml")]) == 0
    assert f"delivered {report.spool.points:,} points" in capsys.readouterr().out
    assert_totals(vm_totals_when_settled(own_victoria.url, gateway), gateway, lab_parts)


def test_a_refused_token_stops_start_up_and_is_never_shown(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.sinks.conftest import _server

    for locked in _server(
        tmp_path_factory, "victoria-metrics-local", "-httpAuth.username=lab", "-httpAuth.password=other"
    ):
        cfg = v2_config(tmp_path, locked.url)
        with caplog.at_level(logging.DEBUG), pytest.raises(InfluxSetupError) as info:
            open_influx_sink(cfg, timing=FAST)
        message = str(info.value)
        assert "401" in message
        assert "MOUCHARD_INFLUXDB_TOKEN" in message
        for text in (message, repr(info.value), caplog.text, repr(cfg), str(cfg)):
            assert TOKEN not in text
        client = InfluxV2Client(cfg.influxdb, FAST)
        assert TOKEN not in repr(client) + client.describe()
        client.close()
