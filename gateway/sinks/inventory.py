"""The device inventory: one SQLite file in ``state_dir``, shared by replay, run and `mouchard devices`.

The MAC (or ``ip:<address>`` without a link layer) is the key; everything else is an attribute that
may change. Writes are one transaction per update, so a crash leaves the previous state whole.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gateway.sinks.private import private_file

SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT '',
    vendor TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    profile TEXT NOT NULL DEFAULT '',
    ip TEXT NOT NULL DEFAULT '',
    services TEXT NOT NULL DEFAULT '[]',
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
)
"""


COLUMNS = ("id", "name", "kind", "vendor", "model", "profile", "ip", "services", "first_seen", "last_seen")
# An update keeps what is known when the new sighting says nothing ('' or an empty list).
_KEEP = dict.fromkeys(("name", "vendor", "model", "profile", "ip"), "''") | {
    "kind": "'unknown'",
    "services": "'[]'",
}
# S608: the statements are built from the constant column names above, never from input.
UPSERT = (
    f"INSERT INTO devices ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    " ON CONFLICT(id) DO UPDATE SET "
    + ", ".join(
        f"{c} = CASE WHEN excluded.{c} NOT IN ('', {empty}) THEN excluded.{c} ELSE devices.{c} END"
        for c, empty in _KEEP.items()
    )
    + ", first_seen = MIN(devices.first_seen, excluded.first_seen)"
    + ", last_seen = MAX(devices.last_seen, excluded.last_seen)"
)


class InventoryError(Exception):
    """The inventory cannot be opened (exit 2: the message says which folder and what to do)."""


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    id: str
    name: str
    kind: str
    vendor: str
    model: str
    profile: str
    ip: str
    services: tuple[str, ...]
    first_seen: int
    last_seen: int


class Inventory:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            private_file(path)  # 0600 in a 0700 folder: a record of the lab's life (SQLite's journal follows)
            self._db = sqlite3.connect(path)
            self._db.execute(SCHEMA)
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise InventoryError(
                f"cannot open the device inventory {path}: {exc}; set state_dir in the configuration "
                "to a folder this user can write (e.g. state_dir: ~/.local/state/mouchard)"
            ) from None

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> Inventory:
        return cls(state_dir / "inventory.sqlite3")

    def known(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT id FROM devices")}

    def upsert(self, records: Iterable[DeviceRecord]) -> list[str]:
        """Store the records (first_seen kept, last_seen the latest); return the ids that were new."""
        known = self.known()
        new: list[str] = []
        with self._db:
            for r in records:
                if r.id not in known:
                    new.append(r.id)
                self._db.execute(
                    UPSERT,
                    (
                        r.id,
                        r.name,
                        r.kind,
                        r.vendor,
                        r.model,
                        r.profile,
                        r.ip,
                        json.dumps(list(r.services)),
                        r.first_seen,
                        r.last_seen,
                    ),
                )
        return new

    def devices(self) -> list[DeviceRecord]:
        rows = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM devices ORDER BY id")
        return [_record(row) for row in rows]

    def forget(self, device: str) -> bool:
        with self._db:
            return self._db.execute("DELETE FROM devices WHERE id = ?", (device,)).rowcount > 0

    def close(self) -> None:
        self._db.close()


def _record(row: tuple[object, ...]) -> DeviceRecord:
    ident, name, kind, vendor, model, profile, ip = (str(v) for v in row[:7])
    services = tuple(str(x) for x in json.loads(str(row[7])))
    return DeviceRecord(
        ident, name, kind, vendor, model, profile, ip, services, int(str(row[8])), int(str(row[9]))
    )
