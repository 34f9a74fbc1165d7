"""Real captures, read with the project's reader and parsers, are recognised with the right kind and vendor.

The captures live in ../shared/captures (see its SOURCES.md); without them these tests skip.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from gateway.profiles import Evidence, Kind, Match, Matcher, ProfileIndex
from tests.conftest import CAPTURES
from tests.profiles.captures import devices, sightings, source_macs, vendors

pytestmark = pytest.mark.skipif(
    not CAPTURES.is_dir(),
    reason=f"real captures not found at {CAPTURES} (the shared folder beside the checkout)",
)

ZEROCONF = CAPTURES / "mdns" / "zeroconf_real_device_mdns.pcap"
APPLE = CAPTURES / "nfstream" / "mdns_apple_2011.pcap"
SONOS = CAPTURES / "ndpi" / "sonos.pcapng"
ZEEK_DHCP = CAPTURES / "zeek" / "dhcp_dhcp.pcap"
SENTINEL = CAPTURES / "iot_sentinel"


@cache
def matcher() -> Matcher:
    return Matcher(ProfileIndex.load())


def recognised(path: Path, device: str) -> Match:
    evidence = devices(path).get(device)
    assert evidence is not None, f"{device} not seen in {path.name}: {sorted(devices(path))}"
    found = matcher().match(evidence)
    assert found is not None, f"{device} in {path.name} not recognised: {evidence}"
    return found


def expect(found: Match, profile: str, kind: Kind, vendor: str) -> None:
    assert (found.profile.id, found.profile.kind, found.profile.vendor) == (profile, kind, vendor), (
        found.reasons
    )


# Frames of python-zeroconf's real-device capture: the headers give each its own source MAC.
ZEROCONF_DEVICES = [
    ("02:00:00:00:00:0c", "thread_border_router", Kind.NETWORK, "Thread"),  # Apple-style border router
    ("02:00:00:00:00:0d", "home_assistant", Kind.HUB, "Home Assistant"),  # probes, malformed
    ("02:00:00:00:00:0f", "android_phone", Kind.PHONE, "Android"),  # Android.local
    ("02:00:00:00:00:10", "eufy_homebase", Kind.HUB, "eufy Security"),  # HomeKit md=T8010, malformed
    ("02:00:00:00:00:11", "android_tv", Kind.TV, "Android TV"),  # "TV Beneden (2)"
    ("02:00:00:00:00:12", "sonos_speaker", Kind.SPEAKER, "Sonos"),  # _sonos._tcp, malformed
    ("02:00:00:00:00:13", "matter_device", Kind.UNKNOWN, "Matter"),  # commissioned nodes
    ("54:2a:1b:f0:57:76", "sonos_speaker", Kind.SPEAKER, "Sonos"),  # the original frame: Sonos OUI
]


@pytest.mark.parametrize(("device", "profile", "kind", "vendor"), ZEROCONF_DEVICES)
def test_zeroconf_real_devices(device: str, profile: str, kind: Kind, vendor: str) -> None:
    expect(recognised(ZEROCONF, device), profile, kind, vendor)


def test_malformed_mdns_is_counted_not_fatal() -> None:
    seen = list(sightings(ZEROCONF))
    malformed = [s.device for s in seen if s.malformed]
    assert len(malformed) == 4  # frames 4, 5, 7 and 9, as tshark says (tests/parsers/test_mdns.py)
    assert "02:00:00:00:00:10" in malformed
    assert "02:00:00:00:00:12" in malformed


# nfstream's 2011 mDNS capture is Linux cooked: no MAC, so devices are their addresses.
APPLE_DEVICES = [
    ("fe80::5a55:caff:fe1b:2bb3", "apple_tv", Kind.STREAMING_PLAYER),  # Apple TV (3)
    ("fe80::5a55:caff:fe04:9b7a", "apple_tv", Kind.STREAMING_PLAYER),  # Apple TV (2)
    ("65.50.125.227", "apple_tv", Kind.STREAMING_PLAYER),  # Apple TV (2) over IPv4
    ("fe80::da30:62ff:fe2e:6820", "apple_airport", Kind.NETWORK),  # AirPort Express
    ("fe80::224:36ff:fe9a:4d3a", "apple_airport", Kind.NETWORK),  # AirPort Express "Victor Internet"
    ("fe80::7aca:39ff:fefd:e4ca", "apple_airport", Kind.NETWORK),  # Time Capsule
    ("fe80::fa1e:dfff:fef7:c708", "apple_airport", Kind.NETWORK),  # AirPort Extreme
    ("fe80::216:cbff:fec5:7ee2", "apple_airport", Kind.NETWORK),  # "Putty"
    ("fe80::ca2a:14ff:fe34:23f5", "apple_mac", Kind.COMPUTER),  # Bryan's iMac
    ("fe80::226:8ff:fee3:4a1d", "apple_mac", Kind.COMPUTER),  # MacBook Pro
    ("fe80::129a:ddff:fea3:7ca", "apple_mac", Kind.COMPUTER),  # Thien Huynh's iMac
    ("fe80::21f:5bff:fed3:f517", "apple_mac", Kind.COMPUTER),  # Sundus-Lodhis-MacBook-Air (host name)
    ("fe80::5a1f:aaff:fea1:f05d", "apple_iphone", Kind.PHONE),  # Caitlins-iPhone
    ("fe80::da9e:3fff:fe65:955a", "apple_iphone", Kind.PHONE),  # Cs-iPhone
    ("fe80::3651:c9ff:fee5:58b5", "apple_ipad", Kind.PHONE),  # Christys-iPad
]


@pytest.mark.parametrize(("device", "profile", "kind"), APPLE_DEVICES)
def test_apple_capture(device: str, profile: str, kind: Kind) -> None:
    expect(recognised(APPLE, device), profile, kind, "Apple")


def test_apple_capture_linux_hosts_are_computers() -> None:
    linux = [d for d, e in devices(APPLE).items() if "_workstation._tcp" in e.service_types]
    assert len(linux) >= 4
    for device in linux:
        expect(recognised(APPLE, device), "linux_computer", Kind.COMPUTER, "Linux")


def test_apple_tv_reasons_name_the_model() -> None:
    found = recognised(APPLE, "fe80::5a55:caff:fe1b:2bb3")
    assert found.reasons[0] == "mDNS _airplay._tcp model='AppleTV2,1' (+100)"


def test_sonos_capture_by_mac() -> None:
    """nDPI's Sonos capture holds no mDNS or DHCP: the players' MAC prefixes say Sonos."""
    found = {
        mac: matcher().match(Evidence(mac=mac, mac_vendor=vendors().lookup(mac)))
        for mac in source_macs(SONOS)
    }
    sonos = {mac for mac, match in found.items() if match and match.profile.id == "sonos_speaker"}
    assert sonos == {"34:7e:5c:ff:a2:6e", "5c:aa:fd:02:92:1a"}
    assert found["9c:58:3c:a7:ee:cc"].profile.id == "apple_device"  # the phone that controls them


def test_zeek_dhcp_host_name_and_maker() -> None:
    evidence = devices(ZEEK_DHCP)["90:b1:1c:99:49:29"]
    assert evidence.hostnames == {"btest.is.cool"}
    expect(recognised(ZEEK_DHCP, "90:b1:1c:99:49:29"), "dell_computer", Kind.COMPUTER, "Dell")
    assert "00:0c:29:40:0e:ef" not in {d for d, e in devices(ZEEK_DHCP).items() if e.hostnames}  # the server


def test_ndpi_phones_by_dhcp() -> None:
    android = CAPTURES / "ndpi" / "android.pcap"
    iphone = CAPTURES / "ndpi" / "iphone.pcap"
    expect(recognised(android, "4c:6a:f6:9f:f6:27"), "android_phone", Kind.PHONE, "Android")
    expect(recognised(iphone, "c4:61:8b:35:82:a9"), "apple_iphone", Kind.PHONE, "Apple")
    expect(recognised(iphone, "d8:30:62:56:00:1c"), "apple_mac", Kind.COMPUTER, "Apple")


# IoT Sentinel set-up captures: DHCP host names, mDNS, MAC prefixes and the names each device resolved.
SENTINEL_DEVICES = [
    ("Aria_Setup-A-1-STA.pcap", "20:f8:5e:ca:91:52", "fitbit_aria", Kind.SENSOR, "Fitbit"),  # GainSpanca9152
    (
        "D-LinkDayCam_Setup-A-1-STA.pcap",
        "b0:c5:54:1c:71:85",
        "dlink_camera",
        Kind.CAMERA,
        "D-Link",
    ),  # DCS-930LB
    ("D-LinkSensor_Setup-A-1-STA.pcap", "90:8d:78:a8:e1:43", "dlink_sensor", Kind.SENSOR, "D-Link"),
    ("D-LinkSwitch_Setup-A-1-STA.pcap", "90:8d:78:a9:3d:6f", "dlink_plug", Kind.PLUG, "D-Link"),  # DSP-W215
    ("D-LinkWaterSensor_Setup-A-1-STA.pcap", "6c:72:20:c5:17:5a", "dlink_sensor", Kind.SENSOR, "D-Link"),
    ("EdimaxCam1_Setup-A-1-STA.pcap", "74:da:38:80:7a:08", "edimax_camera", Kind.CAMERA, "Edimax"),
    ("EdimaxPlug2101W_Setup-A-1-STA.pcap", "74:da:38:23:22:7b", "edimax_plug", Kind.PLUG, "Edimax"),
    (
        "EdnetGateway_Setup-A-1-STA.pcap",
        "ac:cf:23:62:3c:6e",
        "hiflying_device",
        Kind.UNKNOWN,
        "Hi-Flying (module)",
    ),
    ("HueSwitch_Setup-A-1-STA.pcap", "00:17:88:24:76:ff", "hue_bridge", Kind.HUB, "Philips Hue"),  # md=BSB002
    ("MAXGateway_Setup-A-1-STA.pcap", "00:1a:22:03:cb:be", "eq3_max_cube", Kind.HUB, "eQ-3"),  # KEQ0817541
    (
        "SmarterCoffee_Setup-A-1-STA.pcap",
        "5c:cf:7f:07:ae:fb",
        "espressif_device",
        Kind.UNKNOWN,
        "Espressif (module)",
    ),
    ("TP-LinkPlugHS100_Setup-A-1-STA.pcap", "50:c7:bf:00:fc:a3", "kasa_plug", Kind.PLUG, "TP-Link Kasa"),
    ("WeMoInsightSwitch_Setup-A-1-STA.pcap", "94:10:3e:41:c2:05", "wemo_switch", Kind.PLUG, "Belkin WeMo"),
    ("WeMoSwitch_Setup-A-1-STA.pcap", "94:10:3e:35:01:c1", "wemo_switch", Kind.PLUG, "Belkin WeMo"),
    (
        "iKettle2_Setup-A-1-STA.pcap",
        "5c:cf:7f:06:d9:02",
        "espressif_device",
        Kind.UNKNOWN,
        "Espressif (module)",
    ),
]


@pytest.mark.parametrize(("capture", "device", "profile", "kind", "vendor"), SENTINEL_DEVICES)
def test_iot_sentinel(capture: str, device: str, profile: str, kind: Kind, vendor: str) -> None:
    expect(recognised(SENTINEL / capture, device), profile, kind, vendor)


def test_iot_sentinel_dhcp_host_names_reach_the_evidence() -> None:
    names = {
        "Aria_Setup-A-1-STA.pcap": ("20:f8:5e:ca:91:52", "GainSpanca9152"),
        "D-LinkDayCam_Setup-A-1-STA.pcap": ("b0:c5:54:1c:71:85", "DCS-930LB"),
        "MAXGateway_Setup-A-1-STA.pcap": ("00:1a:22:03:cb:be", "KEQ0817541"),
        "TP-LinkPlugHS100_Setup-A-1-STA.pcap": ("50:c7:bf:00:fc:a3", "HS100(EU)"),
    }
    for capture, (device, name) in names.items():
        assert name in devices(SENTINEL / capture)[device].hostnames
