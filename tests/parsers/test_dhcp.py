"""DHCP parser: real captures against tshark's dissection, hand-built options, and fuzzing."""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.parsers.dhcp import (
    MAX_HOSTNAME,
    OPTIONS_START,
    DhcpMessage,
    DhcpMessageType,
    parse_dhcp,
)
from tests.conftest import CAPTURES

WITHOUT_DHCP = {
    "D-LinkDoorSensor_Setup-C-1-STA.pcap",
    "HomeMaticPlug_Setup-C-1-STA.pcap",
    "HueSwitch_Setup-A-1-STA.pcap",
}
DHCP_PCAPS = sorted(
    [
        # these three IoT Sentinel captures start after the device joined: they hold no DHCP
        *(p for p in CAPTURES.glob("iot_sentinel/*.pcap") if p.name not in WITHOUT_DHCP),
        CAPTURES / "zeek" / "dhcp_dhcp.pcap",
        CAPTURES / "ndpi" / "android.pcap",
        CAPTURES / "ndpi" / "iphone.pcap",
    ]
)
ORACLE_FIELDS = (
    "udp.payload",
    "dhcp.option.dhcp",
    "dhcp.hw.mac_addr",
    "dhcp.ip.client",
    "dhcp.ip.your",
    "dhcp.option.hostname",
    "dhcp.option.vendor_class_id",
    "dhcp.option.request_list_item",
    "dhcp.option.router",
    "dhcp.option.domain_name_server",
    "dhcp.option.requested_ip_address",
    "dhcp.option.dhcp_server_id",
)
MESSAGE_TYPES = list(DhcpMessageType)


def need_captures() -> None:
    if not CAPTURES.is_dir():
        pytest.skip(f"real captures not found at {CAPTURES} (the shared folder beside the checkout)")
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (Debian package tshark): it is the independent oracle")


@cache
def tshark_dhcp(pcap: Path) -> tuple[dict[str, list[str]], ...]:
    """tshark's reading of each DHCP packet: field name -> values, with the UDP payload in hex."""
    command = ["tshark", "-r", str(pcap), "-Y", "dhcp", "-T", "json"]
    for name in ORACLE_FIELDS:
        command += ["-e", name]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120).stdout
    packets: list[dict[str, Any]] = json.loads(out or "[]")
    return tuple(packet["_source"]["layers"] for packet in packets)


def real_payloads() -> list[bytes]:
    need_captures()
    return [
        bytes.fromhex(layers["udp.payload"][0])
        for pcap in DHCP_PCAPS
        if pcap.is_file()
        for layers in tshark_dhcp(pcap)
    ]


def one(layers: dict[str, list[str]], name: str) -> str | None:
    values = layers.get(name)
    return values[0] if values else None


def nonzero(address: str | None) -> str | None:
    return None if address in (None, "0.0.0.0") else address


def message(payload: bytes) -> DhcpMessage:
    parsed = parse_dhcp(payload)
    assert parsed is not None
    return parsed


# -- real captures, tshark as the oracle ---------------------------------------------------------


@pytest.mark.parametrize("pcap", DHCP_PCAPS, ids=lambda p: p.name)
def test_every_field_matches_tshark(pcap: Path) -> None:
    need_captures()
    packets = tshark_dhcp(pcap)
    assert packets, f"{pcap.name} holds no DHCP"
    for layers in packets:
        parsed = message(bytes.fromhex(layers["udp.payload"][0]))
        code = one(layers, "dhcp.option.dhcp")
        assert parsed.message_type == (MESSAGE_TYPES[int(code) - 1] if code else None)
        assert parsed.client_mac == one(layers, "dhcp.hw.mac_addr")
        assert parsed.ciaddr == nonzero(one(layers, "dhcp.ip.client"))
        assert parsed.yiaddr == nonzero(one(layers, "dhcp.ip.your"))
        assert parsed.hostname == one(layers, "dhcp.option.hostname")
        assert parsed.vendor_class == one(layers, "dhcp.option.vendor_class_id")
        items = layers.get("dhcp.option.request_list_item", [])
        assert parsed.param_request_list == tuple(int(i) for i in items)
        assert parsed.fingerprint == ",".join(items)
        assert parsed.routers == tuple(layers.get("dhcp.option.router", []))
        assert parsed.dns_servers == tuple(layers.get("dhcp.option.domain_name_server", []))
        assert parsed.requested_ip == one(layers, "dhcp.option.requested_ip_address")
        assert parsed.server_id == one(layers, "dhcp.option.dhcp_server_id")
        assert not parsed.malformed


