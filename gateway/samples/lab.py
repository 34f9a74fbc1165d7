"""A deterministic capture of a small home lab behind a router, and what it contains.

`python -m gateway.samples.lab OUT.pcap [--seconds N] [--seed S]` writes about ten minutes of a lab seen
on the router's LAN side: an Amazon Echo Dot (with two voice activations), a Samsung TV (with a Netflix
download), a TP-Link Kasa plug, an Android phone (IPv4 and IPv6, many destinations) and a Google Nest
Mini, plus the router's DHCP, DNS, ARP and IPv6 router advertisements. `write_lab_capture()` returns a
`LabSummary` with each device's bytes and packets, computed from the records actually written, so tests
can hold the pipeline to it. Cloud addresses are public ranges of the companies named; nothing is sent.
"""

from __future__ import annotations

import argparse
import functools
import ipaddress
import random
import struct
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from gateway.samples import frames as fr
from gateway.samples.pcapwriter import PcapngWriter, PcapWriter

NS = 1_000_000_000
MS = 1_000_000
LAB_START_NS = 1_730_836_200 * NS  # 2024-11-05 19:50:00 UTC, 20:50 in Paris: an evening at home
HEARTBEAT_PERIOD_S = 30  # the Echo's ping on its AVS connection
ROUTER_MAC = "00:07:cb:4e:11:01"  # Freebox SAS
ROUTER_IPV4 = "192.168.1.1"
LAN_IPV4 = "192.168.1.0/24"
PREFIX6 = "2a01:e0a:2b4:1d30::"  # announced in router advertisements; a Free (ISP) range
ROUTER_GLOBAL6 = PREFIX6 + "1"


# ---------------------------------------------------------------- the lab's inventory


@dataclass(frozen=True, slots=True)
class CloudHost:
    """A name of the lab's Internet: its CNAME chain and addresses, as the router's DNS answers."""

    name: str
    cnames: tuple[str, ...]
    ipv4: tuple[str, ...]
    ipv6: tuple[str, ...] = ()


# name, CNAME chain, IPv4 and IPv6 addresses ("-": none), from the public ranges of the companies named
_CLOUD_TABLE = """
avs-alexa-4-na.amazon.com               avs-alexa-4-na.aws.a2z.com            52.94.233.112,52.94.232.8  -
device-metrics-us.amazon.com            -                                     54.239.29.128              -
api.amazon.com                          -                                     54.239.28.85               -
ntp-g7g.amazon.com                      -                                     52.119.161.5               -
spectrum.s3.amazonaws.com               s3-1-w.amazonaws.com                  52.217.161.97              -
log-config.samsungacr.com               d1fz4ibxyamx5e.cloudfront.net         13.33.88.41                -
acr-eu-prd.samsungcloud.tv              -                                     52.28.197.12               -
config.samsungads.com                   -                                     35.156.48.107              -
time.samsungcloudsolution.com           -                                     52.57.68.193               -
pubads.g.doubleclick.net                pagead46.l.doubleclick.net            142.250.179.98             2a00:1450:4007:818::2002
api-global.netflix.com                  api-global.geo.netflix.com,api-global.eu-west-1.prodaa.netflix.com 54.74.73.31,52.18.61.223 -
ipv4-c012-par002-ix.1.oca.nflxvideo.net -                                     198.38.120.140             -
n-devs.tplinkcloud.com                  n-devs-eu.tplinkcloud.com             3.120.171.18               -
n-deventry.tplinkcloud.com              -                                     18.194.10.139              -
pool.ntp.org                            -                                     162.159.200.1,51.15.175.180 -
connectivitycheck.gstatic.com           -                                     142.250.201.163            2a00:1450:4007:80e::2003
www.google.com                          -                                     142.250.179.100            2a00:1450:4007:80b::2004
mtalk.google.com                        mobile-gtalk.l.google.com             108.177.15.188             2a00:1450:400c:c0a::bc
android.googleapis.com                  -                                     142.250.178.138            2a00:1450:4007:819::200a
play.googleapis.com                     -                                     216.58.214.170             2a00:1450:4007:80a::200a
app-measurement.com                     -                                     142.250.179.110            2a00:1450:4007:818::200e
graph.facebook.com                      star.c10r.facebook.com                157.240.202.15             2a03:2880:f1ff:83:face:b00c:0:25de
scontent-cdg4-1.cdninstagram.com        -                                     157.240.202.63             2a03:2880:f0ff:10:face:b00c:0:43fe
g.whatsapp.net                          -                                     157.240.202.60             2a03:2880:f20d:c5:face:b00c:0:167
www.lemonde.fr                          lemonde-fr.map.fastly.net             151.101.2.217              2a04:4e42::729
fr.wikipedia.org                        dyna.wikimedia.org                    185.15.58.224              2a02:ec80:300:ed1a::1
api.spotify.com                         edge-web.dual-gslb.spotify.com        35.186.224.25              2600:1901:1:c36::
clients4.google.com                     clients.l.google.com                  142.250.75.238             2a00:1450:4007:80c::200e
www.googleapis.com                      -                                     142.250.179.74             2a00:1450:4007:808::200a
"""  # noqa: E501 a table reads best unwrapped


def _cloud(table: str) -> dict[str, CloudHost]:
    def cell(text: str) -> tuple[str, ...]:
        return () if text == "-" else tuple(text.split(","))

    hosts = {}
    for line in table.strip().splitlines():
        name, cnames, ipv4, ipv6 = line.split()
        hosts[name] = CloudHost(name, cell(cnames), cell(ipv4), cell(ipv6))
    return hosts


CLOUD: Mapping[str, CloudHost] = _cloud(_CLOUD_TABLE)


@dataclass(frozen=True, slots=True)
class Device:
    """One object of the lab: link identity, DHCP identity and the labels a lab would give it."""

    label: str
    mac: str
    ipv4: str
    hostname: str
    vendor_class: str | None
    vendor: str
    kind: str
    model: str
    wifi: bool
    ipv6_iid: str | None = None  # interface id of its addresses when it speaks IPv6

    @property
    def link_local(self) -> str | None:
        return None if self.ipv6_iid is None else _with_iid("fe80::", self.ipv6_iid)

    @property
    def global6(self) -> str | None:
        return None if self.ipv6_iid is None else _with_iid(PREFIX6, self.ipv6_iid)


def _with_iid(prefix: str, iid: str) -> str:
    """A /64 prefix and a 64-bit interface id, joined."""
    address = int(ipaddress.IPv6Address(prefix)) | int(ipaddress.IPv6Address("::" + iid))
    return ipaddress.IPv6Address(address).compressed


