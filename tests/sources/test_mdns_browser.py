"""mdns_browser: devices advertised by python-zeroconf and by avahi-daemon, found across a veth.

The root tests build a small LAN out of network namespaces: a "dev" namespace where each simulated
device has its own macvlan interface (its own MAC and address) on one veth, and a "gw" namespace,
on the other end, where the browser or `mouchard discover` runs. Nothing leaves those namespaces.

Run as a script (``python tests/sources/test_mdns_browser.py advertise SPEC``), this file is the
advertiser the end-to-end test starts inside the device namespace.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from zeroconf import ServiceInfo
from zeroconf._dns import DNSAddress, DNSPointer, DNSService, DNSText
from zeroconf._protocol.outgoing import DNSOutgoing
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf
from zeroconf.const import _CLASS_IN, _FLAGS_AA, _FLAGS_QR_RESPONSE, _TYPE_A, _TYPE_PTR, _TYPE_SRV, _TYPE_TXT

from gateway.sources.mdns_browser import (
    BrowserError,
    BrowserThread,
    DeviceEvidence,
    Identity,
    MdnsBrowser,
    MdnsSighting,
    devices_from_sightings,
    friendly_name,
    heuristic_identity,
    instance_label,
    parse_ip_neigh,
    parse_proc_arp,
    valid_service_type,
    zeroconf_interfaces,
)
from tests.netns import Namespace, NetnsLab

ROOT = Path(__file__).resolve().parents[2]

SUBNET = "192.168.77"
GW_IP = f"{SUBNET}.1"


def needs_root(test: Callable[..., None]) -> Callable[..., None]:
    """Marked ``root``; skipped only where the suite does not run as root (CI does)."""
    skip = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (CI runs as root)")
    marked: Callable[..., None] = pytest.mark.root(skip(test))
    return marked


# --- Pure parts: identification, grouping, names, neighbour tables --------------------------------


def sighting(
    service_type: str,
    instance: str,
    host: str = "host.local.",
    addresses: tuple[str, ...] = ("192.168.1.10",),
    removed: bool = False,
    **txt: str,
) -> MdnsSighting:
    full_type = f"{service_type}.local."
    return MdnsSighting(
        name=f"{instance}.{full_type}",
        instance=instance,
        service_type=full_type,
        host=host,
        addresses=addresses,
        port=8009,
        properties={k.lower(): v for k, v in txt.items()},
        first_seen=100.0,
        last_seen=110.0,
        removed=removed,
    )


def identity(*sightings: MdnsSighting) -> Identity | None:
    return heuristic_identity(DeviceEvidence(sightings, None, None))


@pytest.mark.parametrize(
    ("sightings", "expected"),
    [
        (
            [sighting("_googlecast._tcp", "Google-Home-Mini-1a", md="Google Home Mini", fn="Kitchen")],
            ("voice_assistant", "Google", "Google Home Mini"),
        ),
        (
            [sighting("_googlecast._tcp", "Chromecast-2b", md="Chromecast", fn="TV")],
            ("streaming_player", "Google", "Chromecast"),
        ),
        (
            [
                sighting("_airplay._tcp", "Bedroom", model="AudioAccessory5,1"),
                sighting("_raop._tcp", "AABBCCDDEEFF@Bedroom", am="AudioAccessory5,1"),
            ],
            ("voice_assistant", "Apple", "HomePod mini"),
        ),
        (
            [sighting("_airplay._tcp", "Salon", model="AppleTV11,1")],
            ("streaming_player", "Apple", "Apple TV"),
        ),
        (
            [sighting("_companion-link._tcp", "Alice's iPhone", rpMd="iPhone14,2")],
            ("phone", "Apple", "iPhone"),
        ),
        (
            [sighting("_sonos._tcp", "Sonos-542A1B"), sighting("_airplay._tcp", "Living Room", model="One")],
            ("speaker", "Sonos", "One"),
        ),
        (
            [sighting("_ipp._tcp", "HP LaserJet", ty="HP LaserJet", usb_MFG="HP")],
            ("printer", "HP", "HP LaserJet"),
        ),
        (
            [sighting("_ipp._tcp", "Office", ty="Brother HL-L2350DW")],
            ("printer", "Brother", "Brother HL-L2350DW"),
        ),
        ([sighting("_hap._tcp", "Plug 1A2B", ci="7", md="Eve Energy")], ("plug", None, "Eve Energy")),
        ([sighting("_hue._tcp", "Hue Bridge - 1A2B3C")], ("hub", "Philips Hue", None)),
        ([sighting("_amzn-wplay._tcp", "Fire TV")], ("streaming_player", "Amazon", None)),
    ],
)
def test_heuristic_identifies_common_devices(
    sightings: list[MdnsSighting], expected: tuple[str, str | None, str | None]
) -> None:
    assert identity(*sightings) == expected


def test_heuristic_says_nothing_about_unknown_services() -> None:
    assert identity(sighting("_acme-thing._tcp", "x")) is None
    assert identity(sighting("_airplay._tcp", "Machine", model="Machinery")) == ("speaker", None, "Machinery")


def test_sightings_sharing_a_host_or_address_are_one_device() -> None:
    cast = sighting("_googlecast._tcp", "Home-1", host="home.local.", md="Google Home Mini", fn="Kitchen")
    spotify = sighting("_spotify-connect._tcp", "Kitchen", host="home.local.")
    printer = sighting(
        "_ipp._tcp", "P", host="printer.local.", addresses=("192.168.1.20", "fe80::1"), ty="HP X"
    )
    by_address = sighting("_printer._tcp", "P", host="other-name.local.", addresses=("192.168.1.20",))
    gone = sighting("_sonos._tcp", "S", host="sonos.local.", addresses=("192.168.1.30",), removed=True)
    unresolved = sighting("_sonos._tcp", "T", host="", addresses=())
    devices = devices_from_sightings([cast, spotify, printer, by_address, gone, unresolved])
    assert [(d.name, d.id, d.services) for d in devices] == [
        ("Kitchen", "ip:192.168.1.10", ("_googlecast._tcp", "_spotify-connect._tcp")),
        ("P", "ip:192.168.1.20", ("_ipp._tcp", "_printer._tcp")),
    ]
    assert devices[1].addresses == ("192.168.1.20", "fe80::1")
    assert devices[1].hosts == ("printer.local", "other-name.local")


def test_the_mac_from_the_neighbour_table_is_the_id_and_joins_addresses() -> None:
    v4 = sighting("_airplay._tcp", "Salon", host="a.local.", addresses=("192.168.1.40",), model="AppleTV6,2")
    v6 = sighting(
        "_companion-link._tcp", "Salon", host="b.local.", addresses=("fe80::40",), rpMd="AppleTV6,2"
    )
    neighbours = {"192.168.1.40": "d0:81:7a:00:00:40", "fe80::40": "d0:81:7a:00:00:40"}
    devices = devices_from_sightings([v4, v6], neighbours=neighbours, mac_vendor=lambda mac: "Apple")
    assert len(devices) == 1
    device = devices[0]
    assert (device.id, device.mac, device.ip, device.kind, device.vendor) == (
        "d0:81:7a:00:00:40",
        "d0:81:7a:00:00:40",
        "192.168.1.40",
        "streaming_player",
        "Apple",
    )
    assert device.as_json()["services"] == ["_airplay._tcp", "_companion-link._tcp"]


def test_identify_is_a_seam_and_its_failures_do_not_hide_devices() -> None:
    seen: list[DeviceEvidence] = []

    def profiles(evidence: DeviceEvidence) -> tuple[str, str | None, str | None]:
        seen.append(evidence)
        return ("light", "IKEA", "TRADFRI gateway")

    def broken(evidence: DeviceEvidence) -> None:
        raise KeyError("bad profile")

    one = [sighting("_hap._tcp", "Gateway", ci="2")]
    assert [(d.kind, d.vendor, d.model) for d in devices_from_sightings(one, identify=profiles)] == [
        ("light", "IKEA", "TRADFRI gateway")
    ]
    assert seen[0].services == ("_hap._tcp.local.",)
    assert seen[0].properties() == {"ci": "2"}
    assert [(d.kind, d.vendor) for d in devices_from_sightings(one, identify=broken)] == [("unknown", None)]
    mac_only = devices_from_sightings(
        one,
        identify=lambda e: None,
        neighbours={"192.168.1.10": "04:0e:3c:00:00:01"},
        mac_vendor=lambda m: "HP",
    )
    assert [(d.kind, d.vendor) for d in mac_only] == [("unknown", "HP")]


def test_friendly_name_prefers_fn_then_the_owners_instance_name() -> None:
    assert friendly_name([sighting("_googlecast._tcp", "Google-Home-Mini-1a2b", fn="Kitchen")]) == "Kitchen"
    raop = sighting("_raop._tcp", "AABBCCDDEEFF@Living Room")
    assert friendly_name([raop]) == "Living Room"
    assert friendly_name([raop, sighting("_airplay._tcp", "Salon")]) == "Salon"
    assert friendly_name([sighting("_sonos._tcp", "RINCON_542A1BC9220E01400@Office")]) == "Office"
    assert instance_label("Kitchen\\032Speaker\\.1._googlecast._tcp.local.", "_googlecast._tcp.local.") == (
        "Kitchen Speaker.1"
    )
    assert instance_label("bad\x07name._hap._tcp.local.", "_hap._tcp.local.") == "bad\ufffdname"


def test_service_types_are_checked() -> None:
    assert valid_service_type("_googlecast._tcp.local.")
    assert not valid_service_type("_sub._googlecast._tcp.local.")
    assert not valid_service_type("not a type")
    assert not valid_service_type("_x._tcp.example.")


def test_neighbour_tables_keep_usable_unicast_macs() -> None:
    neigh = json.dumps(
        [
            {"dst": "192.168.1.10", "dev": "eth0", "lladdr": "F4:F5:D8:00:00:01", "state": ["REACHABLE"]},
            {"dst": "192.168.1.11", "dev": "eth0", "lladdr": "f4:f5:d8:00:00:02", "state": ["STALE"]},
            {"dst": "192.168.1.12", "dev": "eth0", "state": ["FAILED"]},
            {"dst": "fe80::1", "dev": "eth0", "lladdr": "01:00:5e:00:00:fb", "state": ["PERMANENT"]},
            {"dst": "fe80::2", "dev": "eth0", "lladdr": "d0:81:7a:00:00:02", "state": ["DELAY"]},
            "junk",
        ]
    )
    assert parse_ip_neigh(neigh) == {
        "192.168.1.10": "f4:f5:d8:00:00:01",
        "192.168.1.11": "f4:f5:d8:00:00:02",
        "fe80::2": "d0:81:7a:00:00:02",
    }
    assert parse_ip_neigh("") == {}
    arp = (
        "IP address       HW type     Flags       HW address            Mask     Device\n"
        "192.168.1.10     0x1         0x2         f4:f5:d8:00:00:01     *        eth0\n"
        "192.168.1.12     0x1         0x0         00:00:00:00:00:00     *        eth0\n"
        "garbage\n"
    )
    assert parse_proc_arp(arp) == {"192.168.1.10": "f4:f5:d8:00:00:01"}


def test_an_unknown_interface_is_named_before_any_socket_opens() -> None:
    with pytest.raises(BrowserError, match="no network interface 'nope0'"):
        zeroconf_interfaces(["nope0"])
    assert zeroconf_interfaces(["192.0.2.1"]) == (["192.0.2.1"], None)


def test_cli_rejects_a_bad_timeout_and_an_unknown_interface() -> None:
    bad = run_cli("discover", "--timeout", "-1")
    assert bad.returncode == 2
    assert "--timeout" in bad.stderr
    unknown = run_cli("discover", "--interface", "nope0", "--timeout", "1")
    assert unknown.returncode == 2
    assert "no network interface 'nope0'" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def run_cli(*args: str, ns: Namespace | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    prefix = ["ip", "netns", "exec", ns.name] if ns else []
    return subprocess.run(
        [*prefix, sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=timeout,
    )


# --- A LAN in namespaces ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Host:
    """A simulated device: a macvlan in the device namespace with its own MAC and addresses."""

    interface: str
    mac: str
    ipv4: str
    ipv6: str  # link-local
    index: int


@dataclass
class Lan:
    lab: NetnsLab
    gw: Namespace
    dev: Namespace

    def add_host(self, number: int, mac: str) -> Host:
        """``mv<number>`` with ``mac`` and SUBNET.<10+number>; replies leave by its own interface."""
        name, ip = f"mv{number}", f"{SUBNET}.{10 + number}"
        self.dev.ip("link", "add", name, "link", "lan0", "address", mac, "type", "macvlan", "mode", "bridge")
        self.dev.ip("addr", "add", f"{ip}/24", "dev", name)
        self.dev.ip("link", "set", name, "up")
        # Several interfaces share the subnet: route each source address out of its own interface,
        # so that each host answers (and asks ARP) with its own MAC.
        table = str(100 + number)
        self.dev.ip("rule", "add", "from", ip, "lookup", table)
        self.dev.ip("route", "add", f"{SUBNET}.0/24", "dev", name, "src", ip, "table", table)
        info = json.loads(self.dev.ip("-j", "addr", "show", name))[0]
        ipv6 = next(a["local"] for a in info["addr_info"] if a["family"] == "inet6")
        return Host(name, mac, ip, ipv6, int(info["ifindex"]))


@pytest.fixture
def lan() -> Iterator[Lan]:
    with NetnsLab() as lab:
        gw, dev = lab.namespace("gw"), lab.namespace("dev")
        lab.veth(gw, "gw0", dev, "lan0")
        gw.ip("addr", "add", f"{GW_IP}/24", "dev", "gw0")
        yield Lan(lab, gw, dev)


# --- End to end: `mouchard discover` against python-zeroconf and avahi -------------------------------

ZEROCONF_DEVICES: list[dict[str, Any]] = [
    {
        "mac": "f4:f5:d8:12:34:01",
        "host": "Google-Home-Mini-5f1c.local.",
        "services": [
            {"type": "_googlecast._tcp.local.", "name": "Google-Home-Mini-5f1c0e9a", "port": 8009,
             "txt": {"md": "Google Home Mini", "fn": "Kitchen", "id": "5f1c0e9a", "ve": "05"}},
        ],
    },
    {
        "mac": "d0:81:7a:12:34:02",
        "host": "Bedroom.local.",
        "services": [
            {"type": "_airplay._tcp.local.", "name": "Bedroom", "port": 7000,
             "txt": {"model": "AudioAccessory5,1", "features": "0x4A7FDFD5,0xBC157FDE"}},
            {"type": "_raop._tcp.local.", "name": "D0817A123402@Bedroom", "port": 7000,
             "txt": {"am": "AudioAccessory5,1", "cn": "0,1,2,3", "tp": "UDP"}},
        ],
    },
    {
        "mac": "54:2a:1b:12:34:03",
        "host": "Sonos-542A1B123403.local.",
        "services": [
            {"type": "_sonos._tcp.local.", "name": "Sonos-542A1B123403", "port": 1443,
             "txt": {"info": "/api/v1/players/RINCON_542A1B12340301400/info", "vers": "3"}},
        ],
    },
    {
        "mac": "48:d6:d5:12:34:04",
        "host": "Chromecast-7a2e.local.",
        "services": [
            {"type": "_googlecast._tcp.local.", "name": "Chromecast-7a2e41b0", "port": 8009,
             "txt": {"md": "Chromecast", "fn": "Living Room TV", "id": "7a2e41b0"}},
        ],
    },
]  # fmt: skip
PRINTER = {"mac": "04:0e:3c:12:34:05", "name": "HP LaserJet"}
# (name, kind, vendor) that `mouchard discover` must report for each host, by MAC.
EXPECTED = {
    "f4:f5:d8:12:34:01": ("Kitchen", "voice_assistant", "Google"),
    "d0:81:7a:12:34:02": ("Bedroom", "voice_assistant", "Apple"),
    "54:2a:1b:12:34:03": ("Sonos-542A1B123403", "speaker", "Sonos"),
    "48:d6:d5:12:34:04": ("Living Room TV", "streaming_player", "Google"),
    "04:0e:3c:12:34:05": ("HP LaserJet", "printer", "HP"),
}
AVAHI_SERVICE = """<?xml version="1.0" standalone='no'?>
<!DOCTYPE service-group SYSTEM "avahi-service.dtd">
<service-group>
  <name>{name}</name>
  <service>
    <type>_ipp._tcp</type>
    <port>631</port>
    <txt-record>txtvers=1</txt-record>
    <txt-record>ty=HP LaserJet</txt-record>
    <txt-record>usb_MFG=HP</txt-record>
    <txt-record>usb_MDL=LaserJet</txt-record>
    <txt-record>rp=ipp/print</txt-record>
  </service>
