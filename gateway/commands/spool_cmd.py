"""`mouchard spool status|flush`: what waits in the disk spool, and delivering it to InfluxDB."""

from __future__ import annotations

import argparse
import json

from rich.console import Console

from gateway.commands.common import Subparsers, console
from gateway.config import Config
from gateway.sinks.factory import influx_transport, open_spool
from gateway.sinks.reliable import FlushResult, Timing, flush_spool
from gateway.sinks.spool import SPOOL_DIR, SpoolBusyError, SpoolDepth, SpoolError

EXIT_OK, EXIT_FAILED = 0, 1
FLUSH_TIMEOUT_S = 60.0  # default: how long `flush` keeps retrying an unreachable InfluxDB


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    spool = sub.add_parser("spool", parents=[common], help="the disk spool of points InfluxDB could not take")
    actions = spool.add_subparsers(dest="action", required=True, metavar="ACTION")
    # --config after the action too; SUPPRESS keeps one given before it (argparse would reset it)
    again = argparse.ArgumentParser(add_help=False)
    again.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="configuration file")
    status = actions.add_parser("status", parents=[again], help="show how much waits in the spool")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(handler=cmd_status)
    flush = actions.add_parser("flush", parents=[again], help="deliver the spool to InfluxDB, oldest first")
    flush.add_argument(
        "--timeout",
        type=float,
        default=FLUSH_TIMEOUT_S,
        metavar="S",
        help=f"keep retrying an unreachable InfluxDB this long (default {FLUSH_TIMEOUT_S:g} s)",
    )
    flush.set_defaults(handler=cmd_flush)


def cmd_status(args: argparse.Namespace, cfg: Config, err: Console) -> int:
    folder = cfg.state_dir / SPOOL_DIR
    depth = SpoolDepth(0, 0, 0, None)
    if folder.is_dir():
        try:
            spool = open_spool(cfg)
        except SpoolError as exc:
            err.print(str(exc), highlight=False, markup=False)
            return EXIT_FAILED
        depth = spool.depth()
        spool.close()
    out = console()
    if args.json:
        out.print_json(json.dumps({"folder": str(folder), **_depth_dict(depth)}))
    else:
        out.print(f"spool {folder}: {_depth_text(depth)}", highlight=False, markup=False)
    return EXIT_OK


def cmd_flush(args: argparse.Namespace, cfg: Config, err: Console) -> int:
    try:
        spool = open_spool(cfg)
    except SpoolError as exc:
        err.print(str(exc), highlight=False, markup=False)
        return EXIT_FAILED
    timing = Timing()
    transport, _ = influx_transport(cfg.influxdb, timing)
    before = spool.depth()
    try:
        result = flush_spool(spool, transport.send, cfg.influxdb.batch_size, timing.backoff, args.timeout)
    except SpoolBusyError as exc:
        err.print(f"{exc} (a running `mouchard run` delivers it itself); try again later", highlight=False)
        return EXIT_FAILED
    finally:
        transport.close()
    left = spool.depth()
    spool.close()
    _print_flush(err, before, result, left, transport.describe())
    return EXIT_OK if result.error is None and left.batches == 0 else EXIT_FAILED


def _print_flush(err: Console, before: SpoolDepth, result: FlushResult, left: SpoolDepth, where: str) -> None:
    out = console()
    if not before.batches:
        out.print("the spool is empty: nothing to deliver", highlight=False)
        return
    out.print(
        f"delivered {result.written:,} points ({result.batches:,} of {before.batches:,} batches) to {where}",
        highlight=False,
        markup=False,
    )
    if result.dropped:
        out.print(f"{result.dropped:,} bad points refused by InfluxDB (dropped)", highlight=False)
    if result.error is not None:
        err.print(f"stopped: {result.error}", highlight=False, markup=False)
    if left.batches:
        err.print(f"still in the spool: {_depth_text(left)}", highlight=False, markup=False)


def _depth_dict(depth: SpoolDepth) -> dict[str, object]:
    return {
        "batches": depth.batches,
        "points": depth.points,
        "bytes": depth.bytes,
        "oldest_age_s": None if depth.oldest_age_s is None else round(depth.oldest_age_s, 1),
    }


def _depth_text(depth: SpoolDepth) -> str:
    if not depth.batches:
        return "empty"
    return (
        f"{depth.batches:,} batches, {depth.points:,} points, {depth.bytes:,} bytes, "
        f"oldest {_age(depth.oldest_age_s or 0.0)} old"
    )


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"