ECHO = Device(
    label="Kitchen Echo", mac="68:db:f5:90:19:64", ipv4="192.168.1.23", hostname="amazon-3f9a1c2b7",
    vendor_class="dhcpcd-6.8.2", vendor="Amazon", kind="voice_assistant", model="Echo Dot", wifi=True,
)  # fmt: skip
TV = Device(
    label="Living Room TV", mac="8c:79:f5:2e:4a:07", ipv4="192.168.1.31", hostname="Samsung",
    vendor_class="udhcp 1.30.1", vendor="Samsung", kind="tv", model="QE55Q60", wifi=False,
)  # fmt: skip
PLUG = Device(
    label="Desk Plug", mac="50:c7:bf:a1:3c:5e", ipv4="192.168.1.42", hostname="HS110",
    vendor_class="udhcp 1.19.4", vendor="TP-Link", kind="plug", model="Kasa HS110", wifi=True,
)  # fmt: skip
PHONE = Device(  # a randomised (locally administered) MAC, as Android uses by default
    label="Pixel", mac="a6:83:e7:2c:5b:10", ipv4="192.168.1.57", hostname="Pixel-7",
    vendor_class="android-dhcp-14", vendor="Google", kind="phone", model="Pixel 7", wifi=True,
    ipv6_iid="8c3e:71ff:2a9d:4b16",
)  # fmt: skip
NEST = Device(
    label="Kitchen", mac="f4:f5:d8:6b:02:9e", ipv4="192.168.1.64", hostname="Google-Nest-Mini",
    vendor_class="dhcpcd-6.8.2", vendor="Google", kind="voice_assistant", model="Nest Mini", wifi=True,
    ipv6_iid="f6f5:d8ff:fe6b:29e",
)  # fmt: skip
DEVICES = (ECHO, TV, PLUG, PHONE, NEST)
ROUTER_LINK_LOCAL = "fe80::207:cbff:fe4e:1101"


# ---------------------------------------------------------------- what a run returns


@dataclass(frozen=True, slots=True)
class Traffic:
    """Frame bytes and packets (IPv4/IPv6 only) as written, sent and received."""

    bytes_sent: int = 0
    bytes_received: int = 0
    packets_sent: int = 0
    packets_received: int = 0


@dataclass(frozen=True, slots=True)
class DeviceSummary:
    """One device of the capture; bytes are written frame lengths of its IPv4/IPv6 packets."""

    mac: str
    ipv4: str
    ipv6: tuple[str, ...]
    name: str
    hostname: str
    vendor: str
    kind: str
    model: str
    bytes_sent: int
    bytes_received: int
    packets_sent: int
    packets_received: int
    hosts: tuple[str, ...]  # names it resolved or named in a TLS ClientHello / HTTP Host


@dataclass(frozen=True, slots=True)
class Activation:
    """A voice activation: an upload burst on the AVS connection."""

    mac: str
    host: str
    start_s: float  # since the capture's start
    duration_s: float
    bytes_sent: int  # frame bytes the device sent during the burst


@dataclass(frozen=True, slots=True)
class LabSummary:
    """What a written lab capture holds, counted from the records as written.

    Device totals follow DESIGN.md: bytes are the written (original) lengths of IPv4/IPv6 records whose
    Ethernet source (sent) or destination (received) is the device; a LAN-to-LAN packet counts for both
    ends, broadcast and multicast only for the sender, ARP for nobody. With raw-IP or cooked link types
    the records carry no MACs: `devices` still attributes them by the frame they came from, while
    `addresses` counts per LAN address (`ip:<address>` keys in the pipeline), 0.0.0.0 included.
    """

    path: Path
    linktype: int
    start: float  # epoch seconds of the capture's start
    seconds: int
    packets: int  # records written
    bytes: int  # sum of their original lengths
    router_mac: str
    router_ipv4: str
    prefix6: str
    devices: tuple[DeviceSummary, ...]
    addresses: Mapping[str, Traffic]  # per LAN unicast address (router's excluded), for IP-only link types
    activations: tuple[Activation, ...]
    heartbeat_period_s: int
    dns_names: tuple[str, ...]  # every name queried
    server_names: tuple[str, ...]  # every TLS SNI

    def device(self, mac: str) -> DeviceSummary:
        return next(device for device in self.devices if device.mac == mac)


class CaptureFormat(StrEnum):
    PCAP = "pcap"
    PCAPNG = "pcapng"


class VlanMode(StrEnum):
    """NONE: untagged. TRUNK: phone on VLAN 10, objects on VLAN 20, the TV double-tagged (QinQ 100/20)."""

    NONE = "none"
    TRUNK = "trunk"


# ---------------------------------------------------------------- the frame collector


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An address as the capture sees it: the MAC on the LAN link and the IP."""

    mac: str
    ip: str
    ttl: int = 64


class Lab:
    """Collects timed frames; frames after the end are dropped, as a capture that stops."""

    def __init__(self, rng: random.Random, start_ns: int, seconds: int) -> None:
        self.rng = rng
        self.start = start_ns
        self.end = start_ns + seconds * NS
        self.frames: list[tuple[int, int, bytes]] = []
        self.hosts: dict[str, list[str]] = {device.mac: [] for device in DEVICES}
        self.dns_names: list[str] = []
        self.server_names: list[str] = []
        self.activations: list[tuple[str, str, int, int]] = []  # mac, host, start ns, end ns
        self._ident: dict[str, int] = {}

    def at(self, seconds: float) -> int:
        return self.start + int(seconds * NS)

    def emit(self, ts: int, frame: bytes) -> None:
        if ts < self.end:
            self.frames.append((ts, len(self.frames), frame))

    def ident(self, source: str) -> int:
        value = self._ident.get(source, self.rng.randrange(0x10000)) + 1
        self._ident[source] = value
        return value & 0xFFFF

    def jitter(self, base_ms: float, spread: float = 0.3) -> int:
        return int(base_ms * MS * (1 + self.rng.uniform(-spread, spread)))

    def note_host(self, mac: str, name: str, names: list[str]) -> None:
        if name not in self.hosts[mac]:
            self.hosts[mac].append(name)
        if name not in names:
            names.append(name)

    def udp(self, ts: int, src: Endpoint, dst: Endpoint, ports: tuple[int, int], payload: bytes) -> None:
        template = fr.FrameTemplate(
            src.mac, dst.mac, src.ip, dst.ip, sport=ports[0], dport=ports[1], ttl=src.ttl
        )
        self.emit(ts, template.udp(payload, ident=self.ident(src.ip)))

    def ip_frame(
        self,
        ts: int,
        src: Endpoint,
        dst: Endpoint,
        proto: int,
        payload: bytes,
        *,
        extensions: Sequence[fr.ExtensionHeader] = (),
    ) -> None:
        """An IPv4 or IPv6 packet of any protocol (ICMP, ICMPv6), framed for the LAN."""
        if ":" in src.ip:
            packet = fr.ipv6(src.ip, dst.ip, proto, payload, hop_limit=src.ttl, extensions=extensions)
            self.emit(ts, fr.ethernet(dst.mac, src.mac, fr.ETH_P_IPV6, packet))
        else:
            packet = fr.ipv4(src.ip, dst.ip, proto, payload, ttl=src.ttl, ident=self.ident(src.ip))
            self.emit(ts, fr.ethernet(dst.mac, src.mac, fr.ETH_P_IPV4, packet))


ROUTER = Endpoint(ROUTER_MAC, ROUTER_IPV4)
MDNS4 = Endpoint(fr.ipv4_multicast_mac(fr.MDNS_GROUP4).hex(":"), fr.MDNS_GROUP4, 255)
MDNS6 = Endpoint(fr.ipv6_multicast_mac(fr.MDNS_GROUP6).hex(":"), fr.MDNS_GROUP6, 255)
BROADCAST = Endpoint("ff:ff:ff:ff:ff:ff", "255.255.255.255")


def lan(device: Device) -> Endpoint:
    return Endpoint(device.mac, device.ipv4)


def lan6(device: Device) -> Endpoint:
    if device.global6 is None:
        raise ValueError(f"{device.label} has no IPv6 address")
    return Endpoint(device.mac, device.global6)


def internet(address: str) -> Endpoint:
    """A server seen through the router: the router's MAC, a TTL a few hops down."""
    return Endpoint(ROUTER_MAC, address, 64 - 11 if ":" not in address else 64 - 9)


