"""`mouchard calibrate DEVICE CAPTURE`: a voice assistant's activation threshold, from a capture at rest.

The capture should hold the device idling (nobody speaking to it; an hour or more is best). Its upload
to port 443 is summed per second exactly as the activation detector sums it (data packets to TCP/443
and UDP/443 outside the LAN); the proposed threshold is the quiet maximum times 1.5, rounded up to
100 B/s, so that the device's own chatter never counts as an activation.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
from rich.console import Console

from gateway.aggregators.detectors.inputs import is_upload_443
from gateway.aggregators.detectors.thresholds import paper_threshold
from gateway.commands.common import Subparsers, console
from gateway.config import Config, normalise_mac
from gateway.enrichers.devices import mac_int
from gateway.enrichers.lan import Lan
from gateway.enrichers.names import address_key
from gateway.parsers.headers import decode
from gateway.replay import check_readable
from gateway.sources.capfile import CaptureError, PacketBatch, open_capture

EXIT_OK, EXIT_BAD_INPUT = 0, 2
NS = 1_000_000_000
MARGIN = 1.5  # the proposal's headroom over the quiet maximum
ROUND_TO = 100  # bytes/s
SHORT_CAPTURE_S = 600  # below this the quiet maximum says little; an hour is better


@dataclass(frozen=True, slots=True)
class QuietUpload:
    """What a device uploaded per second over a capture."""

    seconds: int  # the capture's span, in 1-s bins
    packets_sent: int  # every packet the device sent
    active_seconds: int  # seconds with some upload to port 443
    max_bps: int
    max_at_s: int  # epoch second of the maximum
    p99_bps: int
    mean_bps: float

    @property
    def proposal(self) -> int:
        return math.ceil(self.max_bps * MARGIN / ROUND_TO) * ROUND_TO


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    cal = sub.add_parser(
        "calibrate",
        parents=[common],
        help="propose a voice assistant's activation threshold from a capture at rest",
    )
    cal.add_argument("device", metavar="DEVICE", help="the device's MAC (aa:bb:cc:dd:ee:ff) or IP address")
    cal.add_argument(
        "capture", metavar="CAPTURE", help="a pcap or pcapng of the device idling (an hour is best)"
    )
    cal.set_defaults(handler=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace, cfg: Config, err: Console) -> int:
    try:
        mac, address = _device(args.device)
    except ValueError as exc:
        err.print(str(exc), highlight=False, markup=False)
        return EXIT_BAD_INPUT
    problems = check_readable([args.capture])
    if problems:
        err.print("\n".join(problems), highlight=False, markup=False)
        return EXIT_BAD_INPUT
    try:
        quiet = measure(Path(args.capture), Lan(cfg.lan.networks), mac, address)
    except CaptureError as exc:
        err.print(str(exc), highlight=False, markup=False)
        return EXIT_BAD_INPUT
    if quiet.packets_sent == 0:
        err.print(
            f"{args.capture}: {args.device} sent no packet in this capture — check the device's address, "
            "or capture where its traffic passes",
            highlight=False,
            markup=False,
        )
        return EXIT_BAD_INPUT
    _report(args.device, args.capture, quiet, cfg, console())
    return EXIT_OK


def _device(text: str) -> tuple[int | None, tuple[int, int] | None]:
    """(MAC, None) or (None, (hi, lo) address) of the DEVICE argument; ValueError says what to write."""
    if text.count(":") == 5 or text.count("-") == 5:
        return mac_int(normalise_mac(text)), None
    try:
        ipaddress.ip_address(text.removeprefix("ip:"))
    except ValueError:
        raise ValueError(
            f"'{text}' is neither a MAC nor an IP address — "
            "give the device as aa:bb:cc:dd:ee:ff or 192.168.1.23"
        ) from None
    return None, address_key(text.removeprefix("ip:"))


def measure(capture: Path, lan: Lan, mac: int | None, address: tuple[int, int] | None) -> QuietUpload:
    """Per-second upload to port 443 of the device (by MAC, or by source address)."""
    per_second: dict[int, int] = {}
    first = last = None
    sent = 0
    for batch in open_capture(capture):
        if not len(batch):
            continue
        sec = batch.ts_ns // NS
        first = int(sec.min()) if first is None else min(first, int(sec.min()))
        last = int(sec.max()) if last is None else max(last, int(sec.max()))
        mine, up = _masks(batch, lan, mac, address)
        sent += int(np.count_nonzero(mine))
        if up.any():
            secs, inverse = np.unique(sec[up], return_inverse=True)
            sums = np.bincount(inverse, weights=batch.wirelen[up]).astype(np.int64)
            for s, v in zip(secs.tolist(), sums.tolist(), strict=True):
                per_second[s] = per_second.get(s, 0) + v
    span = 0 if first is None or last is None else last - first + 1
    values = np.zeros(max(span, 1), np.int64)
    for s, v in per_second.items():
        values[s - (first or 0)] = v
    peak = int(values.argmax())
    return QuietUpload(
        seconds=span,
        packets_sent=sent,
        active_seconds=len(per_second),
        max_bps=int(values[peak]),
        max_at_s=(first or 0) + peak,
        p99_bps=int(np.percentile(values, 99)),
        mean_bps=float(values.mean()),
    )


def _masks(
    batch: PacketBatch, lan: Lan, mac: int | None, address: tuple[int, int] | None
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """The device's packets, and among them its uploads to port 443 outside the LAN."""
    h = decode(batch)
    ok = h.is_ip & ~h.malformed & ~h.unsupported_link
    if mac is not None:
        mine = ok & h.has_mac & (h.src_mac == np.uint64(mac))
    else:
        hi, lo = address or (0, 0)
        mine = ok & (h.src_hi == np.uint64(hi)) & (h.src_lo == np.uint64(lo))
    up = mine & is_upload_443(h.proto, h.dport, h.payload_len > 0) & ~lan.is_local(h.dst_hi, h.dst_lo)
    return mine, up


