"""`mouchard run [--config FILE]`: the live gateway on the lab's interface."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from rich.console import Console

from gateway.app import Gateway
from gateway.commands.common import Subparsers
from gateway.config import Config
from gateway.run import LiveGateway
from gateway.sinks.influxdb import InfluxError, InfluxV1Sink
from gateway.sinks.inventory import Inventory, InventoryError
from gateway.sources.live import CaptureSetupError, LiveCapture, disable_offloads

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    run = sub.add_parser("run", parents=[common], help="the live gateway on capture.interface")
    run.set_defaults(handler=cmd_run)


def cmd_run(args: argparse.Namespace, cfg: Config, err: Console) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    iface = cfg.capture.interface
    if cfg.capture.source != "pcap":
        err.print("capture.source conntrack is not built yet; use source: pcap")
        return EXIT_BAD_INPUT
    try:
        inventory = Inventory.in_state_dir(cfg.state_dir)
        capture = LiveCapture(iface, cfg.capture.snaplen, cfg.capture.bpf_filter)
    except (InventoryError, CaptureSetupError) as exc:
        err.print(str(exc), highlight=False, markup=False)
        return EXIT_BAD_INPUT
    warning = disable_offloads(iface)
    if warning:
        err.print(f"[yellow]{warning}[/]")
    sink = InfluxV1Sink(cfg.influxdb)
    try:
        sink.ensure_database()
    except InfluxError as exc:
        err.print(f"{exc}\nStart InfluxDB or fix influxdb.url in the configuration.")
        return EXIT_FAILED
    gateway = Gateway(cfg, sink, inventory=inventory)
    live = LiveGateway(cfg, gateway, capture, Path(args.config) if args.config else None)
    err.print(f"capturing on {iface} → {sink.describe()} (Ctrl-C or SIGTERM to stop)")
    try:
        asyncio.run(live.run())
    finally:
        capture.close()
        sink.close()
        inventory.close()
    st = gateway.stats
    err.print(f"stopped: {st.packets:,} packets, {st.lines:,} points written")
    return EXIT_OK