# ---------------------------------------------------------------- TCP conversations


class TcpSession:
    """One TCP connection with a time cursor: handshake, data both ways with delayed ACKs, close.

    The capture point is the router's LAN side: the client's segments are seen at once, the server's
    replies one round trip later; the client acknowledges a server's segment within a fraction of a ms.
    """

    def __init__(
        self,
        lab: Lab,
        ts: int,
        client: Endpoint,
        server: Endpoint,
        dport: int,
        *,
        rtt_ms: float = 25.0,
        rate_mbps: float = 40.0,
    ) -> None:
        self.lab, self.t = lab, ts
        self.client, self.server = client, server
        self.sport = lab.rng.randrange(32768, 61000)
        v6 = ":" in client.ip
        self.mss = 1440 if v6 else 1460
        label = lab.rng.randrange(1 << 20) if v6 else 0
        self._up = fr.FrameTemplate(
            client.mac,
            server.mac,
            client.ip,
            server.ip,
            sport=self.sport,
            dport=dport,
            ttl=client.ttl,
            flow_label=label,
        )
        self._down = fr.FrameTemplate(
            server.mac,
            client.mac,
            server.ip,
            client.ip,
            sport=dport,
            dport=self.sport,
            ttl=server.ttl,
            flow_label=label,
        )
        self.rtt = int(rtt_ms * MS)
        self.ns_per_byte = 8000 / rate_mbps  # ns per byte at the rate
        self.seq_up = lab.rng.getrandbits(32)
        self.seq_down = lab.rng.getrandbits(32)

    def _segment(
        self, upstream: bool, ts: int, flags: int, payload: bytes = b"", options: bytes = b""
    ) -> None:
        template, source = (self._up, self.client) if upstream else (self._down, self.server)
        seq, ack = (self.seq_up, self.seq_down) if upstream else (self.seq_down, self.seq_up)
        ack = ack if flags & fr.ACK else 0
        window = 502 if upstream else 1040  # scaled windows, as after a wscale of 7
        self.lab.emit(
            ts,
            template.tcp(
                seq, ack, flags, payload, ident=self.lab.ident(source.ip), window=window, options=options
            ),
        )
        advance = len(payload) + (1 if flags & (fr.SYN | fr.FIN) else 0)
        if upstream:
            self.seq_up = (self.seq_up + advance) & 0xFFFFFFFF
        else:
            self.seq_down = (self.seq_down + advance) & 0xFFFFFFFF

    def connect(self) -> TcpSession:
        self._segment(True, self.t, fr.SYN, options=fr.syn_options(self.mss))
        self.t += self.rtt
        self._segment(
            False, self.t, fr.SYN | fr.ACK, options=fr.syn_options(1400 if self.mss == 1460 else 1380)
        )
        self.t += self.lab.jitter(0.3)
        self._segment(True, self.t, fr.ACK)
        return self

    def send(self, upstream: bool, data: bytes, *, at: int | None = None) -> None:
        """`data` from one side, cut at the MSS; the other side ACKs every second segment and the last."""
        self.t = max(self.t, at or 0) + (0 if upstream else self.rtt)
        ack_delay = self.rtt if upstream else self.lab.jitter(0.4)
        chunks = [data[i : i + self.mss] for i in range(0, len(data), self.mss)]
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            self._segment(upstream, self.t, fr.ACK | (fr.PSH if last else 0), chunk)
            if index % 2 == 1 or last:
                self._segment(not upstream, self.t + ack_delay, fr.ACK)
            self.t += int(len(chunk) * self.ns_per_byte) + 1000
        self.t += ack_delay if not upstream else 0

    def tls_handshake(self, server_name: str | None, *, alpn: Sequence[str] = ("h2", "http/1.1")) -> None:
        rng = self.lab.rng
        session_id = rng.randbytes(32)
        hello = fr.tls_client_hello(
            server_name,
            alpn=alpn,
            random=rng.randbytes(32),
            session_id=session_id,
            key_share=rng.randbytes(32),
        )
        self.send(True, hello)
        server_flight = fr.tls_server_hello(
            random=rng.randbytes(32), session_id=session_id, key_share=rng.randbytes(32)
        )
        self.send(False, server_flight + tls_records(rng, rng.randrange(2600, 4200)))
        self.send(True, fr.tls_record(20, b"\x01") + tls_records(rng, 74))

    def exchange(self, up: int, down: int, *, at: int | None = None) -> None:
        """A request of `up` bytes of TLS records and its response of `down` bytes."""
        self.send(True, tls_records(self.lab.rng, up), at=at)
        if down:
            self.send(False, tls_records(self.lab.rng, down))

    def close(self, *, at: int | None = None) -> None:
        self.t = max(self.t, at or 0)
        self._segment(True, self.t, fr.FIN | fr.ACK)
        self.t += self.rtt
        self._segment(False, self.t, fr.FIN | fr.ACK)
        self.t += self.lab.jitter(0.3)
        self._segment(True, self.t, fr.ACK)


def tls_records(rng: random.Random, size: int) -> bytes:
    """`size` bytes (at least 22) of application-data records of at most 16 KB, random content."""
    size = max(size, 22)
    out = b""
    while size:
        body = min(size - 5, 16384 + 17)
        if 0 < size - 5 - body < 22:  # keep the last record at least 22 bytes long
            body -= 22
        out += fr.tls_application_data(rng.randbytes(body))
        size -= body + 5
    return out


