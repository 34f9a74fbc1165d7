"""MAC address to vendor, offline, from the IEEE registries that Debian's ``ieee-data`` installs.

The registries assign prefixes of three sizes: MA-L (24 bits, ``oui.csv``), MA-M (28 bits,
``mam.csv``) and MA-S (36 bits, ``oui36.csv``, and the older IAB blocks of ``iab.csv``). The IEEE
carves MA-M and MA-S blocks out of MA-L prefixes registered to itself, so the longest prefix wins.

Names are shortened to what a person calls the vendor: ``"Amazon Technologies Inc."`` becomes
``"Amazon"``, ``"TP-LINK TECHNOLOGIES CO.,LTD."`` becomes ``"TP-LINK"``. The rule is one list of
legal-form words (`LEGAL_SUFFIXES`), removed from the end of the name while one is there.

A locally administered MAC (bit 0x02 of the first octet: phones' per-network random addresses,
virtual machines, containers) or a multicast one has no vendor.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_DIR = Path("/usr/share/ieee-data")
# (file, prefix length in bits). Missing files are skipped; all missing gives an empty database.
REGISTRIES = (("oui.csv", 24), ("mam.csv", 28), ("oui36.csv", 36), ("iab.csv", 36))
# Holders that name no vendor: the IEEE's own blocks (sub-assigned as MA-M/MA-S) and blocks whose
# owner paid to stay unlisted. Left out, so that a MAC in them has no vendor.
NOT_VENDORS = frozenset({"ieee registration authority", "private"})
LEGAL_SUFFIXES = (
    "inc", "incorporated", "ltd", "limited", "llc", "l.l.c", "corp", "corporation", "corporate",
    "co", "company", "gmbh", "ag", "kg", "ab", "a/s", "as", "oy", "oyj", "s.a", "sa", "s.a.s", "sas",
    "s.l", "s.r.l", "srl", "s.r.o", "sro", "s.p.a", "spa", "b.v", "bv", "n.v", "nv", "pty", "pte",
    "plc", "private", "technologies", "technology",
)  # fmt: skip
_SUFFIXES = frozenset(LEGAL_SUFFIXES)
_MAC = re.compile(r"[0-9a-f]{12}", re.IGNORECASE)
_SEPARATORS = str.maketrans("", "", ":-. ")
LOCAL_BIT, MULTICAST_BIT = 0x02, 0x01


@dataclass(frozen=True, slots=True, eq=False)
class MacVendorDB:
    """Prefix tables, one per prefix length, longest first; each maps a prefix to a vendor name."""

    tables: tuple[tuple[int, dict[int, str]], ...]

    @classmethod
    def load(cls, path_dir: Path | str | None = None) -> MacVendorDB:
        """Read the registries once (about 0.15 s for the ~46,000 assignments of ieee-data)."""
        directory = DEFAULT_DIR if path_dir is None else Path(path_dir)
        by_bits: dict[int, dict[int, str]] = {}
        names: dict[str, str] = {}  # organisation -> vendor, each organisation shortened once
        for filename, bits in REGISTRIES:
            path = directory / filename
            if path.is_file():
                _read_registry(path, bits, by_bits.setdefault(bits, {}), names)
        if not any(by_bits.values()):
            log.warning(
                "No IEEE MAC registry in %s: devices get no vendor from their MAC. "
                "Install it with: apt-get install ieee-data",
                directory,
            )
        return cls(tuple(sorted(by_bits.items(), reverse=True)))

    def __len__(self) -> int:
        return sum(len(table) for _, table in self.tables)

    def lookup(self, mac: str) -> str | None:
        """The vendor of a MAC (``aa:bb:cc:dd:ee:ff``, ``aa-bb-...``, ``aabb.ccdd.eeff``)."""
        value = mac_value(mac)
        if value is None or value >> 40 & (LOCAL_BIT | MULTICAST_BIT):
            return None
        for bits, table in self.tables:
            vendor = table.get(value >> (48 - bits))
            if vendor is not None:
                return vendor
        return None


def _read_registry(path: Path, bits: int, table: dict[int, str], names: dict[str, str]) -> None:
    """Rows are ``Registry,Assignment,Organization Name,Organization Address`` (quoted CSV)."""
    digits = bits // 4
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        for row in csv.reader(handle):
            if len(row) < 3 or len(row[1]) != digits:
                continue  # the header, or a damaged line
            try:
                prefix = int(row[1], 16)
            except ValueError:
                continue
            organisation = row[2]
            vendor = names.get(organisation)
            if vendor is None:
                vendor = names[organisation] = friendly_vendor(organisation)
            if vendor and vendor.lower() not in NOT_VENDORS:
                table[prefix] = vendor


def friendly_vendor(organisation: str) -> str:
    """``"Sonos, Inc."`` -> ``"Sonos"``: legal-form words removed from the end, never to nothing."""
    name = " ".join(organisation.split())
    while True:
        name = name.rstrip(" ,.&")
        cut = _last_word(name)
        if cut <= 0:
            return name
        name = name[:cut]


def _last_word(name: str) -> int:
    """Where the last word starts if it is a legal-form word (``Ltd``, also in ``Co.Ltd``), else -1."""
    start = max(name.rfind(" "), name.rfind(",")) + 1
    if name[start:].lower() in _SUFFIXES:
        return start
    dot = name.rfind(".", start)
    if dot >= 0 and name[dot + 1 :].lower() in _SUFFIXES:
        return dot + 1
    return -1


def mac_value(mac: str) -> int | None:
    """The 48-bit value of a MAC in any usual notation; ``None`` when it is not one."""
    digits = mac.translate(_SEPARATORS)
    return int(digits, 16) if _MAC.fullmatch(digits) else None


def is_locally_administered(mac: str) -> bool:
    """Bit 0x02 of the first octet: an address not from the IEEE (random, virtual)."""
    value = mac_value(mac)
    return value is not None and bool(value >> 40 & LOCAL_BIT)


def is_multicast(mac: str) -> bool:
    """Bit 0x01 of the first octet: a group address (broadcast included), never a device."""
    value = mac_value(mac)
    return value is not None and bool(value >> 40 & MULTICAST_BIT)
