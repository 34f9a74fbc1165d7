"""Labelled captures for the detectors: a night in the lab, with what each object did and when.

`write_scenario(path)` writes fifteen minutes from 02:50 (Paris time) of three objects of the sample lab
(`gateway.samples.lab`): the Echo Dot idling (a kept-open connection to Alexa with a ping every 30 s,
usage metrics every 2 min, a software check whose download makes it send a stream of ACKs) and then
answering two voice requests; the Samsung TV reporting to its ACR service every 15 s and streaming a
two-minute video; the Kasa plug reporting to the TP-Link cloud every minute and, late in the night,
fetching firmware from a server in China it never used before. `ScenarioLabels` says what happened:
activations (from the frames written), heartbeat periods, new destinations, and per-device bytes
exchanged with the internet, for any time span.

``voice_requests=()`` gives the speaker at rest, the capture `mouchard calibrate` learns from.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from gateway.samples import frames as fr
from gateway.samples import lab as lb
from gateway.samples.lab import ECHO, MS, NS, PLUG, TV, Lab, TcpSession
from gateway.samples.pcapwriter import PcapWriter

NIGHT_START_NS = int(datetime(2024, 11, 6, 1, 50, tzinfo=UTC).timestamp()) * NS  # 02:50 in Paris
SECONDS = 900
QUIET_WINDOW = "02:55-03:05"  # local time; the capture covers it whole
ZONE = "Europe/Paris"
DEVICES = (ECHO, TV, PLUG)


@dataclass(frozen=True, slots=True)
class VoiceRequest:
    at_s: float  # since the capture's start
    duration_s: float
    rate: int  # audio bytes per second


VOICE_REQUESTS = (VoiceRequest(420, 4.0, 32_000), VoiceRequest(700, 6.5, 20_000))
# The plug's firmware server: a name and an address the rest of the lab never uses (Alibaba Cloud,
# Hangzhou: registered in CN).
FIRMWARE = lb.CloudHost("fw-cn.tplinkcloud.com", (), ("47.96.135.20",))
FIRMWARE_AT_S = 780


@dataclass(frozen=True, slots=True)
class Heartbeat:
    mac: str
    host: str
    period_s: float


@dataclass(frozen=True, slots=True)
class Activation:
    mac: str
    host: str
    start_s: float  # since the capture's start
    duration_s: float
    bytes_sent: int  # frame bytes the device sent during the burst


@dataclass(frozen=True, slots=True)
class NewDestination:
    mac: str
    host: str
    country: str
    at_s: float


@dataclass(frozen=True, slots=True)
class ScenarioLabels:
    path: Path
    start_s: int  # epoch seconds of the capture's start
    seconds: int
    devices: tuple[lb.Device, ...]
    activations: tuple[Activation, ...]
    heartbeats: tuple[Heartbeat, ...]
    new_destinations: tuple[NewDestination, ...]  # first contacts after FIRST_LEARNED_S
    quiet_window: str
    zone: str
    _ts: npt.NDArray[np.int64]  # per IPv4/IPv6 frame exchanged with the internet: time, MAC, length
    _mac: npt.NDArray[np.uint64]
    _len: npt.NDArray[np.int64]
    _sent: npt.NDArray[np.bool_]  # the device sent it (else received it)

    def bytes_outside(self, mac: str, start_s: float, end_s: float) -> int:
        """Frame bytes the device exchanged with internet addresses, from ``start_s`` to ``end_s``
        (epoch seconds, end excluded)."""
        key = np.uint64(int(mac.replace(":", ""), 16))
        sel = (self._mac == key) & (self._ts >= int(start_s * NS)) & (self._ts < int(end_s * NS))
        return int(self._len[sel].sum())


# ---------------------------------------------------------------- the objects' night


def speaker(lab: Lab, seconds: int, voice_requests: Sequence[VoiceRequest]) -> None:
    ts = lb.dhcp_join(lab, lab.at(2), ECHO)
    lb.ntp_poll(lab, ts + 100 * MS, ECHO, "ntp-g7g.amazon.com")
    avs = lb.tls_visit(
        lab, ts + NS, ECHO, "avs-alexa-4-na.amazon.com", up=1200, down=2400, keep=True, rtt_ms=90
    )
    moments = [(lab.at(r.at_s), r) for r in voice_requests]

    def ping(t: int) -> None:
        if not any(at - 2 * NS <= t <= at + (r.duration_s + 3) * NS for at, r in moments):
            avs.exchange(46, 46, at=t)  # a ping that would fall in a request is part of it

    times: list[int] = []
    lb.every(lab, (avs.t - lab.start) / NS + 30, 30, times.append)
    for t in sorted([*times, *(at for at, _ in moments)]):
        request = next((r for at, r in moments if at == t), None)
        if request is None:
            ping(t)
        else:
            lb.voice_activation(lab, avs, t, request.duration_s, request.rate)
    lb.every(
        lab,
        60,
        120,
        lambda t: lb.tls_visit(
            lab, t, ECHO, "device-metrics-us.amazon.com", up=lab.rng.randrange(2000, 6000), down=420
        ),
    )
    # A software check: a small request, then 800 kB down at 10 Mbit/s, acknowledged all the way.
    lb.tls_visit(
        lab, lab.at(min(250, seconds - 20)), ECHO, "api.amazon.com", up=1500, down=800_000, rate_mbps=10
    )


def television(lab: Lab, seconds: int) -> None:
    ts = lb.dhcp_join(lab, lab.at(10), TV)
    acr = lb.tls_visit(lab, ts + NS, TV, "acr-eu-prd.samsungcloud.tv", up=700, down=180, keep=True)
    lb.every(
        lab, (acr.t - lab.start) / NS + 15, 15, lambda t: acr.exchange(lab.rng.randrange(600, 900), 180, at=t)
    )
    start = min(200, seconds // 3)
    lb.tls_visit(lab, lab.at(start - 5), TV, "api-global.netflix.com", up=2500, down=18_000)
    video = lb.tls_visit(
        lab, lab.at(start), TV, "ipv4-c012-par002-ix.1.oca.nflxvideo.net", up=600, down=250_000, keep=True,
        rtt_ms=6, rate_mbps=25,
    )  # fmt: skip
    for k in range(1, 120):  # a chunk a second: about 2 Mbit/s for two minutes
        video.exchange(600, 250_000, at=lab.at(start + k))
    video.close(at=video.t + NS)


def plug(lab: Lab, seconds: int) -> None:
    ts = lb.dhcp_join(lab, lab.at(20), PLUG)
    lb.ntp_poll(lab, ts, PLUG, "pool.ntp.org")
    cloud = lb.tls_visit(lab, ts + NS, PLUG, "n-devs.tplinkcloud.com", up=400, down=300, keep=True, rtt_ms=35)
    lb.every(lab, (cloud.t - lab.start) / NS + 60, 60, lambda t: cloud.exchange(180, 120, at=t))
    lb.every(lab, (ts - lab.start) / NS + 300, 300, lambda t: lb.ntp_poll(lab, t, PLUG, "pool.ntp.org"))
    if seconds - 10 > FIRMWARE_AT_S:
        firmware_check(lab, lab.at(FIRMWARE_AT_S))


def firmware_check(lab: Lab, ts: int) -> None:
    """The plug resolves the firmware server and asks it for an update list (a name not in lab.CLOUD)."""
    txid, port = lab.rng.getrandbits(16), lab.rng.randrange(32768, 61000)
    lab.udp(ts, lb.lan(PLUG), lb.ROUTER, (port, 53), fr.dns_query(txid, FIRMWARE.name))
    answers = fr.dns_answer_chain(FIRMWARE.name, (), FIRMWARE.ipv4)
    lab.udp(
        ts + 15 * MS,
        lb.ROUTER,
        lb.lan(PLUG),
        (53, port),
        fr.dns_response(txid, FIRMWARE.name, fr.DNS_A, answers),
    )
    session = TcpSession(
        lab, ts + 30 * MS, lb.lan(PLUG), lb.internet(FIRMWARE.ipv4[0]), 443, rtt_ms=220
    ).connect()
    session.tls_handshake(FIRMWARE.name)
    session.exchange(700, 5200)
    session.close(at=session.t + 300 * MS)


# ---------------------------------------------------------------- writing and labelling


def write_scenario(
    path: str | Path,
    *,
    seconds: int = SECONDS,
    seed: int = 1,
    voice_requests: Sequence[VoiceRequest] = VOICE_REQUESTS,
    start_ns: int = NIGHT_START_NS,
) -> ScenarioLabels:
    """Write the night's capture (Ethernet, pcap) and return its labels."""
    if seconds < 60:
        raise ValueError("the scenario needs at least 60 seconds for the objects to join")
    lab = Lab(random.Random(seed), start_ns, seconds)  # noqa: S311 reproducible samples, not secrets
    speaker(lab, seconds, [r for r in voice_requests if r.at_s + r.duration_s < seconds - 5])
    television(lab, seconds)
    plug(lab, seconds)
    path = Path(path)
    ts_out, mac_out, len_out, sent_out = [], [], [], []
    macs = {fr.mac_bytes(d.mac): int(d.mac.replace(":", ""), 16) for d in DEVICES}
    writer = PcapWriter(path)
    try:
        for ts, _, frame in sorted(lab.frames):
            writer.write(ts, frame)
            found = _internet_device(frame, macs)
            if found is not None:
                ts_out.append(ts)
                mac_out.append(found[0])
                len_out.append(len(frame))
                sent_out.append(found[1])
    finally:
        writer.close()
    ts_arr = np.array(ts_out, np.int64)
    mac_arr = np.array(mac_out, np.uint64)
    len_arr = np.array(len_out, np.int64)
    sent_arr = np.array(sent_out, np.bool_)
    return ScenarioLabels(
        path,
        start_ns // NS,
        seconds,
        DEVICES,
        _activations(
            lab, ts_arr[sent_arr], mac_arr[sent_arr], len_arr[sent_arr], macs[fr.mac_bytes(ECHO.mac)]
        ),
        _heartbeats(seconds),
        _new_destinations(seconds),
        QUIET_WINDOW,
        ZONE,
        ts_arr,
        mac_arr,
        len_arr,
        sent_arr,
    )