# ---------------------------------------------------------------- building blocks of behaviour


def every(lab: Lab, first_s: float, period_s: float, action: Callable[[int], object]) -> None:
    """Run `action(ts)` at `first_s` and every `period_s` (±2 %) until the capture ends."""
    ts = lab.at(first_s)
    while ts < lab.end:
        action(ts)
        ts += int(period_s * NS * lab.rng.uniform(0.98, 1.02))


def arp_exchange(lab: Lab, ts: int, asker: Endpoint, target: Endpoint) -> None:
    """A broadcast who-has and its unicast reply."""
    request = fr.arp(1, asker.mac, asker.ip, bytes(6), target.ip)
    lab.emit(ts, fr.ethernet(fr.BROADCAST_MAC, asker.mac, fr.ETH_P_ARP, request))
    reply = fr.arp(2, target.mac, target.ip, asker.mac, asker.ip)
    lab.emit(ts + lab.jitter(1.5), fr.ethernet(asker.mac, target.mac, fr.ETH_P_ARP, reply))


def dhcp_join(lab: Lab, ts: int, device: Device) -> int:
    """DISCOVER, OFFER, REQUEST, ACK, then the ARP for the router; returns when the device is on line."""
    xid = lab.rng.getrandbits(32)
    unconfigured = Endpoint(device.mac, "0.0.0.0")  # noqa: S104 an unconfigured DHCP client's source
    leased = Endpoint(device.mac, device.ipv4)

    def request(kind: int, server: str | None) -> bytes:
        return fr.dhcp_request(
            xid,
            device.mac,
            hostname=device.hostname,
            vendor_class=device.vendor_class,
            requested_ip=device.ipv4,
            server_id=server,
            message_type=kind,
        )

    lab.udp(ts, unconfigured, BROADCAST, (68, 67), request(fr.DHCP_DISCOVER, None))
    for step, kind in enumerate((fr.DHCP_OFFER, fr.DHCP_ACK)):
        ts += lab.jitter(3)
        lab.udp(
            ts,
            ROUTER,
            leased,
            (67, 68),
            fr.dhcp_reply(
                xid, device.mac, kind, device.ipv4, ROUTER_IPV4, router=ROUTER_IPV4, dns=[ROUTER_IPV4]
            ),
        )
        if step == 0:
            ts += lab.jitter(5)
            lab.udp(ts, unconfigured, BROADCAST, (68, 67), request(fr.DHCP_REQUEST, ROUTER_IPV4))
    ts += lab.jitter(20)
    arp_exchange(lab, ts, leased, ROUTER)
    return ts + 5 * MS


def resolve(lab: Lab, ts: int, device: Device, name: str, *, ipv6: bool = False) -> tuple[int, list[str]]:
    """The device asks the router (A, and AAAA when it speaks IPv6); returns the time and the addresses."""
    host = CLOUD[name]
    lab.note_host(device.mac, name, lab.dns_names)
    queries = [(fr.DNS_A, host.ipv4)] + ([(fr.DNS_AAAA, host.ipv6)] if ipv6 else [])
    for offset, (qtype, addresses) in enumerate(queries):
        txid, port = lab.rng.getrandbits(16), lab.rng.randrange(32768, 61000)
        sent = ts + offset * 200_000
        lab.udp(sent, lan(device), ROUTER, (port, 53), fr.dns_query(txid, name, qtype))
        answers = fr.dns_answer_chain(name, host.cnames, addresses, ttl=300)
        lab.udp(
            sent + lab.jitter(12, 0.8),
            ROUTER,
            lan(device),
            (53, port),
            fr.dns_response(txid, name, qtype, answers),
        )
    best = list(host.ipv6 if ipv6 and host.ipv6 else host.ipv4)
    return ts + 30 * MS, best


def connect(
    lab: Lab,
    ts: int,
    device: Device,
    name: str,
    *,
    port: int = 443,
    ipv6: bool = False,
    rtt_ms: float = 25.0,
    rate_mbps: float = 40.0,
) -> TcpSession:
    """Resolve `name` and open a TCP connection to its first address (IPv6 first when it has one)."""
    ts, addresses = resolve(lab, ts, device, name, ipv6=ipv6)
    address = addresses[0]
    client = lan6(device) if ":" in address else lan(device)
    return TcpSession(lab, ts, client, internet(address), port, rtt_ms=rtt_ms, rate_mbps=rate_mbps).connect()


def tls_visit(
    lab: Lab,
    ts: int,
    device: Device,
    name: str,
    *,
    up: int,
    down: int,
    ipv6: bool = False,
    port: int = 443,
    keep: bool = False,
    rtt_ms: float = 25.0,
    rate_mbps: float = 40.0,
) -> TcpSession:
    """A TLS connection: ClientHello with SNI, one request and response, then close unless `keep`."""
    session = connect(lab, ts, device, name, port=port, ipv6=ipv6, rtt_ms=rtt_ms, rate_mbps=rate_mbps)
    session.tls_handshake(name)
    lab.note_host(device.mac, name, lab.server_names)
    session.exchange(up, down)
    if not keep:
        session.close(at=session.t + lab.jitter(300))
    return session


def http_visit(
    lab: Lab,
    ts: int,
    device: Device,
    name: str,
    path: str,
    *,
    body: int,
    status: int = 200,
    ipv6: bool = False,
    user_agent: str = "Dalvik/2.1.0",
) -> None:
    """A plain HTTP GET with Host, its response, and the close."""
    session = connect(lab, ts, device, name, port=80, ipv6=ipv6)
    session.send(True, fr.http_get(name, path, user_agent=user_agent))
    reason = "No Content" if status == 204 else "OK"
    session.send(False, fr.http_response(status, reason, lab.rng.randbytes(body), content_type="text/html"))
    session.close(at=session.t + lab.jitter(100))


def mdns_announce(
    lab: Lab, ts: int, device: Device, instance: str, service: str, port: int, txt: Sequence[str]
) -> None:
    """An mDNS announcement over IPv4, and over IPv6 from the link-local address when it has one."""
    host = device.hostname + ".local"
    addresses = [device.ipv4] + ([device.link_local] if device.link_local else [])
    payload = fr.mdns_announcement(instance, service, host, port, txt=txt, addresses=addresses)
    lab.udp(ts, Endpoint(device.mac, device.ipv4, 255), MDNS4, (5353, 5353), payload)
    if device.link_local:
        lab.udp(ts + 300_000, Endpoint(device.mac, device.link_local, 255), MDNS6, (5353, 5353), payload)


