"""The facts in device_profiles/ hold together: MAC prefixes belong to the makers, thresholds are measured."""

from __future__ import annotations

import csv
from functools import cache

import pytest

from gateway.enrichers.macvendor import friendly_vendor
from gateway.enrichers.orgs import OrgDB, vendor_words
from gateway.profiles import Kind, Profile, load_profiles
from gateway.profiles.index import DEFAULT_SOURCE
from tests.conftest import SHARED

# The IEEE MA-L registry as of 2025 (Debian 12's ieee-data is from 2022 and misses newer prefixes).
REGISTRY = SHARED / "reference" / "ieee-oui" / "oui.csv"
# Dubois et al., PETS 2020: upload rate of an activation, per assistant family.
MEASURED_BPS = {"amazon": 12172, "google": 46086, "apple": 76366, "harman": 13568}


@cache
def profiles() -> tuple[Profile, ...]:
    return load_profiles(DEFAULT_SOURCE)


@cache
def orgs() -> OrgDB:
    return OrgDB.load()


@cache
def registry() -> dict[str, str]:
    with REGISTRY.open(encoding="utf-8", newline="") as handle:
        return {row[1].lower(): row[2] for row in csv.reader(handle) if len(row) >= 3 and len(row[1]) == 6}


def words(text: str) -> set[str]:
    return set(vendor_words(text))


@pytest.mark.skipif(not REGISTRY.is_file(), reason=f"IEEE registry copy not found at {REGISTRY}")
@pytest.mark.parametrize("profile", profiles(), ids=lambda p: p.id)
def test_mac_prefixes_are_registered_to_the_maker(profile: Profile) -> None:
    """A prefix of a chip maker (Texas Instruments, Espressif) would claim every device built on it."""
    maker = orgs().organisation(profile.maker) if profile.maker else None
    for prefix in profile.rules.mac_prefixes:
        holder = registry().get(prefix.replace(":", ""))
        assert holder, f"{profile.id}: {prefix} is not in the IEEE registry"
        org = orgs().organisation(orgs().maker_key(holder) or "")
        same_owner = maker is not None and org is not None and org.owner == maker.owner
        shared = words(friendly_vendor(holder)) & (words(profile.vendor) | words(profile.model_family))
        assert same_owner or shared, f"{profile.id}: {prefix} belongs to {holder!r}"


def test_voice_assistant_thresholds_are_the_measured_ones() -> None:
    assistants = [p for p in profiles() if p.kind is Kind.VOICE_ASSISTANT]
    assert {p.maker for p in assistants} >= set(MEASURED_BPS)
    for profile in assistants:
        maker = orgs().organisation(profile.maker or "")
        owner = maker.owner if maker else None
        family = next(key for key in MEASURED_BPS if key in (profile.maker, owner) or key in profile.id)
        assert profile.activation_threshold_bps == MEASURED_BPS[family], profile.id


def test_the_issue_families_are_covered() -> None:
    ids = {p.id for p in profiles()}
    families = [
        "amazon_echo", "amazon_fire_tv", "google_nest_mini", "google_nest_hub", "chromecast", "android_tv",
        "apple_homepod", "apple_tv", "sonos_speaker", "roku_player", "samsung_tv", "lg_tv", "hue_bridge",
        "ikea_dirigera_hub", "kasa_plug", "tapo_plug", "shelly_plug", "tuya_device", "xiaomi_gateway",
        "ring_doorbell", "wyze_cam", "eufy_homebase", "nest_cam", "nest_thermostat",
        "netatmo_weather_station", "esphome_device", "tasmota_device", "home_assistant", "matter_device",
        "thread_border_router",
        "hp_printer", "brother_printer", "epson_printer", "apple_iphone", "apple_ipad", "android_phone",
        "apple_mac", "windows_pc", "linux_computer",
    ]  # fmt: skip
    assert not set(families) - ids
    assert len(ids) >= 40


def test_notes_are_written_for_a_workshop() -> None:
    for profile in profiles():
        assert len(profile.notes) >= 80, f"{profile.id}: say what the device is known to send"
        assert profile.notes.rstrip().endswith((".", ")")), profile.id


def test_one_file_per_vendor_family() -> None:
    files = {p.source.partition(":")[0] for p in profiles()}
    assert len(files) >= 20
    assert all(name.endswith(".yaml") for name in files)