def capture_messages(relative: str) -> list[DhcpMessage]:
    need_captures()
    return [message(bytes.fromhex(layers["udp.payload"][0])) for layers in tshark_dhcp(CAPTURES / relative)]


def first_discover(pcap_name: str) -> DhcpMessage:
    folder = "ndpi" if pcap_name in ("iphone.pcap", "android.pcap") else "iot_sentinel"
    for parsed in capture_messages(f"{folder}/{pcap_name}"):
        if parsed.message_type is DhcpMessageType.DISCOVER:
            return parsed
    pytest.fail(f"no DHCPDISCOVER in {pcap_name}")


@pytest.mark.parametrize(
    ("pcap_name", "mac", "hostname", "vendor_class", "fingerprint"),
    [
        ("D-LinkDayCam_Setup-A-1-STA.pcap", "b0:c5:54:1c:71:85", "DCS-930LB", "udhcp 1.12.1",
         "1,3,6,12,15,28,42"),
        ("TP-LinkPlugHS100_Setup-A-1-STA.pcap", "50:c7:bf:00:fc:a3", "HS100(EU)", "udhcp 0.9.9-pre",
         "1,3,6,12,15,28"),
        ("SmarterCoffee_Setup-A-1-STA.pcap", "5c:cf:7f:07:ae:fb", "ESP_07AEFB", None,
         "1,3,28,6,15,44,46,47,31,33,121,43"),
        ("Aria_Setup-A-1-STA.pcap", "20:f8:5e:ca:91:52", "GainSpanca9152", None, "1,3,6,15,66,67,13,44"),
        ("iphone.pcap", "d8:30:62:56:00:1c", "Lucas-iMac", None, "1,121,3,6,15,119,252,95,44,46"),
    ],
)  # fmt: skip
def test_real_devices_say_who_they_are(
    pcap_name: str, mac: str, hostname: str, vendor_class: str | None, fingerprint: str
) -> None:
    discover = first_discover(pcap_name)
    assert (discover.client_mac, discover.hostname) == (mac, hostname)
    assert (discover.vendor_class, discover.fingerprint) == (vendor_class, fingerprint)


def test_android_phone_vendor_class_and_lease() -> None:
    phone = [m for m in capture_messages("ndpi/android.pcap") if m.client_mac == "4c:6a:f6:9f:f6:27"]
    assert {m.vendor_class for m in phone} == {"android-dhcp-9", None}
    ack = next(m for m in phone if m.message_type is DhcpMessageType.ACK)
    assert (ack.client_ip, ack.routers, ack.server_id) == ("192.168.2.16", ("192.168.2.1",), "192.168.2.1")


def test_zeek_trace_has_every_client_and_server_message_type() -> None:
    parsed = capture_messages("zeek/dhcp_dhcp.pcap")
    assert {m.message_type for m in parsed} == set(MESSAGE_TYPES[:8])
    offer = next(m for m in parsed if m.message_type is DhcpMessageType.OFFER)
    assert offer.dns_servers == ("128.2.1.11", "128.2.1.10")
    assert offer.vendor_class == "ArubaAP"


# -- hand-built messages -------------------------------------------------------------------------


def build(
    *options: tuple[int, bytes],
    op: int = 1,
    htype: int = 1,
    hlen: int = 6,
    ciaddr: bytes = bytes(4),
    yiaddr: bytes = bytes(4),
    end: bytes = b"\xff",
) -> bytes:
    header = bytes([op, htype, hlen, 0]) + (0x12345678).to_bytes(4, "big") + bytes(4)
    header += ciaddr + yiaddr + bytes(8)
    header += bytes.fromhex("aabbccddeeff") + bytes(10) + bytes(64 + 128)
    body = b"".join(bytes([code, len(value)]) + value for code, value in options)
    return header + b"\x63\x82\x53\x63" + body + end


def test_header_fields() -> None:
    parsed = message(build((53, b"\x03"), ciaddr=bytes([10, 0, 0, 7])))
    assert parsed.xid == 0x12345678
    assert parsed.message_type is DhcpMessageType.REQUEST
    assert parsed.client_mac == "aa:bb:cc:dd:ee:ff"
    assert parsed.client_ip == "10.0.0.7"
    assert parsed.yiaddr is None


def test_yiaddr_is_the_client_ip_when_ciaddr_is_empty() -> None:
    parsed = message(build((53, b"\x05"), op=2, yiaddr=bytes([192, 168, 1, 20])))
    assert (parsed.ciaddr, parsed.yiaddr, parsed.client_ip) == (None, "192.168.1.20", "192.168.1.20")