def _report(device: str, capture: str, q: QuietUpload, cfg: Config, out: Console) -> None:
    try:
        label = cfg.devices.get(normalise_mac(device))
    except ValueError:
        label = None  # given by IP address
    name = f"{label.name} ({device})" if label and label.name else device
    when = datetime.fromtimestamp(q.max_at_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [
        f"{name} in {capture}: {q.seconds:,} s, {q.packets_sent:,} packets sent",
        "upload to port 443 (data packets to TCP/UDP 443 outside the LAN): "
        f"{q.active_seconds:,} seconds of {q.seconds:,} with some",
        f"  quiet maximum {q.max_bps:,} B/s at {when}; 99th percentile {q.p99_bps:,} B/s; "
        f"mean {q.mean_bps:,.0f} B/s",
    ]
    paper = paper_threshold(label.vendor or "", label.model or "") if label else None
    if paper is not None:
        lines.append(f"threshold Dubois et al. (PETS 2020) measured for this maker: {paper:,} B/s")
    if q.seconds < SHORT_CAPTURE_S:
        lines.append(
            f"note: a {q.seconds} s capture is short; the quiet maximum of an hour or a day is safer"
        )
    if q.max_bps == 0:
        lines.append("it uploaded nothing to port 443: no threshold can be learned from this capture")
        out.print("\n".join(lines), highlight=False, markup=False)
        return
    if paper is not None and q.proposal > paper:
        lines.append(
            "note: this is above the paper's threshold: was someone speaking to it, or was it streaming? "
            "A threshold this high can miss short requests"
        )
    lines += [
        f"proposed threshold: {q.proposal:,} B/s (quiet maximum x {MARGIN}, rounded up to {ROUND_TO} B/s)",
        "to use it, add to the configuration:",
        "detectors:",
        "  activation_thresholds:",
        f'    "{device.lower()}": {q.proposal}',
    ]
    out.print("\n".join(lines), highlight=False, markup=False)
