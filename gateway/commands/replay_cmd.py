"""`mouchard replay FILE... [--output FILE|-]`: capture files through the gateway's pipeline."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from gateway.app import Gateway, LineSink
from gateway.commands.common import build_gateway, console, open_mqtt
from gateway.config import Config
from gateway.replay import FileReport, check_readable, replay_files
from gateway.sinks.factory import open_influx_sink
from gateway.sinks.influxdb import InfluxError, RetentionSetup
from gateway.sinks.inventory import Inventory, InventoryError
from gateway.sinks.mqtt import MqttError
from gateway.sinks.pseudonym import PseudonymError, output_sink
from gateway.sinks.reliable import ReliableSink, SinkReport, Timing
from gateway.sinks.spool import SpoolError
from gateway.sources.capfile import CaptureError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
# A replay is short-lived: it retries a batch for 10 s and an unreachable InfluxDB for 10 s more at the
# end, then leaves what is left in the spool (delivered by the next run, or `mouchard spool flush`).
REPLAY_TIMING = Timing(retry_budget_s=10.0, close_budget_s=10.0)


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    replay = sub.add_parser("replay", parents=[common], help="replay capture files into InfluxDB (or a file)")
    replay.add_argument("files", nargs="+", metavar="FILE", help="pcap or pcapng files")
    replay.add_argument(
        "--output",
        metavar="FILE",
        help="write line protocol to FILE ('-' for standard output) instead of InfluxDB",
    )
    replay.add_argument(
        "--pseudonymise",
        action="store_true",
        help="with --output: every MAC replaced by this lab's stable pseudonym (docs/privacy.md)",
    )
    replay.add_argument("--quiet", action="store_true", help="no progress bar and no table")
    replay.set_defaults(handler=cmd_replay)


def cmd_replay(args: argparse.Namespace, cfg: Config, err: Console) -> int:
    problems = check_readable(args.files)
    if problems:
        err.print("\n".join(problems), highlight=False, markup=False)
        return EXIT_BAD_INPUT
    sink: LineSink
    if args.pseudonymise and not args.output:
        err.print("--pseudonymise applies to --output FILE: add it", highlight=False, markup=False)
        return EXIT_BAD_INPUT
    if args.output:
        try:
            sink = output_sink(args.output, cfg, pseudonymise=args.pseudonymise)
        except PseudonymError as exc:
            err.print(str(exc), highlight=False, markup=False)
            return EXIT_BAD_INPUT
    else:
        try:
            sink = open_influx_sink(
                cfg,
                timing=REPLAY_TIMING,
                spool_max_bytes=cfg.influxdb.spool_max_mb << 20,
                retention=RetentionSetup.LEAVE,  # old captures: a short policy would refuse their points
            )
        except (InfluxError, SpoolError) as exc:
            err.print(f"{exc}\nFix this, or use --output FILE.", highlight=False, markup=False)
            return EXIT_FAILED
    try:
        inventory = Inventory.in_state_dir(cfg.state_dir)
    except InventoryError as exc:
        err.print(str(exc), highlight=False, markup=False)
        return EXIT_BAD_INPUT
    try:
        mqtt = open_mqtt(cfg, err)
    except MqttError as exc:
        err.print(str(exc), highlight=False, markup=False)
        return EXIT_BAD_INPUT
    gateway = build_gateway(cfg, sink, inventory, mqtt)
    show = not args.quiet
    try:
        reports = _replay_with_progress(gateway, args.files, err if show else None)
    except CaptureError as exc:
        err.print(str(exc), highlight=False, markup=False)
        return EXIT_BAD_INPUT
    except InfluxError as exc:
        err.print(f"{exc}\nStart InfluxDB and replay again, or use --output FILE.")
        return EXIT_FAILED
    finally:
        sink.close()
        inventory.close()
    if isinstance(sink, ReliableSink):
        _print_delivery(err, sink.report())
    if show:
        out = err if args.output == "-" else console()
        _print_reports(out, reports, gateway, sink)
    return EXIT_OK


def _replay_with_progress(gateway: Gateway, files: Sequence[str], err: Console | None) -> list[FileReport]:
    if err is None or not err.is_terminal:
        return replay_files(gateway, files)
    total = sum(Path(f).stat().st_size for f in files)
    columns = (TextColumn("replay"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("replay", total=total)
        return replay_files(gateway, files, lambda n: bar.advance(task, n))


def _print_reports(out: Console, reports: list[FileReport], gateway: Gateway, sink: LineSink) -> None:
    st = gateway.stats
    table = Table(title="Devices", title_justify="left")
    for col in ("device", "name", "bytes out", "bytes in", "packets", "destinations", "own DNS"):
        table.add_column(col, justify="right" if col not in ("device", "name", "own DNS") else "left")
    identities = gateway.identities()
    own_dns = gateway.encrypted_dns_devices()
    for device, t in sorted(gateway.totals.items(), key=lambda kv: -(kv[1].bytes_out + kv[1].bytes_in)):
        ident = identities.get(device)
        table.add_row(
            device,
            ident.name if ident else "",
            f"{t.bytes_out:,}",
            f"{t.bytes_in:,}",
            f"{t.packets_out + t.packets_in:,}",
            f"{len(t.destinations):,}",
            "DoH/DoT" if device in own_dns else "",
        )
    out.print(table)
    out.print(
        f"{st.packets:,} packets ({st.bytes:,} bytes), {st.ip_packets:,} IP packets counted, "
        f"{st.non_ip:,} non-IP skipped, {st.malformed:,} malformed, {st.fragments:,} IP fragments; "
        f"{st.lines:,} points to {sink.describe()}",
        highlight=False,
    )
    for rep in reports:
        rs = rep.stats
        notes = []
        if rs.damaged:
            notes.append(f"damaged, rest of file skipped: {rs.damaged}")
        if rs.truncated_tail:
            notes.append(f"cut short: last {rs.truncated_tail} bytes are an incomplete record")
        if rs.skipped_blocks:
            notes.append(f"{rs.skipped_blocks} unknown pcapng blocks skipped")
        if rep.unsupported_links:
            notes.append(f"link types {rep.unsupported_links} not supported, their packets skipped")
        if gateway.aggregator.late_packets:
            notes.append(f"{gateway.aggregator.late_packets} late packets counted in the oldest open bin")
        for note in notes:
            out.print(f"[yellow]{rep.path}[/]: {note}", highlight=False)
    for note in _bound_notes(gateway):
        out.print(f"[yellow]bounds[/]: {note}", highlight=False)


def _bound_notes(gateway: Gateway) -> list[str]:
    """What the memory and series bounds folded or refused (docs/bounds.md), in a user's words."""
    st, ev = gateway.stats, gateway.evidence.stats
    notes = []
    if st.destination_overflow:
        notes.append(
            f"{st.destination_overflow:,} traffic rows of devices past their destination cap counted "
            "under host=other (bytes kept)"
        )
    if st.dns_name_overflow:
        notes.append(
            f"{st.dns_name_overflow:,} DNS queries past a device's name cap counted under host=other"
        )
    if st.dns_overflow:
        notes.append(f"{st.dns_overflow:,} DNS queries not counted (too many names waiting for their bin)")
    if ev.refused or ev.overflow:
        notes.append(
            f"{ev.refused + ev.overflow:,} pieces of device evidence (mDNS, DHCP, names) refused: "
            "their memory budget was full"
        )
    return notes


def _print_delivery(err: Console, rep: SinkReport) -> None:
    """What did not simply go through: spooled points, bad points, a set-up problem."""
    if rep.spooled and rep.spool.points:
        err.print(
            f"[yellow]InfluxDB was unavailable: {rep.spooled:,} points went to the spool; "
            f"{rep.spool.points:,} wait in {rep.spool_folder} — the next run or replay delivers them, "
            "or run `mouchard spool flush`[/]",
            highlight=False,
        )
    elif rep.spooled:
        err.print(f"{rep.spooled:,} points waited in the spool and have all been delivered", highlight=False)
    if rep.dropped:
        err.print(f"[yellow]{rep.dropped:,} bad points dropped (InfluxDB refused them)[/]", highlight=False)