def ntp_poll(lab: Lab, ts: int, device: Device, name: str) -> None:
    ts, addresses = resolve(lab, ts, device, name)
    port = lab.rng.randrange(32768, 61000)
    request = bytes([0x23]) + bytes(39) + struct.pack("!Q", lab.rng.getrandbits(64))
    server = internet(addresses[0])
    lab.udp(ts, lan(device), server, (port, 123), request)
    reply = bytes([0x24, 2, 0, 0xE9]) + lab.rng.randbytes(44)
    lab.udp(ts + lab.jitter(20), server, lan(device), (123, port), reply)


# ---------------------------------------------------------------- the lab's objects


def echo_dot(lab: Lab, seconds: int) -> None:
    """DHCP, mDNS, NTP, a captive-portal check, an AVS connection with 30 s heartbeats, metrics uploads and
    two voice activations (upload bursts of 32 and 48 KB/s)."""
    ts = dhcp_join(lab, lab.at(2), ECHO)
    txt = ["n=Kitchen Echo", "tr=tcp", "sp=55443", "pv=1", "a=0"]
    for repeat in range(2):
        mdns_announce(
            lab, ts + repeat * NS, ECHO, "amzn.dmgr:9F2C6E2A8B7D4E1F", "_amzn-wplay._tcp.local", 55443, txt
        )
    ntp_poll(lab, ts + 100 * MS, ECHO, "ntp-g7g.amazon.com")
    http_visit(
        lab,
        ts + 300 * MS,
        ECHO,
        "spectrum.s3.amazonaws.com",
        "/kindle-wifi/wifistub.html",
        body=81,
        user_agent="Amazon Echo",
    )
    tls_visit(lab, ts + 600 * MS, ECHO, "api.amazon.com", up=1800, down=4200)
    avs = tls_visit(lab, ts + NS, ECHO, "avs-alexa-4-na.amazon.com", up=1200, down=2400, keep=True, rtt_ms=90)
    bursts = [(0.3 * seconds, 4.0, 32_000), (0.7 * seconds, 6.5, 48_000)]
    heartbeats = [avs.t + k * HEARTBEAT_PERIOD_S * NS for k in range(1, seconds // HEARTBEAT_PERIOD_S + 1)]
    events = sorted([(ts_, 0.0, 0) for ts_ in heartbeats] + [(lab.at(s), d, r) for s, d, r in bursts])
    for when, duration, rate in events:
        if rate:
            voice_activation(lab, avs, when, duration, rate)
        else:
            avs.exchange(46, 46, at=when)
    every(
        lab,
        60,
        120,
        lambda t: tls_visit(
            lab, t, ECHO, "device-metrics-us.amazon.com", up=lab.rng.randrange(2000, 6000), down=420
        ),
    )


def voice_activation(lab: Lab, avs: TcpSession, ts: int, duration_s: float, rate: int) -> None:
    """Audio uploaded in 100 ms chunks at `rate` bytes/s, then the spoken answer downloaded."""
    start = max(ts, avs.t)
    chunks = int(duration_s * 10)
    for index in range(chunks):
        avs.send(True, tls_records(lab.rng, rate // 10), at=start + index * 100 * MS)
    lab.activations.append((ECHO.mac, "avs-alexa-4-na.amazon.com", start, start + chunks * 100 * MS))
    avs.exchange(300, lab.rng.randrange(45_000, 70_000))


def samsung_tv(lab: Lab, seconds: int) -> None:
    """DHCP, Spotify Connect over mDNS, time over HTTP, ACR fingerprints every 15 s, ads, and Netflix (two
    video chunks of 1.2 MB in ten minutes, smaller in a shorter capture)."""
    chunk = 2000 * seconds
    ts = dhcp_join(lab, lab.at(10), TV)
    mdns_announce(
        lab,
        ts,
        TV,
        "Samsung Q60 Series (55)",
        "_spotify-connect._tcp.local",
        8080,
        ["CPath=/zc/0", "VERSION=1.0", "Stack=SP"],
    )
    http_visit(
        lab,
        ts + 200 * MS,
        TV,
        "time.samsungcloudsolution.com",
        "/openapi/timesync?client=TimeAgent/1.0",
        body=180,
        user_agent="SmartTV",
    )
    tls_visit(lab, ts + NS, TV, "log-config.samsungacr.com", up=600, down=1800)
    tls_visit(lab, ts + 2 * NS, TV, "config.samsungads.com", up=900, down=6000)
    every(
        lab,
        (ts - lab.start) / NS + 3,
        300,
        lambda t: tls_visit(lab, t, TV, "pubads.g.doubleclick.net", up=1100, down=24_000),
    )
    acr = tls_visit(lab, ts + 4 * NS, TV, "acr-eu-prd.samsungcloud.tv", up=700, down=180, keep=True)
    every(
        lab, (acr.t - lab.start) / NS + 15, 15, lambda t: acr.exchange(lab.rng.randrange(600, 900), 180, at=t)
    )
    tls_visit(lab, lab.at(0.4 * seconds), TV, "api-global.netflix.com", up=2500, down=18_000)
    video = tls_visit(
        lab,
        lab.at(0.45 * seconds),
        TV,
        "ipv4-c012-par002-ix.1.oca.nflxvideo.net",
        up=600,
        down=chunk,
        keep=True,
        rtt_ms=6,
        rate_mbps=25,
    )
    video.exchange(600, chunk, at=video.t + 20 * NS)
    video.close(at=video.t + 30 * NS)


def kasa_plug(lab: Lab, seconds: int) -> None:
    """DHCP, NTP, a registration, then a small TLS heartbeat every 60 s to the TP-Link cloud."""
    del seconds
    ts = dhcp_join(lab, lab.at(20), PLUG)
    ntp_poll(lab, ts, PLUG, "pool.ntp.org")
    tls_visit(lab, ts + 500 * MS, PLUG, "n-deventry.tplinkcloud.com", up=900, down=1400, rtt_ms=35)
    cloud = tls_visit(lab, ts + NS, PLUG, "n-devs.tplinkcloud.com", up=400, down=300, keep=True, rtt_ms=35)
    every(lab, (cloud.t - lab.start) / NS + 60, 60, lambda t: cloud.exchange(180, 120, at=t))
    every(lab, (ts - lab.start) / NS + 300, 300, lambda t: ntp_poll(lab, t, PLUG, "pool.ntp.org"))


def kasa_discovery(lab: Lab, ts: int) -> None:
    """The Kasa app's UDP 9999 broadcast and the plug's answer (XOR-autokey 'encrypted' JSON)."""

    def autokey(text: str) -> bytes:
        key, out = 171, bytearray()
        for byte in text.encode():
            key ^= byte
            out.append(key)
        return bytes(out)

    port = lab.rng.randrange(32768, 61000)
    lab.udp(ts, lan(PHONE), BROADCAST, (port, 9999), autokey('{"system":{"get_sysinfo":{}}}'))
    info = '{"system":{"get_sysinfo":{"model":"HS110(EU)","alias":"Desk Plug","relay_state":1}}}'
    lab.udp(ts + lab.jitter(8), lan(PLUG), lan(PHONE), (9999, port), autokey(info))


PHONE_SITES: tuple[tuple[tuple[str, int, int], ...], ...] = (
    (
        ("www.lemonde.fr", 1600, 280_000),
        ("pubads.g.doubleclick.net", 1200, 30_000),
        ("app-measurement.com", 2100, 500),
    ),
    (("graph.facebook.com", 3000, 12_000), ("scontent-cdg4-1.cdninstagram.com", 1400, 400_000)),
    (("fr.wikipedia.org", 1300, 120_000), ("g.whatsapp.net", 1500, 1000)),
    (("api.spotify.com", 2000, 8000), ("app-measurement.com", 1800, 500)),
)


def android_phone(lab: Lab, seconds: int) -> None:
    """IPv6 set-up (RS, MLD with a hop-by-hop header, NS/NA), a connectivity check over IPv6, FCM, browsing
    sessions, a Kasa discovery, casting to the Nest, and pings."""
    ts = dhcp_join(lab, lab.at(5), PHONE)
    ipv6_setup(lab, ts, PHONE)
    http_visit(
        lab,
        ts + 300 * MS,
        PHONE,
        "connectivitycheck.gstatic.com",
        "/generate_204",
        body=0,
        status=204,
        ipv6=True,
    )
    fcm = tls_visit(
        lab, ts + NS, PHONE, "mtalk.google.com", up=900, down=700, ipv6=True, port=5228, keep=True
    )
    every(lab, (fcm.t - lab.start) / NS + 120, 180, lambda t: fcm.exchange(40, 40, at=t))
    for offset, name in enumerate(("android.googleapis.com", "play.googleapis.com", "www.google.com")):
        tls_visit(lab, ts + (2 + offset) * NS, PHONE, name, up=2000, down=9000, ipv6=True)
    for share, site in zip((0.15, 0.35, 0.55, 0.8), PHONE_SITES, strict=True):
        start = lab.at(share * seconds)
        for index, (name, up, down) in enumerate(site):
            tls_visit(lab, start + index * 400 * MS, PHONE, name, up=up, down=down, ipv6=True, rate_mbps=60)
    kasa_discovery(lab, lab.at(0.25 * seconds))
    cast_session(lab, lab.at(0.6 * seconds))
    pings(lab, lab.at(0.9 * seconds))


def ipv6_setup(lab: Lab, ts: int, device: Device) -> None:
    """Router solicitation and the solicited advertisement, MLDv2 report (hop-by-hop router alert), NS/NA."""
    local, global6 = device.link_local, device.global6
    if local is None or global6 is None:
        return
    all_routers = Endpoint(fr.ipv6_multicast_mac("ff02::2").hex(":"), "ff02::2", 255)
    lab.ip_frame(
        ts,
        Endpoint(device.mac, local, 255),
        all_routers,
        fr.IPPROTO_ICMPV6,
        fr.icmpv6(local, "ff02::2", 133, 0, struct.pack("!IBB6s", 0, 1, 1, fr.mac_bytes(device.mac))),
    )
    router_advertisement(lab, ts + lab.jitter(4))
    groups = [fr.solicited_node(global6), fr.solicited_node(local), fr.MDNS_GROUP6]
    mld = Endpoint(fr.ipv6_multicast_mac("ff02::16").hex(":"), "ff02::16", 1)
    lab.ip_frame(
        ts + 20 * MS,
        Endpoint(device.mac, local, 1),
        mld,
        fr.IPPROTO_ICMPV6,
        fr.mld_report(local, groups),
        extensions=[fr.hop_by_hop()],
    )
    group = fr.solicited_node(ROUTER_LINK_LOCAL)
    solicit = Endpoint(fr.ipv6_multicast_mac(group).hex(":"), group, 255)
    lab.ip_frame(
        ts + 40 * MS,
        Endpoint(device.mac, local, 255),
        solicit,
        fr.IPPROTO_ICMPV6,
        fr.neighbor_solicitation(local, group, ROUTER_LINK_LOCAL, device.mac),
    )
    lab.ip_frame(
        ts + 41 * MS,
        Endpoint(ROUTER_MAC, ROUTER_LINK_LOCAL, 255),
        Endpoint(device.mac, local),
        fr.IPPROTO_ICMPV6,
        fr.neighbor_advertisement(ROUTER_LINK_LOCAL, local, ROUTER_LINK_LOCAL, ROUTER_MAC, router=True),
    )


def cast_session(lab: Lab, ts: int) -> None:
    """The phone looks for Cast devices over mDNS, the Nest answers, the phone opens TLS on 8009 (no SNI)."""
    query = fr.mdns_query(["_googlecast._tcp.local"])
    lab.udp(ts, Endpoint(PHONE.mac, PHONE.ipv4, 255), MDNS4, (5353, 5353), query)
    if PHONE.link_local:
        lab.udp(ts + 200_000, Endpoint(PHONE.mac, PHONE.link_local, 255), MDNS6, (5353, 5353), query)
    nest_announce(lab, ts + lab.jitter(30))
    session = TcpSession(lab, ts + 200 * MS, lan(PHONE), lan(NEST), 8009, rtt_ms=4, rate_mbps=80).connect()
    session.tls_handshake(None, alpn=())
    for _ in range(3):
        session.exchange(1500, 3000, at=session.t + lab.jitter(400))
    session.close(at=session.t + 2 * NS)


def pings(lab: Lab, ts: int) -> None:
    """Three ICMP echoes to 1.1.1.1 and three ICMPv6 echoes to its IPv6 twin."""
    ident = lab.rng.getrandbits(16)
    for seq in range(1, 4):
        sent = ts + (seq - 1) * NS
        data = lab.rng.randbytes(48)
        lab.ip_frame(sent, lan(PHONE), internet("1.1.1.1"), fr.IPPROTO_ICMP, fr.icmp_echo(ident, seq, data))
        lab.ip_frame(
            sent + lab.jitter(12),
            internet("1.1.1.1"),
            lan(PHONE),
            fr.IPPROTO_ICMP,
            fr.icmp_echo(ident, seq, data, reply=True),
        )
        far, near = "2606:4700:4700::1111", lan6(PHONE).ip
        lab.ip_frame(
            sent + 500 * MS,
            lan6(PHONE),
            internet(far),
            fr.IPPROTO_ICMPV6,
            fr.icmpv6_echo(near, far, ident, seq, data),
        )
        lab.ip_frame(
            sent + 500 * MS + lab.jitter(12),
            internet(far),
            lan6(PHONE),
            fr.IPPROTO_ICMPV6,
            fr.icmpv6_echo(far, near, ident, seq, data, reply=True),
        )


def nest_announce(lab: Lab, ts: int) -> None:
    txt = [
        "id=6b029e8f4c1d4f0aa1c2d3e4f5a6b7c8",
        "md=Google Nest Mini",
        "fn=Kitchen",
        "ve=05",
        "ca=199172",
        "st=0",
        "rs=",
    ]
    mdns_announce(lab, ts, NEST, "Kitchen", "_googlecast._tcp.local", 8009, txt)


def nest_mini(lab: Lab, seconds: int) -> None:
    """DHCP, the Cast announcement, a connectivity check, and a Google API call every 2 minutes."""
    del seconds
    ts = dhcp_join(lab, lab.at(30), NEST)
    nest_announce(lab, ts)
    nest_announce(lab, ts + NS)
    http_visit(
        lab,
        ts + 200 * MS,
        NEST,
        "connectivitycheck.gstatic.com",
        "/generate_204",
        body=0,
        status=204,
        user_agent="CrKey",
    )
    tls_visit(lab, ts + NS, NEST, "clients4.google.com", up=1500, down=3500)
    every(
        lab,
        (ts - lab.start) / NS + 90,
        120,
        lambda t: tls_visit(lab, t, NEST, "www.googleapis.com", up=1300, down=2200),
    )


def router_advertisement(lab: Lab, ts: int) -> None:
    all_nodes = Endpoint(fr.ipv6_multicast_mac("ff02::1").hex(":"), "ff02::1", 255)
    body = fr.router_advertisement(ROUTER_LINK_LOCAL, "ff02::1", ROUTER_MAC, PREFIX6, dns=ROUTER_GLOBAL6)
    lab.ip_frame(ts, Endpoint(ROUTER_MAC, ROUTER_LINK_LOCAL, 255), all_nodes, fr.IPPROTO_ICMPV6, body)


def router(lab: Lab, seconds: int) -> None:
    """Periodic router advertisements, and ARP refreshes of each device's address."""
    del seconds
    every(lab, 1, 200, lambda t: router_advertisement(lab, t))
    for index, device in enumerate(DEVICES):
        every(
            lab, 90 + 7 * index, 150, functools.partial(arp_exchange, lab, asker=ROUTER, target=lan(device))
        )


BEHAVIOURS: tuple[Callable[[Lab, int], None], ...] = (
    router,
    echo_dot,
    samsung_tv,
    kasa_plug,
    android_phone,
    nest_mini,
)


# ---------------------------------------------------------------- writing the capture


def build_lab(seconds: int, seed: int, start_ns: int = LAB_START_NS) -> Lab:
    """Every frame of the lab, unsorted; deterministic for a (seconds, seed, start)."""
    lab = Lab(random.Random(seed), start_ns, seconds)  # noqa: S311 reproducible samples, not secrets
    for behaviour in BEHAVIOURS:
        behaviour(lab, seconds)
    return lab


_VLANS = {PHONE.mac: (10,), TV.mac: (100, 20)}  # others: (20,); QinQ where two tags


def _device_of(frame: bytes) -> Device | None:
    """The device at either end of a frame (source first)."""
    for mac in (frame[6:12], frame[0:6]):
        for device in DEVICES:
            if fr.mac_bytes(device.mac) == mac:
                return device
    return None


def trunk_tag(frame: bytes) -> bytes:
    """The frame as a trunk port carries it: VLAN 10 (phone, router broadcasts), 20, or QinQ 100/20 (TV)."""
    device = _device_of(frame)
    vids = (10,) if device is None else _VLANS.get(device.mac, (20,))
    return frame[:12] + fr.vlan_tags(vids, qinq=len(vids) > 1) + frame[12:]


def sll_packet_type(frame: bytes) -> int:
    """How the router (the capturing host) sees a frame."""
    if frame[6:12] == fr.mac_bytes(ROUTER_MAC):
        return fr.SllPacketType.OUTGOING
    if frame[0:6] == fr.BROADCAST_MAC:
        return fr.SllPacketType.BROADCAST
    if frame[0] & 1:
        return fr.SllPacketType.MULTICAST
    if frame[0:6] == fr.mac_bytes(ROUTER_MAC):
        return fr.SllPacketType.HOST
    return fr.SllPacketType.OTHERHOST


class _Tally:
    """Counts what was written, per device (by MAC) and per LAN address, IPv4/IPv6 only."""

    def __init__(self, bursts: Sequence[tuple[str, str, int, int]]) -> None:
        self.packets = self.bytes = 0
        self._bursts = [(fr.mac_bytes(mac), start, end) for mac, _, start, end in bursts]
        self.burst_bytes = [0] * len(bursts)
        self.devices: dict[bytes, list[int]] = {fr.mac_bytes(d.mac): [0, 0, 0, 0] for d in DEVICES}
        self.addresses: dict[str, list[int]] = {}
        self._lan = [ipaddress.ip_network(net) for net in (LAN_IPV4, PREFIX6 + "/64", "fe80::/10")]
        self._router = {ROUTER_IPV4, ROUTER_LINK_LOCAL, ROUTER_GLOBAL6}

    def add(self, ts: int, frame: bytes, length: int) -> None:
        self.packets += 1
        self.bytes += length
        ethertype, packet = fr.split_ethernet(frame)
        if ethertype not in (fr.ETH_P_IPV4, fr.ETH_P_IPV6):
            return
        for index, (mac, start, end) in enumerate(self._bursts):
            if start <= ts <= end and frame[6:12] == mac:
                self.burst_bytes[index] += length
        for offset, mac in ((0, frame[6:12]), (1, frame[0:6])):
            counts = self.devices.get(mac)
            if counts is not None:
                counts[offset] += length
                counts[offset + 2] += 1
        src, dst = (
            (packet[12:16], packet[16:20]) if ethertype == fr.ETH_P_IPV4 else (packet[8:24], packet[24:40])
        )
        for offset, raw in ((0, src), (1, dst)):
            address = ipaddress.ip_address(raw)
            if self._is_device_address(address):
                counts = self.addresses.setdefault(address.compressed, [0, 0, 0, 0])
                counts[offset] += length
                counts[offset + 2] += 1

    def _is_device_address(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if address.compressed in self._router or address.is_multicast:
            return False
        return address.is_unspecified or any(
            address in net for net in self._lan if net.version == address.version
        )


class _Output:
    """The pcap or pcapng writer of one lab capture; pcapng puts Wi-Fi objects on a second interface."""

    def __init__(self, path: Path, fmt: CaptureFormat, linktype: int) -> None:
        self._pcapng: PcapngWriter | None = None
        self._pcap: PcapWriter | None = None
        if fmt == CaptureFormat.PCAPNG:
            self._pcapng = PcapngWriter(path, os_name="Linux 6.1 (Debian 12)", comment="Mouchard sample lab")
            self._pcapng.add_interface(linktype, tsresol=6, name="eth0", description="wired LAN")
            self._pcapng.add_interface(linktype, tsresol=9, name="wlan0", description="Wi-Fi access point")
            self._pcapng.write_custom_block(b"Mouchard: readers skip this block", copyable=True)
        else:
            self._pcap = PcapWriter(path, linktype)

    def write(self, ts: int, frame: bytes, original: bytes) -> None:
        if self._pcap is not None:
            self._pcap.write(ts, frame)
            return
        if self._pcapng is None:
            return
        device = _device_of(original)
        interface = int(device is not None and device.wifi)
        outbound = original[6:12] == fr.mac_bytes(ROUTER_MAC)
        comment = "first frame of the lab" if self._pcapng.packets == 0 else None
        self._pcapng.write(ts, frame, interface=interface, flags=2 if outbound else 1, comment=comment)
        if self._pcapng.packets == 100:
            self._pcapng.write_custom_block(b"\x00not for copying", copyable=False)

    def close(self) -> None:
        for writer in (self._pcap, self._pcapng):
            if writer is not None:
                writer.close()


def _reframe(frame: bytes, linktype: int, vlans: VlanMode) -> bytes | None:
    if linktype == fr.LinkType.ETHERNET:
        return trunk_tag(frame) if vlans == VlanMode.TRUNK else frame
    return fr.relink(frame, linktype, packet_type=sll_packet_type(frame))


def write_lab_capture(
    path: str | Path,
    seconds: int = 600,
    seed: int = 1,
    *,
    fmt: CaptureFormat = CaptureFormat.PCAP,
    linktype: int = fr.LinkType.ETHERNET,
    vlans: VlanMode = VlanMode.NONE,
    start_ns: int = LAB_START_NS,
) -> LabSummary:
    """Write the lab capture and return what it holds, counted from the records written."""
    if seconds < 40:
        raise ValueError("the lab needs at least 40 seconds for every object to join")
    path = Path(path)
    lab = build_lab(seconds, seed, start_ns)
    tally = _Tally(lab.activations)
    output = _Output(path, fmt, linktype)
    try:
        for ts, _, frame in sorted(lab.frames):
            written = _reframe(frame, linktype, vlans)
            if written is not None:
                output.write(ts, written, frame)
                tally.add(ts, frame, len(written))
    finally:
        output.close()
    return _summary(path, lab, tally, linktype, seconds)


def _summary(path: Path, lab: Lab, tally: _Tally, linktype: int, seconds: int) -> LabSummary:
    devices = []
    for device in DEVICES:
        sent, received, packets_out, packets_in = tally.devices[fr.mac_bytes(device.mac)]
        ipv6 = tuple(address for address in (device.global6, device.link_local) if address)
        devices.append(
            DeviceSummary(
                device.mac,
                device.ipv4,
                ipv6,
                device.label,
                device.hostname,
                device.vendor,
                device.kind,
                device.model,
                sent,
                received,
                packets_out,
                packets_in,
                tuple(lab.hosts[device.mac]),
            )
        )
    activations = tuple(
        Activation(mac, host, (start - lab.start) / NS, (end - start) / NS, count)
        for (mac, host, start, end), count in zip(lab.activations, tally.burst_bytes, strict=True)
    )
    addresses = {address: Traffic(*counts) for address, counts in sorted(tally.addresses.items())}
    return LabSummary(
        path,
        int(linktype),
        lab.start / NS,
        seconds,
        tally.packets,
        tally.bytes,
        ROUTER_MAC,
        ROUTER_IPV4,
        PREFIX6 + "/64",
        tuple(devices),
        addresses,
        activations,
        HEARTBEAT_PERIOD_S,
        tuple(lab.dns_names),
        tuple(lab.server_names),
    )


# ---------------------------------------------------------------- command line


_LINKTYPES = {
    "ethernet": fr.LinkType.ETHERNET,
    "sll": fr.LinkType.LINUX_SLL,
    "sll2": fr.LinkType.LINUX_SLL2,
    "raw": fr.LinkType.RAW,
}


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.samples.lab", description=__doc__.splitlines()[0]
    )
    parser.add_argument("output", type=Path, help="the capture file to write")
    parser.add_argument("--seconds", type=int, default=600, help="capture length (default 600, at least 40)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1): same seed, same bytes")
    parser.add_argument(
        "--format", choices=[f.value for f in CaptureFormat], default=CaptureFormat.PCAP.value
    )
    parser.add_argument("--link", choices=sorted(_LINKTYPES), default="ethernet", help="link-layer header")
    parser.add_argument(
        "--vlans",
        choices=[v.value for v in VlanMode],
        default=VlanMode.NONE.value,
        help="trunk: 802.1Q and QinQ tags (Ethernet only)",
    )
    parser.add_argument(
        "--labels",
        type=Path,
        metavar="YAML",
        help="also write the lab's own labels of its devices (a `devices:` configuration section) to YAML",
    )
    arguments = parser.parse_args(argv)
    if arguments.seconds < 40:
        parser.error("--seconds must be at least 40: every object joins the LAN in the first 35 s")
    if arguments.vlans != VlanMode.NONE.value and arguments.link != "ethernet":
        parser.error("--vlans trunk needs --link ethernet: cooked and raw captures carry no tags")
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _arguments(argv)
    summary = write_lab_capture(
        arguments.output,
        arguments.seconds,
        arguments.seed,
        fmt=CaptureFormat(arguments.format),
        linktype=_LINKTYPES[arguments.link],
        vlans=VlanMode(arguments.vlans),
    )
    print(f"{summary.path}: {summary.packets} packets, {summary.bytes} bytes, {summary.seconds} s")
    header = ("device", "name", "ipv4", "sent", "received", "pkts out", "pkts in")
    print("{:<17} {:<15} {:<13} {:>10} {:>10} {:>8} {:>8}".format(*header))
    for device in summary.devices:
        print(
            f"{device.mac:<17} {device.name:<15} {device.ipv4:<13} {device.bytes_sent:>10} "
            f"{device.bytes_received:>10} {device.packets_sent:>8} {device.packets_received:>8}"
        )
    if arguments.labels:
        arguments.labels.write_text(labels_yaml(summary), encoding="utf-8")
    return 0


def labels_yaml(summary: LabSummary) -> str:
    """The `devices:` section a lab would write for these objects (names as their owners gave them)."""
    lines = ["devices:"]
    for d in summary.devices:
        fields = {"name": d.name, "kind": d.kind, "vendor": d.vendor, "model": d.model}
        body = ", ".join(f'{k}: "{v}"' for k, v in fields.items() if v)
        lines.append(f'  "{d.mac}": {{{body}}}')
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
