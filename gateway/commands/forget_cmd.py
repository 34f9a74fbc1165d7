"""`mouchard forget DEVICE [--dry-run]`: remove what Mouchard stores about one device.

Every InfluxDB series tagged ``device=DEVICE`` (traffic, dns, device, its events, and any other
measurement keyed by the device) is dropped; then its points waiting in the spool, its messages in the
MQTT outbox, its retained state and Home Assistant discovery configs on the broker (with MQTT on), what
novelty learned about it, and its entry in the inventory. InfluxDB goes first: when it cannot be
reached nothing is removed, so running the command again finishes the job.
DEVICE is a MAC, an ``ip:<address>`` key, or the name `mouchard devices` shows for it.
"""

from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass

from rich.console import Console

from gateway.aggregators.detectors import novelty as novelty_state
from gateway.aggregators.detectors.runner import NOVELTY_FILE
from gateway.commands.common import Subparsers
from gateway.config import Config, InfluxApi, normalise_mac
from gateway.sinks.factory import open_spool
from gateway.sinks.influxdb import InfluxError, InfluxV1Client
from gateway.sinks.inventory import Inventory, InventoryError
from gateway.sinks.lineproto import has_tag
from gateway.sinks.mqtt import clear_retained, device_retained_topics
from gateway.sinks.mqtt_outbox import OUTBOX_DIR, OUTBOX_FILE, Outbox, OutboxError, Outgoing
from gateway.sinks.spool import SPOOL_DIR, SpoolBusyError, SpoolError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class ForgetInputError(ValueError):
    """DEVICE names no device; the message says what to give instead."""


@dataclass(frozen=True, slots=True)
class Found:
    series: list[str]  # InfluxDB series keys tagged with the device
    in_inventory: bool


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    forget = sub.add_parser(
        "forget", parents=[common], help="remove a device's series, events and inventory entry"
    )
    forget.add_argument("device", metavar="DEVICE", help="a MAC, an ip:<address> key, or a device's name")
    forget.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    forget.set_defaults(handler=cmd_forget)


def cmd_forget(args: argparse.Namespace, cfg: Config, err: Console) -> int:
    try:
        inventory = Inventory.in_state_dir(cfg.state_dir)
    except InventoryError as exc:
        err.print(str(exc), highlight=False, markup=False)
        return EXIT_BAD_INPUT
    try:
        return _forget(args, cfg, inventory, err)
    finally:
        inventory.close()


def _forget(args: argparse.Namespace, cfg: Config, inventory: Inventory, err: Console) -> int:
    try:
        device = device_key(args.device, inventory)
    except ForgetInputError as exc:
        err.print(str(exc), highlight=False, markup=False)
        return EXIT_BAD_INPUT
    if cfg.influxdb.api != InfluxApi.V1:
        return _forget_without_influxql(args, cfg, device, inventory, err)
    client = InfluxV1Client(cfg.influxdb)
    where = client.describe()
    try:
        found = Found(stored_series(client, device), device in inventory.known())
        if not args.dry_run:
            drop_series(client, device)
    except InfluxError as exc:
        err.print(
            f"{exc}\nNothing was removed. Start InfluxDB (or fix influxdb in the configuration) and run "
            f"`mouchard forget {args.device}` again.",
            highlight=False,
            markup=False,
        )
        return EXIT_FAILED
    finally:
        client.close()
    verb = "would remove" if args.dry_run else "removed"
    print(f"{device}: {verb} {_series_text(found.series)} from {where}", flush=True)
    elsewhere = forget_elsewhere(cfg, device, err, dry_run=args.dry_run)
    if not args.dry_run:
        inventory.forget(device)
    entry = "its entry" if found.in_inventory else "no entry"
    print(f"{device}: {verb} {entry} from the inventory {inventory.path}", flush=True)
    if not found.series and not found.in_inventory and not elsewhere.found:
        err.print(f"Mouchard stored nothing about {device}.", highlight=False, markup=False)
    return EXIT_OK if elsewhere.complete else EXIT_FAILED


def _forget_without_influxql(
    args: argparse.Namespace, cfg: Config, device: str, inventory: Inventory, err: Console
) -> int:
    """InfluxDB 2.x and 3.x have no DROP SERIES: remove the inventory entry, say what to run for the rest."""
    forget_elsewhere(cfg, device, err, dry_run=args.dry_run)
    if not args.dry_run:
        inventory.forget(device)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{device}: {verb} its inventory entry (if any) from {inventory.path}", flush=True)
    err.print(
        f"Its points stay in InfluxDB: forget speaks InfluxQL (influxdb.api: v1). With InfluxDB 2.x run: "
        f"influx delete --bucket {cfg.influxdb.database} --start 1970-01-01T00:00:00Z "
        f"--stop 2100-01-01T00:00:00Z --predicate 'device=\"{device}\"'",
        highlight=False,
        markup=False,
    )
    return EXIT_FAILED


def device_key(text: str, inventory: Inventory) -> str:
    """The device tag that `text` names: a MAC, an ``ip:`` key, or a name from the inventory."""
    try:
        return normalise_mac(text)
    except ValueError:
        pass
    if text.startswith("ip:"):
        try:
            return "ip:" + str(ipaddress.ip_address(text[3:]))
        except ValueError:
            raise ForgetInputError(
                f"'{text}' is not an ip:<address> device key, e.g. ip:192.168.1.23"
            ) from None
    named = sorted(r.id for r in inventory.devices() if r.name.casefold() == text.casefold())
    if len(named) == 1:
        return named[0]
    if named:
        raise ForgetInputError(
            f"several devices are named '{text}': {', '.join(named)}; give one of these MACs"
        )
    raise ForgetInputError(
        f"'{text}' is neither a MAC (aa:bb:cc:dd:ee:ff), an ip:<address> key, nor the name of a device "
        f"in {inventory.path}; `mouchard devices` lists them"
    )


