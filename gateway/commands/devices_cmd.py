"""`mouchard devices [--json] [--pseudonymise]`: the inventory that replay and run keep in state_dir."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from gateway.commands.common import Subparsers, console
from gateway.config import Config
from gateway.sinks.inventory import Inventory, InventoryError
from gateway.sinks.pseudonym import PseudonymError, Pseudonymiser

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    devices = sub.add_parser("devices", parents=[common], help="list the devices Mouchard has seen")
    devices.add_argument("--json", action="store_true", help="a JSON list instead of a table")
    devices.add_argument(
        "--pseudonymise",
        action="store_true",
        help="every MAC replaced by this lab's stable pseudonym, as replay --output --pseudonymise",
    )
    devices.set_defaults(handler=cmd_devices)


def cmd_devices(args: argparse.Namespace, cfg: Config, err: Console) -> int:
    try:
        inventory = Inventory.in_state_dir(cfg.state_dir)
    except InventoryError as exc:
        err.print(str(exc), highlight=False, markup=False)
        return EXIT_BAD_INPUT
    records = inventory.devices()
    inventory.close()
    if args.pseudonymise:
        try:
            pseudonymiser = Pseudonymiser.for_state_dir(cfg.state_dir)
        except PseudonymError as exc:
            err.print(str(exc), highlight=False, markup=False)
            return EXIT_BAD_INPUT
        pseudonymiser.learn(r.id for r in records)
        records = [pseudonymiser.record(r) for r in records]
    if args.json:
        print(json.dumps([{**asdict(r), "services": list(r.services)} for r in records], indent=2))
        return EXIT_OK
    if not records:
        err.print(f"No device yet in {inventory.path}: replay a capture or run the gateway first.")
        return EXIT_OK
    table = Table(title=f"Devices ({len(records)})", title_justify="left")
    for col in ("device", "name", "kind", "vendor", "model", "ip", "last seen"):
        table.add_column(col)
    for r in records:
        seen = datetime.fromtimestamp(r.last_seen, UTC).strftime("%Y-%m-%d %H:%M") if r.last_seen else ""
        table.add_row(r.id, r.name, r.kind, r.vendor, r.model, r.ip, seen)
    console().print(table)
    return EXIT_OK
