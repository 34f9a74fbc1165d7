"""Devices and routers told apart on real captures (DESIGN: device keys and direction)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import default_config
from gateway.replay import replay_files
from gateway.sinks.lineproto import MemorySink
from tests.conftest import CAPTURES

pytestmark = pytest.mark.skipif(not CAPTURES.is_dir(), reason="shared/captures absent")


def devices_of(capture: Path) -> set[str]:
    gw = Gateway(default_config(), MemorySink())
    replay_files(gw, [capture])
    return set(gw.totals)


@pytest.mark.parametrize(
    ("capture", "devices"),
    [
        # a MacBook behind a Juniper router that forwards from public addresses
        ("zeek/tls_chrome-34-google.pcap", {"a8:20:66:48:ca:51"}),
        # a container behind Docker's bridge: the bridge sends from Google's address, so it is the router
        ("zeek/quic_curl-8.1.2-dev-http3-www-google-de.pcap", {"02:42:ac:11:00:02"}),
        # the DHCP server answers from a public campus address: it is the router, the client a device
        ("zeek/dhcp_dhcp.pcap", {"90:b1:1c:99:49:29"}),
        # the lab gateway of IoT Sentinel never sends from a public address, but DHCP names it the router
        ("iot_sentinel/EdnetCam1_Setup-A-1-STA.pcap", {"3c:49:37:03:17:db"}),
        # a camera streaming to a phone on the LAN: both are devices, the router is not
        ("monitr/yi_camera_sample.pcap", {"b0:d5:9d:b9:f0:b4", "64:bc:0c:6a:81:f3"}),
    ],
)
def test_devices_and_routers(capture: str, devices: set[str]) -> None:
    assert devices_of(CAPTURES / capture) == devices


def test_linux_cooked_capture_keys_devices_by_lan_address() -> None:
    found = devices_of(CAPTURES / "nfstream/mdns_apple_2011.pcap")
    assert found
    assert all(d.startswith("ip:") for d in found)
    assert "ip:224.0.0.251" not in found  # a multicast group never sends