def _literal(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _database(client: InfluxV1Client) -> str | None:
    """The configured database if it exists (a gateway that never wrote has none)."""
    wanted = client.cfg.database
    for result in client.query("SHOW DATABASES"):
        for series in _list(result.get("series")):
            values = _list(series.get("values")) if isinstance(series, dict) else []
            if any(isinstance(row, list) and row[:1] == [wanted] for row in values):
                return wanted
    return None


def stored_series(client: InfluxV1Client, device: str) -> list[str]:
    """The keys of every series tagged ``device=DEVICE`` in the configured database."""
    database = _database(client)
    if database is None:
        return []
    results = client.query(f'SHOW SERIES WHERE "device" = {_literal(device)}', database)
    keys: list[str] = []
    for result in results:
        for series in _list(result.get("series")):
            rows = _list(series.get("values")) if isinstance(series, dict) else []
            keys.extend(str(row[0]) for row in rows if isinstance(row, list) and row)
    return keys


def drop_series(client: InfluxV1Client, device: str) -> None:
    """Drop every series tagged ``device=DEVICE``, in every measurement and retention policy."""
    database = _database(client)
    if database is not None:
        client.query(f'DROP SERIES WHERE "device" = {_literal(device)}', database)


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _series_text(keys: list[str]) -> str:
    if not keys:
        return "no series"
    return f"{len(keys)} series ({', '.join(sorted({key.split(',', 1)[0] for key in keys}))})"


@dataclass(frozen=True, slots=True)
class Elsewhere:
    found: bool  # the spool, the MQTT outbox or the novelty state held something about the device
    complete: bool  # everything that should go went (or would, with --dry-run)


def forget_elsewhere(cfg: Config, device: str, err: Console, *, dry_run: bool) -> Elsewhere:
    """The device's lines in the spool, its MQTT messages (outbox and retained), its novelty state."""
    verb = "would remove" if dry_run else "removed"
    found, complete = False, True
    spool_lines = _forget_in_spool(cfg, device, err, dry_run=dry_run)
    if spool_lines is None:
        complete = False
    elif spool_lines:
        found = True
        print(f"{device}: {verb} {spool_lines} points from the spool {cfg.state_dir / SPOOL_DIR}", flush=True)
    if cfg.mqtt.enabled:
        mqtt_found, mqtt_complete = _forget_in_mqtt(cfg, device, err, dry_run=dry_run)
        found, complete = found or mqtt_found, complete and mqtt_complete
    novelty = cfg.state_dir / NOVELTY_FILE
    if novelty_state.forget(novelty, device, dry_run=dry_run):
        found = True
        print(f"{device}: {verb} what novelty learned about it from {novelty}", flush=True)
    return Elsewhere(found, complete)


def _forget_in_spool(cfg: Config, device: str, err: Console, *, dry_run: bool) -> int | None:
    """Points of the device taken out of the spool (None: the spool could not be changed)."""
    if not (cfg.state_dir / SPOOL_DIR).is_dir():
        return 0
    try:
        spool = open_spool(cfg)
    except SpoolError as exc:
        err.print(f"{exc}; its points in the spool stay", highlight=False, markup=False)
        return None
    try:
        return spool.remove_lines(lambda line: has_tag(line, "device", device), dry_run=dry_run).lines
    except (SpoolBusyError, SpoolError) as exc:
        err.print(
            f"{exc}: the device's points in the spool stay; run `mouchard forget {device}` again once it is "
            "done (or stop `mouchard run`)",
            highlight=False,
            markup=False,
        )
        return None
    finally:
        spool.close()


def _forget_in_mqtt(cfg: Config, device: str, err: Console, *, dry_run: bool) -> tuple[bool, bool]:
    """Its messages waiting in the outbox, and its retained state and discovery configs on the broker."""
    topics = device_retained_topics(cfg.mqtt, cfg.gateway_id, device)
    verb = "would remove" if dry_run else "removed"
    try:
        outbox = Outbox(cfg.state_dir / OUTBOX_DIR / OUTBOX_FILE)
    except OutboxError as exc:
        err.print(
            f"{exc}\nIts MQTT messages stay: stop `mouchard run`, then run `mouchard forget {device}` again.",
            highlight=False,
            markup=False,
        )
        return False, False
    try:
        waiting = outbox.remove(topics, device, dry_run=dry_run)
        if waiting:
            print(f"{device}: {verb} {waiting} MQTT messages from the outbox {outbox.path}", flush=True)
        if dry_run:
            print(f"{device}: would clear the retained topics {', '.join(topics)}", flush=True)
            return bool(waiting), True
        problem = clear_retained(cfg.mqtt, cfg.gateway_id, topics)
        if not problem:
            print(f"{device}: cleared the retained topics {', '.join(topics)}", flush=True)
            return bool(waiting), True
        outbox.put([Outgoing(topic, b"", retain=True) for topic in topics])
        err.print(
            f"MQTT: {problem}; the clearing of {device}'s retained topics waits in the outbox and goes out "
            "with the next `mouchard run`",
            highlight=False,
            markup=False,
        )
        return bool(waiting), False
    finally:
        outbox.close()