</service-group>
"""
AVAHI_CONF = """[server]
host-name=hp-laserjet
domain-name=local
use-ipv4=yes
use-ipv6=yes
allow-interfaces={interface}
enable-dbus=no
[wide-area]
enable-wide-area=no
[publish]
publish-addresses=yes
publish-hinfo=no
publish-workstation=no
publish-domain=no
[reflector]
enable-reflector=no
"""


def start_zeroconf_devices(lan: Lan, hosts: list[Host]) -> subprocess.Popen[str]:
    spec = [
        {**device, "ipv4": host.ipv4, "ipv6": host.ipv6, "index": host.index}
        for device, host in zip(ZEROCONF_DEVICES, hosts, strict=True)
    ]
    script = str(Path(__file__).resolve())
    proc = lan.dev.popen(sys.executable, script, "advertise", json.dumps(spec), env=_env(), cwd=ROOT)
    wait_for_line(proc, "ready", 20)
    return proc


def start_avahi(lan: Lan, host: Host, folder: Path) -> subprocess.Popen[str]:
    """Debian's avahi-daemon without systemd or D-Bus; its services, run and pid files in ``folder``."""
    services, run = folder / "services", folder / "run"
    services.mkdir()
    run.mkdir()
    (services / "printer.service").write_text(AVAHI_SERVICE.format(name=PRINTER["name"]))
    conf = folder / "avahi-daemon.conf"
    conf.write_text(AVAHI_CONF.format(interface=host.interface))
    # `ip netns exec` gives the command a mount namespace of its own: these binds stay inside it.
    script = (
        f"mount --bind {services} /etc/avahi/services && mount --bind {run} /run && "
        f"exec avahi-daemon -f {conf} --no-drop-root --no-chroot --no-rlimits --no-proc-title"
    )
    proc = lan.dev.popen("sh", "-c", script)
    wait_for_line(proc, "successfully established", 20, stream="stderr")
    return proc