_LAN = [ipaddress.ip_network(n) for n in (lb.LAN_IPV4, lb.PREFIX6 + "/64", "fe80::/10")]
_ROUTER = fr.mac_bytes(lb.ROUTER_MAC)


def _internet_device(frame: bytes, macs: dict[bytes, int]) -> tuple[int, bool] | None:
    """The device (a MAC integer) at the LAN end of a frame to or from the internet, and whether it
    sent the frame; None for other frames."""
    ethertype, packet = fr.split_ethernet(frame)
    if ethertype not in (fr.ETH_P_IPV4, fr.ETH_P_IPV6) or _ROUTER not in (frame[0:6], frame[6:12]):
        return None
    v4 = ethertype == fr.ETH_P_IPV4
    src, dst = (packet[12:16], packet[16:20]) if v4 else (packet[8:24], packet[24:40])
    received = frame[6:12] == _ROUTER
    far, near_mac = (src, frame[0:6]) if received else (dst, frame[6:12])
    address = ipaddress.ip_address(far)
    device = macs.get(near_mac)
    if device is None or any(address in net for net in _LAN if net.version == address.version):
        return None
    return device, not received


def _activations(
    lab: Lab,
    ts: npt.NDArray[np.int64],
    mac: npt.NDArray[np.uint64],
    length: npt.NDArray[np.int64],
    echo: int,
) -> tuple[Activation, ...]:
    out = []
    for _, host, start, end in lab.activations:
        sent = (mac == np.uint64(echo)) & (ts >= start) & (ts <= end)
        out.append(
            Activation(ECHO.mac, host, (start - lab.start) / NS, (end - start) / NS, int(length[sent].sum()))
        )
    return tuple(out)


