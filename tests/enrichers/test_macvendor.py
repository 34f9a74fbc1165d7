"""MAC vendor lookup: Debian's ieee-data registries, checked against an independent copy of MA-L."""

from __future__ import annotations

import csv
import logging
from functools import cache
from pathlib import Path

import pytest

from gateway.enrichers.macvendor import (
    DEFAULT_DIR,
    MacVendorDB,
    friendly_vendor,
    is_locally_administered,
    is_multicast,
    mac_value,
)
from tests.conftest import SHARED

REFERENCE = SHARED / "reference" / "ieee-oui" / "oui.csv"


@cache
def system_db() -> MacVendorDB:
    if not (DEFAULT_DIR / "oui.csv").is_file():
        pytest.skip(f"{DEFAULT_DIR}/oui.csv is missing: apt-get install ieee-data")
    return MacVendorDB.load()


@pytest.mark.parametrize(
    ("mac", "vendor"),
    [
        ("68:db:f5:90:19:64", "Amazon"),  # Echo
        ("5c:aa:fd:12:34:56", "Sonos"),
        ("00:0e:58:12:34:56", "Sonos"),
        ("54:2a:1b:f0:57:76", "Sonos"),  # the Sonos of the zeroconf capture
        ("d8:30:62:56:00:1c", "Apple"),
        ("c4:61:8b:35:82:a9", "Apple"),
        ("3c:5a:b4:00:00:01", "Google"),
        ("f4:f5:d8:00:00:01", "Google"),
        ("5c:cf:7f:07:ae:fb", "Espressif"),  # the Smarter coffee machine of IoT Sentinel
        ("24:6f:28:00:00:01", "Espressif"),
        ("50:c7:bf:00:fc:a3", "TP-LINK"),
        ("b8:27:eb:00:00:01", "Raspberry Pi Foundation"),
    ],
)
def test_known_vendors(mac: str, vendor: str) -> None:
    assert system_db().lookup(mac) == vendor


@pytest.mark.parametrize(
    ("mac", "vendor"),
    [
        ("20:85:93:b1:23:45", "IOG Products"),  # MA-M 20:85:93:B inside the IEEE's own MA-L
        ("20:85:93:d0:00:00", "Shanghai Kenmyond Industrial Network Equipment"),
        ("70:b3:d5:f2:f1:23", "TELEPLATFORMS"),  # MA-S 70:B3:D5:F2:F
        ("00:50:c2:7d:51:23", "DEUTA-WERKE"),  # IAB 00:50:C2:7D:5
    ],
)
def test_longest_prefix_wins_in_the_real_registries(mac: str, vendor: str) -> None:
    assert system_db().lookup(mac) == vendor


def test_blocks_of_the_registration_authority_have_no_vendor() -> None:
    db = system_db()
    # 20:85:93 is the IEEE's; its MA-M blocks 0-E are assigned, block F is not (ieee-data 2022).
    assert db.lookup("20:85:93:f0:00:01") is None
    assert all(v not in ("IEEE Registration Authority", "Private") for _, t in db.tables for v in t.values())


@pytest.mark.parametrize("mac", ["68:DB:F5:90:19:64", "68-db-f5-90-19-64", "68db.f590.1964", "68dbf5901964"])
def test_notations(mac: str) -> None:
    assert system_db().lookup(mac) == "Amazon"


@pytest.mark.parametrize(
    "mac", ["", "68:db:f5", "68:db:f5:90:19:6g", "+68dbf5901964", "68_db_f5_90_19_64", "x" * 100]
)
def test_not_a_mac(mac: str) -> None:
    assert mac_value(mac) is None
    assert not is_locally_administered(mac)
    assert not is_multicast(mac)
    assert MacVendorDB(()).lookup(mac) is None


@pytest.mark.parametrize(
    ("mac", "local", "multicast"),
    [
        ("68:db:f5:90:19:64", False, False),
        ("02:00:00:00:00:01", True, False),
        ("da:a1:19:4c:2b:10", True, False),  # a phone's per-network random address
        ("6a:db:f5:90:19:64", True, False),
        ("01:00:5e:00:00:fb", False, True),  # mDNS IPv4 group
        ("33:33:00:00:00:fb", True, True),  # mDNS IPv6 group
        ("ff:ff:ff:ff:ff:ff", True, True),
    ],
)
def test_address_bits(mac: str, local: bool, multicast: bool) -> None:
    assert is_locally_administered(mac) is local
    assert is_multicast(mac) is multicast