def wait_for_line(proc: subprocess.Popen[str], text: str, timeout: float, stream: str = "stdout") -> None:
    """Read ``proc``'s stream until a line holds ``text``; fail with what it said otherwise."""
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    assert pipe is not None
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in pipe:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            if proc.poll() is not None and lines.empty():
                break
            continue
        seen.append(line)
        if text in line:
            return
    pytest.fail(f"{proc.args!r} did not say {text!r} in {timeout} s:\n{''.join(seen[-20:])}")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@needs_root
def test_discover_finds_zeroconf_and_avahi_devices_across_a_veth(lan: Lan, tmp_path: Path) -> None:
    hosts = [lan.add_host(i + 1, d["mac"]) for i, d in enumerate(ZEROCONF_DEVICES)]
    printer = lan.add_host(5, PRINTER["mac"])
    start_avahi(lan, printer, tmp_path)
    start_zeroconf_devices(lan, hosts)

    started = time.time()
    done = run_cli("discover", "--json", "--timeout", "8", "--interface", "gw0", ns=lan.gw)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)

    by_mac = {d["mac"]: d for d in found if d["mac"]}
    assert set(EXPECTED) <= set(by_mac), f"found: {[(d['id'], d['name']) for d in found]}"
    for mac, (name, kind, vendor) in EXPECTED.items():
        device = by_mac[mac]
        assert (device["id"], device["name"], device["kind"], device["vendor"]) == (mac, name, kind, vendor)
        assert device["ip"].startswith(SUBNET)
        late = device["first_seen"] - started
        assert late < 10, f"{name} found after {late:.1f} s"
        assert {"id", "name", "kind", "vendor", "model", "ip", "services"} <= set(device)
    assert by_mac["d0:81:7a:12:34:02"]["services"] == ["_airplay._tcp", "_raop._tcp"]
    assert by_mac["d0:81:7a:12:34:02"]["model"] == "HomePod mini"
    assert by_mac["04:0e:3c:12:34:05"]["model"] == "LaserJet"
    assert any(a.startswith("fe80:") for a in by_mac["54:2a:1b:12:34:03"]["addresses"])  # IPv6 as well