def _heartbeats(seconds: int) -> tuple[Heartbeat, ...]:
    del seconds
    return (
        Heartbeat(ECHO.mac, "avs-alexa-4-na.amazon.com", 30),
        Heartbeat(ECHO.mac, "device-metrics-us.amazon.com", 120),
        Heartbeat(TV.mac, "acr-eu-prd.samsungcloud.tv", 15),
        Heartbeat(PLUG.mac, "n-devs.tplinkcloud.com", 60),
        Heartbeat(PLUG.mac, "pool.ntp.org", 300),
    )


def _new_destinations(seconds: int) -> tuple[NewDestination, ...]:
    if seconds - 10 <= FIRMWARE_AT_S:
        return ()
    return (NewDestination(PLUG.mac, FIRMWARE.name, "CN", FIRMWARE_AT_S),)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.samples.scenarios", description=__doc__.splitlines()[0]
    )
    parser.add_argument("output", type=Path, help="the capture file to write")
    parser.add_argument("--seconds", type=int, default=SECONDS, help=f"capture length (default {SECONDS})")
    parser.add_argument("--at-rest", action="store_true", help="no voice request (for mouchard calibrate)")
    args = parser.parse_args(argv)
    labels = write_scenario(
        args.output, seconds=args.seconds, voice_requests=() if args.at_rest else VOICE_REQUESTS
    )
    start = datetime.fromtimestamp(labels.start_s, UTC)
    print(f"{labels.path}: {labels.seconds} s from {start:%Y-%m-%d %H:%M} UTC")
    for a in labels.activations:
        print(f"activation {a.mac} at +{a.start_s:.1f} s for {a.duration_s:.1f} s, {a.bytes_sent} bytes sent")
    for h in labels.heartbeats:
        print(f"heartbeat {h.mac} -> {h.host} every {h.period_s:g} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
