"""`mouchard run [--config FILE]`: the live gateway on the lab's interface."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from rich.console import Console

from gateway.commands.common import Subparsers, build_gateway, open_mqtt
from gateway.config import CaptureSource, Config
from gateway.run import LiveGateway, live_hold_s
from gateway.sinks.factory import open_influx_sink
from gateway.sinks.influxdb import InfluxError
from gateway.sinks.inventory import Inventory, InventoryError
from gateway.sinks.mqtt import MqttError
from gateway.sinks.spool import SpoolError
from gateway.sources.conntrack import (
    ConntrackSetupError,
    ConntrackSource,
    names_filter,
    prepare_kernel,
)
from gateway.sources.live import CaptureSetupError, InterfaceDownError, LiveCapture, disable_offloads
from gateway.sources.mdns_browser import MdnsBrowser, SightingCallback

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    run = sub.add_parser("run", parents=[common], help="the live gateway on capture.interface")
    run.set_defaults(handler=cmd_run)


def cmd_run(args: argparse.Namespace, cfg: Config, err: Console) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    iface = cfg.capture.interface
    router = cfg.capture.source == CaptureSource.CONNTRACK
    flows: ConntrackSource | None = None
    capture: LiveCapture | None = None
    try:
        inventory = Inventory.in_state_dir(cfg.state_dir)
        bpf = cfg.capture.bpf_filter
        if router:  # bytes from the kernel's flow counters; the capture only names
            for note in prepare_kernel():
                err.print(note, highlight=False, markup=False)
            flows = ConntrackSource(iface)
            bpf = names_filter(bpf)
        capture = LiveCapture(iface, cfg.capture.snaplen, bpf)
    except InterfaceDownError:
        pass  # a service started at boot may come before its interface: the gateway waits, and says so
    except (InventoryError, CaptureSetupError, ConntrackSetupError) as exc:
        if flows is not None:
            flows.close()
        err.print(str(exc), highlight=False, markup=False)
        return EXIT_BAD_INPUT
    warning = disable_offloads(iface)
    if warning:
        err.print(f"[yellow]{warning}[/]")
    try:
        # InfluxDB down at start is fine: points wait in the spool until it answers.
        sink = open_influx_sink(cfg, spool_max_bytes=cfg.influxdb.spool_max_mb << 20)
    except (InfluxError, SpoolError) as exc:
        err.print(f"{exc}\nFix this in the configuration (influxdb section) or on the InfluxDB server.")
        return EXIT_FAILED
    try:
        mqtt = open_mqtt(cfg, err)
    except MqttError as exc:
        err.print(str(exc), highlight=False, markup=False)
        return EXIT_BAD_INPUT
    gateway = build_gateway(cfg, sink, inventory, mqtt, hold_s=live_hold_s(cfg.aggregation.interval_s))

    def open_capture() -> LiveCapture:
        again = LiveCapture(iface, cfg.capture.snaplen, bpf)
        disable_offloads(iface)  # a re-created interface has its offloads on again
        return again

    def new_browser(on_sighting: SightingCallback) -> MdnsBrowser:
        return MdnsBrowser(on_sighting, interfaces=[iface])

    config_path = Path(args.config) if args.config else None
    live = LiveGateway(
        cfg, gateway, capture, config_path, flows, open_capture=open_capture, new_browser=new_browser
    )
    what = "counting flows (conntrack) and capturing names" if router else "capturing"
    err.print(f"{what} on {iface} → {sink.describe()} (Ctrl-C or SIGTERM to stop)")
    try:
        asyncio.run(live.run())
    finally:
        if live.capture is not None:
            live.capture.close()
        if flows is not None:
            flows.close()
        sink.close()
        inventory.close()
    st = gateway.stats
    err.print(f"stopped: {st.packets:,} packets, {st.lines:,} points written")
    return EXIT_OK
