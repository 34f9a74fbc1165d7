"""The files that record the lab's life are private: inventory, spool and MQTT outbox are 0600 in 0700
folders, whatever the umask, and an inventory left readable by an older version is tightened."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.sinks.batch import Batch
from gateway.sinks.inventory import DeviceRecord, Inventory
from gateway.sinks.mqtt_outbox import Outbox, Outgoing
from gateway.sinks.spool import Spool


@pytest.fixture(autouse=True)
def _open_umask() -> Iterator[None]:
    """The laxest umask: whatever is private below is private by Mouchard's doing."""
    old = os.umask(0)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_inventory_is_0600_in_a_0700_folder(tmp_path: Path) -> None:
    state = tmp_path / "a" / "state"
    inventory = Inventory.in_state_dir(state)
    inventory.upsert([DeviceRecord("68:db:f5:90:19:64", "Echo", "", "", "", "", "", (), 1, 2)])
    inventory.close()
    assert mode(state) == 0o700
    assert mode(tmp_path / "a") == 0o700
    assert mode(state / "inventory.sqlite3") == 0o600


def test_an_inventory_left_readable_is_tightened(tmp_path: Path) -> None:
    Inventory.in_state_dir(tmp_path).close()
    (tmp_path / "inventory.sqlite3").chmod(0o644)
    Inventory.in_state_dir(tmp_path).close()
    assert mode(tmp_path / "inventory.sqlite3") == 0o600


def test_outbox_and_its_wal_are_0600_in_a_0700_folder(tmp_path: Path) -> None:
    path = tmp_path / "state" / "mqtt" / "outbox.sqlite3"
    outbox = Outbox(path)
    outbox.put([Outgoing("mouchard/lab/event/heartbeat", b"{}")])
    files = sorted(p.name for p in path.parent.iterdir())
    modes = {p.name: mode(p) for p in path.parent.iterdir()}
    outbox.close()
    assert {"outbox.sqlite3", "outbox.sqlite3-wal", "outbox.sqlite3.lock"} <= set(files)
    assert modes == dict.fromkeys(files, 0o600)
    assert mode(path.parent) == 0o700
    assert mode(tmp_path / "state") == 0o700


def test_spool_files_are_0600_in_a_0700_folder(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "spool"
    spool = Spool(folder)
    spool.append(Batch(b"traffic,device=68:db:f5:90:19:64 bytes_out=1i 1\n", 1, 1))
    batches = [p for p in folder.iterdir() if p.suffix == ".lp"]
    assert len(batches) == 1
    assert {p.name: mode(p) for p in folder.iterdir()} == dict.fromkeys(
        (batches[0].name, ".lock", ".drain"), 0o600
    )
    (folder / "00000000000000000002-1-1.1.lp").write_bytes(b"damaged")
    spool.close()
    spool = Spool(folder)
    spool.deliver_oldest(lambda batch: None, 10)  # sets the damaged file aside in corrupt/
    spool.close()
    assert mode(folder) == 0o700
    assert mode(folder / "corrupt") == 0o700
    assert mode(tmp_path / "state") == 0o700