@needs_root
def test_discover_says_when_nothing_answers(lan: Lan) -> None:
    done = run_cli("discover", "--timeout", "1", "--interface", "gw0", ns=lan.gw)
    assert done.returncode == 0, done.stderr
    assert "No device answered" in done.stderr
    assert "224.0.0.0/4" in done.stderr
    assert done.stdout == ""


# --- The browser itself: updates, goodbyes, malformed records, bounds --------------------------------


class Collector:
    """Sightings handed over by the browser's thread."""

    def __init__(self) -> None:
        self.items: queue.Queue[MdnsSighting] = queue.Queue()
        self.seen: list[MdnsSighting] = []

    def __call__(self, sighting: MdnsSighting) -> None:
        self.items.put(sighting)

    def wait_for(self, check: Callable[[MdnsSighting], bool], timeout: float = 8) -> MdnsSighting:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self.items.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(item)
            if check(item):
                return item
        pytest.fail(f"no such sighting in {timeout} s; seen: {self.seen}")


class LoopThread:
    """An asyncio loop in a thread, started from inside a namespace (so its sockets live there)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Any, timeout: float = 15) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def browsing(lan: Lan) -> Iterator[tuple[Lan, Host, LoopThread, Collector, BrowserThread]]:
    """A device host with an event loop in the device namespace, and a browser in the gateway one."""
    host = lan.add_host(1, "f4:f5:d8:00:00:01")
    device_loop = lan.dev.call(LoopThread)
    collector = Collector()
    browser = MdnsBrowser(
        collector, interfaces=["gw0"], types=["_hap._tcp.local.", "_flood._tcp.local."], max_instances=10
    )
    thread = BrowserThread(browser)
    lan.gw.call(thread.start)
    try:
        yield lan, host, device_loop, collector, thread
    finally:
        thread.stop()
        device_loop.close()


def in_loop(loop: LoopThread, factory: Callable[[], Any]) -> Any:
    async def make() -> Any:
        return factory()

    return loop.run(make())


@needs_root
def test_browser_follows_updates_and_goodbyes_over_ipv6(browsing: Any) -> None:
    _, host, loop, collector, thread = browsing
    zc = in_loop(loop, lambda: AsyncZeroconf(interfaces=[host.index]))  # IPv6 only

    def lamp(model: str) -> AsyncServiceInfo:
        return AsyncServiceInfo(
            "_hap._tcp.local.", "Desk Lamp._hap._tcp.local.", port=8080, properties={"ci": "5", "md": model},
            server="desk-lamp.local.", parsed_addresses=[host.ipv6],
        )  # fmt: skip

    try:
        loop.run(_registered(zc, lamp("Bulb")))
        added = collector.wait_for(lambda s: s.instance == "Desk Lamp")
        assert (added.addresses, added.port, added.host) == ((host.ipv6,), 8080, "desk-lamp.local.")
        assert added.properties == {"ci": "5", "md": "Bulb"}
        assert not added.removed

        loop.run(_updated(zc, lamp("Bulb 2")))
        updated = collector.wait_for(lambda s: s.properties.get("md") == "Bulb 2")
        assert updated.first_seen == added.first_seen
        assert updated.last_seen >= added.last_seen

        loop.run(_unregistered(zc, lamp("Bulb 2")))
        gone = collector.wait_for(lambda s: s.removed)
        assert gone.name == added.name
        assert thread.sightings() == []
        assert thread.browser.stats.removed == 1
    finally:
        loop.run(zc.async_close())


async def _registered(zc: Any, info: Any) -> None:
    await (await zc.async_register_service(info))


async def _updated(zc: Any, info: Any) -> None:
    await (await zc.async_update_service(info))


async def _unregistered(zc: Any, info: Any) -> None:
    await (await zc.async_unregister_service(info))


@needs_root
def test_malformed_and_flooding_announcements_are_counted_never_fatal(browsing: Any) -> None:
    lan, host, _loop, collector, thread = browsing
    address = socket.inet_aton(host.ipv4)
    out = DNSOutgoing(_FLAGS_QR_RESPONSE | _FLAGS_AA)
    out.add_answer_at_time(DNSAddress("flood.local.", _TYPE_A, _CLASS_IN, 120, address), 0)
    for i in range(30):  # more instances than the browser's bound of 10
        name = f"Thing {i}._flood._tcp.local."
        out.add_answer_at_time(DNSPointer("_flood._tcp.local.", _TYPE_PTR, _CLASS_IN, 4500, name), 0)
        out.add_answer_at_time(DNSService(name, _TYPE_SRV, _CLASS_IN, 120, 0, 0, 80, "flood.local."), 0)
        # TXT rdata with a length byte running past the end, an empty key, non-UTF-8, a control char.
        text = b"\x05md=ok\x00\x02=x\x04k=\xff\xfe\x06bell=\x07\x40cut"
        out.add_answer_at_time(DNSText(name, _TYPE_TXT, _CLASS_IN, 4500, text), 0)
    enumeration = "_services._dns-sd._udp.local."
    out.add_answer_at_time(DNSPointer(enumeration, _TYPE_PTR, _CLASS_IN, 4500, "not a type.local."), 0)
    garbage = [b"\x00" * 12 + b"\xff" * 40, os.urandom(300), b"\x00\x00\x84\x00\x00\x00\x00\x05"]
    packets = [*out.packets(), *garbage]
    lan.dev.call(lambda: _send_multicast(packets, host.ipv4))

    first = collector.wait_for(lambda s: s.service_type == "_flood._tcp.local.")
    assert first.properties["md"] == "ok"
    assert first.properties["bell"] == "\ufffd"
    assert first.host == "flood.local."
    assert first.addresses == (host.ipv4,)
    time.sleep(1.5)  # let the other 29 arrive
    stats = thread.browser.stats
    assert len(thread.sightings()) == 10
    assert stats.dropped_instances >= 20
    assert stats.malformed >= 1  # the service type that is not one
    assert "not a type.local." not in thread.browser.types

    # Still browsing, and a goodbye frees a place: a well-formed device that comes next is found.
    lan.dev.call(lambda: _send_multicast(_goodbye(first.name), host.ipv4))
    collector.wait_for(lambda s: s.removed and s.name == first.name)
    lan.dev.call(lambda: _send_multicast(_one_service(host.ipv4), host.ipv4))
    assert collector.wait_for(lambda s: s.instance == "Good Lamp").properties == {"ci": "5"}
    assert len(thread.sightings()) == 10


def _goodbye(name: str) -> list[bytes]:
    """The PTR of ``name`` with a TTL of 0 (RFC 6762 section 10.1)."""
    out = DNSOutgoing(_FLAGS_QR_RESPONSE | _FLAGS_AA)
    out.add_answer_at_time(DNSPointer("_flood._tcp.local.", _TYPE_PTR, _CLASS_IN, 0, name), 0)
    return list(out.packets())


def _one_service(ipv4: str) -> list[bytes]:
    info = ServiceInfo(
        "_hap._tcp.local.", "Good Lamp._hap._tcp.local.", port=80, properties={"ci": "5"},
        server="good-lamp.local.", parsed_addresses=[ipv4],
    )  # fmt: skip
    out = DNSOutgoing(_FLAGS_QR_RESPONSE | _FLAGS_AA)
    for record in (info.dns_pointer(), info.dns_service(), info.dns_text(), *info.dns_addresses()):
        out.add_answer_at_time(record, 0)
    return list(out.packets())


def _send_multicast(packets: list[bytes], source: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(source))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        sock.bind((source, 0))
        for packet in packets:
            sock.sendto(packet, ("224.0.0.251", 5353))


# --- The advertiser this file becomes when run as a script ------------------------------------------


async def advertise(spec: list[dict[str, Any]]) -> None:
    """Register every service of every device (each on its own host's interface), then wait."""
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

    registrations = []
    for device in spec:
        zc = AsyncZeroconf(interfaces=[device["ipv4"], device["index"]])
        for service in device["services"]:
            info = AsyncServiceInfo(
                service["type"],
                f"{service['name']}.{service['type']}",
                port=service["port"],
                properties=service["txt"],
                server=device["host"],
                parsed_addresses=[device["ipv4"], device["ipv6"]],
            )
            registrations.append(_registered(zc, info))
    await asyncio.gather(*registrations)
    print("ready", flush=True)
    await asyncio.Event().wait()  # until the test stops this process


if __name__ == "__main__" and sys.argv[1:2] == ["advertise"]:
    asyncio.run(advertise(json.loads(sys.argv[2])))
