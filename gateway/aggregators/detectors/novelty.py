"""Novelty: a device talking to a destination, or a country, it had not talked to before.

Each device first learns for ``learning_s`` of capture time from its first flushed row; after that,
every outside destination (the ``host`` tag: a name, or the address when unnamed) and every server
country not seen before gives a ``new_destination`` or ``new_country`` event. What was learned is
kept in a JSON file when one is given (under state_dir), so a restart neither re-learns nor repeats.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gateway.aggregators.detectors.events import NS, Event, EventType, human_bytes
from gateway.aggregators.detectors.inputs import DeviceRows, Subject
from gateway.aggregators.grouping import group_rows
from gateway.aggregators.series_cap import OVERFLOW_HOST

log = logging.getLogger(__name__)

DEFAULT_LEARNING_S = 24 * 3600  # a day: most objects show their daily routine within one
# Devices followed; beyond this new devices are not learned (counted in ``untracked``).
MAX_DEVICES = 4096
# Destinations learned per device: an IoT object talks to tens; a phone browsing reaches this, then
# stops producing events (counted in ``saturated``) instead of growing without end.
MAX_HOSTS = 5000
SAVE_EVERY_S = 300  # capture time between two saves of the learned state
_FORMAT = 1


@dataclass(slots=True)
class _Known:
    first_seen_s: int
    hosts: set[str] = field(default_factory=set)
    countries: set[str] = field(default_factory=set)


class NoveltyDetector:
    def __init__(self, learning_s: int = DEFAULT_LEARNING_S, state_file: Path | None = None) -> None:
        self.learning_s = learning_s
        self.state_file = state_file
        self.known: dict[str, _Known] = _load(state_file) if state_file is not None else {}
        self.untracked = 0
        self.saturated = 0
        self._saved_at = -1

    def observe_rows(self, rows: DeviceRows) -> list[Event]:
        if not len(rows):
            return []
        order = np.argsort(rows.bin_s, kind="stable")
        bins, device, dest = rows.bin_s[order], rows.device[order], rows.dest[order]
        nbytes = (rows.bytes_out + rows.bytes_in)[order]
        first, inverse = group_rows([device, dest])
        total = np.bincount(inverse, weights=nbytes, minlength=len(first)).astype(np.int64)
        for d, b in zip(*np.unique(device, return_index=True), strict=True):
            self._device(rows.subjects[int(d)].device, int(bins[b]))
        events: list[Event] = []
        for g in np.argsort(first, kind="stable").tolist():
            i = int(first[g])
            dst = rows.destinations[int(dest[i])]
            if dst.local or not dst.host or dst.host == OVERFLOW_HOST:
                continue  # the overflow of a device past its destination cap is no one destination
            subject = rows.subjects[int(device[i])]
            events += self._row(subject, dst.host, dst.country, int(bins[i]), int(total[g]))
        now = int(bins[-1])
        if self.state_file is not None and now - self._saved_at >= SAVE_EVERY_S:
            self.save()
            self._saved_at = now
        return events

    def finish(self) -> list[Event]:
        if self.state_file is not None:
            self.save()
        return []

    def _device(self, device: str, bin_s: int) -> None:
        if device not in self.known:
            if len(self.known) >= MAX_DEVICES:
                self.untracked += 1
                return
            self.known[device] = _Known(bin_s)

    def _row(self, subject: Subject, host: str, country: str, bin_s: int, nbytes: int) -> list[Event]:
        known = self.known.get(subject.device)
        if known is None:
            return []
        learning = bin_s < known.first_seen_s + self.learning_s
        events = []
        if host not in known.hosts:
            if len(known.hosts) >= MAX_HOSTS:
                self.saturated += 1
                return []
            known.hosts.add(host)
            if not learning:
                where = f" ({country})" if country else ""
                text = f"{subject.label} contacted a new destination: {host}{where}, {human_bytes(nbytes)}"
                events.append(self._event(subject, EventType.NEW_DESTINATION, bin_s, text, host, nbytes))
        if country and country not in known.countries:
            known.countries.add(country)
            if not learning:
                text = f"{subject.label} sent traffic to a new country: {country} ({host})"
                events.append(self._event(subject, EventType.NEW_COUNTRY, bin_s, text, host, nbytes))
        return events

    @staticmethod
    def _event(subject: Subject, kind: EventType, bin_s: int, text: str, host: str, nbytes: int) -> Event:
        return Event(subject.device, kind, bin_s * NS, text, nbytes, host, device_name=subject.name)

    def save(self) -> None:
        """Write what was learned (atomically: a crash leaves the previous file whole)."""
        if self.state_file is None:
            return
        doc = {
            "format": _FORMAT,
            "devices": {
                d: {"first_seen": k.first_seen_s, "hosts": sorted(k.hosts), "countries": sorted(k.countries)}
                for d, k in self.known.items()
            },
        }
        try:
            self.state_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write(self.state_file, doc)
        except OSError as exc:
            log.warning("cannot save novelty state to %s: %s", self.state_file, exc.strerror)


def forget(path: Path, device: str, *, dry_run: bool = False) -> bool:
    """Take ``device`` out of the learned state in ``path`` (`mouchard forget`); True when it was there.

    Raises OSError when the file cannot be rewritten.
    """
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # none, or unreadable (novelty starts learning again from such a file)
    devices = doc.get("devices") if isinstance(doc, dict) else None
    if not isinstance(devices, dict) or device not in devices:
        return False
    if not dry_run:
        del devices[device]
        _write(path, doc)
    return True


def _write(path: Path, doc: object) -> None:
    """``doc`` as JSON in ``path``, atomically and durably: a crash leaves the previous file whole.

    The hosts each device contacted: private to the gateway's user (0600), whatever the umask.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(doc))
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)


def _load(path: Path) -> dict[str, _Known]:
    """The learned state in ``path``; a missing or damaged file means starting to learn again."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != _FORMAT:
            log.warning("novelty state %s has an unknown format: learning again", path)
            return {}
        return {
            str(d): _Known(int(v["first_seen"]), set(v["hosts"][:MAX_HOSTS]), set(v["countries"]))
            for d, v in list(doc["devices"].items())[:MAX_DEVICES]
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("novelty state %s unreadable (%s): learning again", path, exc)
        return {}