def test_client_fqdn_in_wire_form() -> None:
    name = b"\x07kitchen\x03lab\x07example\x00"
    assert message(build((81, b"\x05\x00\x00" + name))).client_fqdn == "kitchen.lab.example"


def test_client_fqdn_in_ascii_form() -> None:
    assert message(build((81, b"\x01\x00\x00laptop.lab."))).client_fqdn == "laptop.lab"


@pytest.mark.parametrize(
    "value", [b"", b"\x05\x00", b"\x05\x00\x00", b"\x05\x00\x00\x3fabc", b"\x05\x00\x00\x00"]
)
def test_broken_or_empty_client_fqdn_is_none(value: bytes) -> None:
    assert message(build((81, value))).client_fqdn is None


def test_hostname_is_printable_and_bounded() -> None:
    parsed = message(build((12, b"\x00cam\x07era\x1b[31m" + b"x" * 200)))
    assert parsed.hostname is not None
    assert parsed.hostname.startswith("camera[31m")
    assert len(parsed.hostname) == MAX_HOSTNAME


def test_hostname_in_utf8_is_kept() -> None:
    assert message(build((12, "salle-à-manger".encode()))).hostname == "salle-à-manger"


def test_repeated_options_are_concatenated_rfc3396() -> None:
    parsed = message(build((55, b"\x01\x03"), (60, b"MSFT "), (55, b"\x06\x0f"), (60, b"5.0")))
    assert parsed.fingerprint == "1,3,6,15"
    assert parsed.vendor_class == "MSFT 5.0"


def test_pad_options_and_missing_end_are_accepted() -> None:
    payload = build((53, b"\x01"), end=b"")
    parsed = message(payload[:OPTIONS_START] + b"\x00\x00" + payload[OPTIONS_START:])
    assert parsed.message_type is DhcpMessageType.DISCOVER
    assert not parsed.malformed


def test_options_after_end_are_ignored() -> None:
    parsed = message(build((53, b"\x01")) + bytes([12, 3]) + b"bad")
    assert parsed.hostname is None


def test_option_running_past_the_payload_is_malformed_but_keeps_earlier_options() -> None:
    parsed = message(build((53, b"\x08"), end=b"\x0c\x20short"))
    assert parsed.message_type is DhcpMessageType.INFORM
    assert parsed.hostname is None
    assert parsed.malformed


def test_address_lists() -> None:
    parsed = message(build((3, bytes([10, 0, 0, 1, 10, 0, 0, 2])), (6, bytes([9, 9, 9, 9, 1]))))
    assert parsed.routers == ("10.0.0.1", "10.0.0.2")
    assert parsed.dns_servers == ("9.9.9.9",)  # a trailing partial address is dropped


@pytest.mark.parametrize("code", [b"\x00", b"\x13", b"\x01\x02", b""])
def test_unknown_or_bad_message_type_is_none(code: bytes) -> None:
    assert message(build((53, code))).message_type is None


def test_non_ethernet_hardware_has_no_mac() -> None:
    assert message(build(htype=6)).client_mac is None
    assert message(build(hlen=16)).client_mac is None


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x01" * 239,
        build()[:239],
        build()[:236] + b"\x63\x82\x53\x64",  # wrong cookie: plain BOOTP or not DHCP at all
        b"\x03" + build()[1:],  # op neither request nor reply
    ],
)
def test_not_dhcp_is_none(payload: bytes) -> None:
    assert parse_dhcp(payload) is None


def test_bounded_walk_on_many_options() -> None:
    parsed = message(build(*[(224, b"x")] * 5000, (12, b"late")))
    assert parsed.hostname is None  # beyond MAX_OPTIONS: not read


# -- fuzzing -------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=1500))
def test_random_bytes_never_raise(payload: bytes) -> None:
    parsed = parse_dhcp(payload)
    assert parsed is None or isinstance(parsed, DhcpMessage)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_random_options_after_a_valid_header_never_raise(options: bytes) -> None:
    parsed = parse_dhcp(build()[:OPTIONS_START] + options)
    assert parsed is not None
    assert parsed.hostname is None or len(parsed.hostname) <= MAX_HOSTNAME


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_real_payloads_never_raise(data: st.DataObject) -> None:
    payloads = real_payloads()
    payload = bytearray(data.draw(st.sampled_from(payloads)))
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(payload) - 1))
        payload[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(payload)))
    parse_dhcp(bytes(payload))
    parse_dhcp(bytes(payload[:cut]))
