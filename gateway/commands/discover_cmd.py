"""`mouchard discover [--timeout S] [--json] [--interface IF]`: an active mDNS scan of the LAN."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from gateway.commands.common import Subparsers, console
from gateway.config import Config, DeviceLabel
from gateway.enrichers.macvendor import MacVendorDB
from gateway.sources.mdns_browser import (
    BrowserError,
    MdnsBrowser,
    MdnsDevice,
    MdnsSighting,
    devices_from_sightings,
    discover,
    read_neighbours,
)

EXIT_OK, EXIT_BAD_INPUT = 0, 2
DEFAULT_TIMEOUT_S = 5.0
MAX_TIMEOUT_S = 3600.0  # a scan is a look around; watching for longer is `mouchard run`'s job


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "discover", parents=[common], help="scan the LAN for devices that announce themselves over mDNS"
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"seconds to listen (default {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list of devices on standard output")
    parser.add_argument(
        "--interface",
        action="append",
        default=[],
        metavar="IF",
        help="interface name or address to scan (repeat for several; default: all, IPv4 and IPv6)",
    )
    parser.set_defaults(handler=cmd_discover)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not 0 < value <= MAX_TIMEOUT_S:
        raise argparse.ArgumentTypeError(f"'{text}': give between 0 and {MAX_TIMEOUT_S:g} seconds")
    return value


def cmd_discover(args: argparse.Namespace, cfg: Config, err: Console) -> int:
    try:
        sightings = _scan(args.timeout, args.interface, err)
    except BrowserError as exc:
        err.print(escape(str(exc)), highlight=False)
        return EXIT_BAD_INPUT
    devices = identify_devices(sightings, cfg.devices)
    if args.json:
        print(json.dumps([d.as_json() for d in devices], indent=2, ensure_ascii=False))
    elif devices:
        console().print(_table(devices))
    if not devices:
        _hint_nothing_found(err, args.timeout, args.interface, len(sightings))
    return EXIT_OK


def identify_devices(
    sightings: Sequence[MdnsSighting], labels: Mapping[str, DeviceLabel]
) -> list[MdnsDevice]:
    """Devices from sightings, with MACs from the neighbour table and the lab's own labels on top."""
    vendors: list[MacVendorDB] = []  # loaded on first use (~0.15 s), only when a MAC is known

    def mac_vendor(mac: str) -> str | None:
        if not vendors:
            vendors.append(MacVendorDB.load())
        return vendors[0].lookup(mac)

    devices = devices_from_sightings(sightings, neighbours=read_neighbours(), mac_vendor=mac_vendor)
    return [_labelled(d, labels.get(d.mac)) if d.mac else d for d in devices]


def _labelled(device: MdnsDevice, label: DeviceLabel | None) -> MdnsDevice:
    if label is None:
        return device
    return replace(
        device,
        name=label.name or device.name,
        kind=label.kind or device.kind,
        vendor=label.vendor or device.vendor,
        model=label.model or device.model,
    )


def _scan(timeout: float, interfaces: Sequence[str], err: Console) -> list[MdnsSighting]:
    with _progress(err, timeout) as tick:
        return asyncio.run(discover(timeout, interfaces=interfaces, tick=tick))


@contextmanager
def _progress(err: Console, timeout: float) -> Iterator[Callable[[MdnsBrowser], None] | None]:
    """A time bar with the count of services found, on a terminal only."""
    if not err.is_terminal:
        yield None
        return
    columns = (
        TextColumn("mDNS scan"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:g} s, {task.fields[found]} services"),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("scan", total=timeout, found=0)
        start = bar.get_time()

        def tick(browser: MdnsBrowser) -> None:
            bar.update(task, completed=bar.get_time() - start, found=len(browser.sightings()))

        yield tick


def _table(devices: Sequence[MdnsDevice]) -> Table:
    table = Table(title="Devices announcing themselves over mDNS", title_justify="left")
    for column in ("id", "name", "kind", "vendor", "model", "ip", "services"):
        table.add_column(column)
    for d in devices:
        cells = (d.id, d.name, d.kind, d.vendor or "", d.model or "", d.ip, " ".join(d.services))
        table.add_row(*(escape(c) for c in cells))
    return table


def _hint_nothing_found(err: Console, timeout: float, interfaces: Sequence[str], services: int) -> None:
    where = ", ".join(interfaces) or "all interfaces"
    partial = f" ({services} services answered without an address)" if services else ""
    err.print(
        f"No device answered over mDNS in {timeout:g} s on {escape(where)}{partial}.\n"
        "Check that the devices are on this machine's network segment; that the firewall lets UDP "
        "port 5353 in (mDNS answers come from the devices, to 224.0.0.251 and ff02::fb); that the "
        "interface has a multicast route (ip route add 224.0.0.0/4 dev IF) or name it with "
        "--interface IF; and try a longer --timeout.",
        highlight=False,
    )