def test_random_and_group_addresses_have_no_vendor() -> None:
    db = system_db()
    assert db.lookup("6a:db:f5:90:19:64") is None  # Amazon's OUI with the local bit set
    assert db.lookup("69:db:f5:90:19:64") is None  # ... with the group bit set


@pytest.mark.parametrize(
    ("organisation", "vendor"),
    [
        ("Sonos, Inc.", "Sonos"),
        ("Amazon Technologies Inc.", "Amazon"),
        ("Apple, Inc.", "Apple"),
        ("Google, Inc.", "Google"),
        ("Espressif Inc.", "Espressif"),
        ("TP-LINK TECHNOLOGIES CO.,LTD.", "TP-LINK"),
        ("Samsung Electronics Co.,Ltd", "Samsung Electronics"),
        ("Shenzhen X Co.Ltd.", "Shenzhen X"),
        ("Microsoft Corporation", "Microsoft"),
        ("Intel Corporate", "Intel"),
        ("Foo GmbH & Co. KG", "Foo"),
        ("Bar S.A.", "Bar"),
        ("Demant Enterprise A/S", "Demant Enterprise"),
        ("Tempo Australia Pty Ltd", "Tempo Australia"),
        ("Cisco Systems, Inc", "Cisco Systems"),
        ("  Spaced   Out  Ltd ", "Spaced Out"),
        ("Technology", "Technology"),  # never shortened to nothing
        ("Co., Ltd.", "Co"),
    ],
)
def test_friendly_vendor(organisation: str, vendor: str) -> None:
    assert friendly_vendor(organisation) == vendor


def write_registry(folder: Path, filename: str, registry: str, rows: list[tuple[str, str]]) -> None:
    with (folder / filename).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Registry", "Assignment", "Organization Name", "Organization Address"])
        for assignment, organisation in rows:
            writer.writerow([registry, assignment, organisation, "1 Road\nTown"])


def test_longest_match_and_skipped_holders(tmp_path: Path) -> None:
    write_registry(
        tmp_path, "oui.csv", "MA-L", [("ACBBCC", "Big Corp."), ("112233", "Private"), ("BAD", "x")]
    )
    write_registry(tmp_path, "mam.csv", "MA-M", [("ACBBCCD", "Middle GmbH"), ("ZZZZZZZ", "broken")])
    write_registry(tmp_path, "oui36.csv", "MA-S", [("ACBBCCDE1", "Small Ltd")])
    db = MacVendorDB.load(tmp_path)
    assert len(db) == 3
    assert db.lookup("ac:bb:cc:00:00:00") == "Big"
    assert db.lookup("ac:bb:cc:d0:00:00") == "Middle"
    assert db.lookup("ac:bb:cc:de:10:00") == "Small"
    assert db.lookup("ac:bb:cc:de:20:00") == "Middle"
    assert db.lookup("11:22:33:00:00:00") is None  # "Private" names no vendor


def test_missing_registry_gives_an_empty_database_and_says_what_to_install(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway.enrichers.macvendor"):
        db = MacVendorDB.load(tmp_path / "absent")
    assert len(db) == 0
    assert db.lookup("68:db:f5:90:19:64") is None
    assert "apt-get install ieee-data" in caplog.text


def test_sizes_of_the_debian_registries() -> None:
    db = system_db()
    sizes = {bits: len(table) for bits, table in db.tables}
    assert [bits for bits, _ in db.tables] == [36, 28, 24]  # longest first
    assert sizes[24] > 30_000
    assert sizes[28] > 4_000
    assert sizes[36] > 9_000


def test_agrees_with_an_independent_copy_of_the_registry() -> None:
    """nyu-mlab's copy of MA-L (newer than Debian's ieee-data): most prefixes and names agree.

    Differences are assignments made since Debian's snapshot, and renamed holders (Technicolor is
    now Vantiva); both stay a small share.
    """
    if not REFERENCE.is_file():
        pytest.skip(f"reference registry not found at {REFERENCE}")
    db = system_db()
    with REFERENCE.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle) if row[0] == "MA-L" and len(row[1]) == 6]
    sample = [row for row in rows[::20] if row[2] not in ("IEEE Registration Authority", "Private")]
    sample = [row for row in sample if not int(row[1][:2], 16) & 0x03]  # a few MA-L have the bits
    found = agree = 0
    for _, assignment, organisation, *_ in sample:
        vendor = db.lookup(assignment + "000000")
        found += vendor is not None
        agree += vendor == friendly_vendor(organisation)
    assert len(sample) > 1_500
    assert found / len(sample) > 0.8
    assert agree / found > 0.9
