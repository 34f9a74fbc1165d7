"""The Gateway: one object, built from the validated configuration, that wires the stages.

sources (capture batches) -> parsers (headers) -> enrichers (LAN, devices, destinations)
-> aggregators (time bins) -> sinks (line protocol to InfluxDB or a file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from gateway.aggregators.traffic import KIND_MAC, TrafficAggregator, TrafficRows
from gateway.config import Config
from gateway.enrichers.destinations import DestinationTagger
from gateway.enrichers.devices import DeviceTracker, mac_int
from gateway.enrichers.lan import Lan
from gateway.parsers.headers import IPPROTO_ICMPV6, Headers, decode
from gateway.parsers.ndp import ICMPV6_ROUTER_ADVERTISEMENT, parse_router_advertisement
from gateway.sinks.lineproto import tag_set
from gateway.sources.capfile import PacketBatch

# Distinct destinations remembered per device for the summary table; beyond it the table says "≥".
MAX_SUMMARY_DESTINATIONS = 100_000
# (device, remote) pairs whose tag string is cached between flushes.
MAX_TAG_CACHE = 200_000


class LineSink(Protocol):
    def write(self, lines: list[str]) -> None: ...
    def close(self) -> None: ...
    def describe(self) -> str: ...


@dataclass(slots=True)
class PipelineStats:
    packets: int = 0
    ip_packets: int = 0
    bytes: int = 0
    non_ip: int = 0
    malformed: int = 0
    fragments: int = 0
    unsupported_link: int = 0
    lines: int = 0


@dataclass(slots=True)
class DeviceTotals:
    bytes_out: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    packets_in: int = 0
    destinations: set[tuple[int, int]] = field(default_factory=set)


class Gateway:
    def __init__(self, cfg: Config, sink: LineSink) -> None:
        self.cfg = cfg
        self.sink = sink
        self.lan = Lan(cfg.lan.networks)
        self.devices = DeviceTracker(self.lan, cfg.lan.router_macs)
        self.aggregator = TrafficAggregator(cfg.aggregation.interval_s)
        self.destinations = DestinationTagger()
        self.stats = PipelineStats()
        self.totals: dict[str, DeviceTotals] = {}
        self._labels = {mac_int(mac): label for mac, label in cfg.devices.items()}
        self._prefixes: dict[tuple[int, int, int, int, int], str] = {}

    def process(self, batch: PacketBatch) -> None:
        h = decode(batch)
        self._count(batch, h)
        src_lan = self.lan.is_lan(h.src_hi, h.src_lo)
        dst_lan = self.lan.is_lan(h.dst_hi, h.dst_lo)
        self._router_adverts(batch, h)
        self.devices.observe(h, src_lan)
        self.aggregator.add(batch.ts_ns, h, batch.wirelen, src_lan, dst_lan)
        self._emit(self.aggregator.flush())

    def finish(self) -> None:
        self._emit(self.aggregator.flush(final=True))

    def _count(self, batch: PacketBatch, h: Headers) -> None:
        st = self.stats
        st.packets += len(batch)
        st.bytes += int(batch.wirelen.sum())
        st.ip_packets += int(np.count_nonzero(h.is_ip & ~h.unsupported_link))
        st.non_ip += int(np.count_nonzero(~h.is_ip))
        st.malformed += int(np.count_nonzero(h.malformed))
        st.fragments += int(np.count_nonzero(h.fragment))
        st.unsupported_link += int(np.count_nonzero(h.unsupported_link))

    def _router_adverts(self, batch: PacketBatch, h: Headers) -> None:
        icmp6 = h.is_ip & ~h.malformed & (h.proto == IPPROTO_ICMPV6)
        if not icmp6.any():
            return
        idx = np.flatnonzero(icmp6)
        ra = idx[batch.buf[h.l4[idx]] == ICMPV6_ROUTER_ADVERTISEMENT]
        for i in ra.tolist():
            start = int(h.l4[i] - batch.offset[i])
            advert = parse_router_advertisement(batch.payload(i, start, start + 1500))
            if advert is None:
                continue
            for prefix in advert.prefixes:
                self.lan.add_announced(prefix)
            if h.has_mac[i]:
                self.devices.add_router(int(h.src_mac[i]))

    def _device_tags(self, kind: int, hi: int, lo: int) -> dict[str, str] | None:
        """The device part of the tag set, or None when this key is not a device."""
        if kind == KIND_MAC:
            if not self.devices.is_device_mac(lo):
                return None
        elif not self.devices.is_device_ip(hi, lo):
            return None
        tags = {"device": self.devices.key_text(kind, hi, lo)}
        label = self._labels.get(lo) if kind == KIND_MAC else None
        if label is not None:
            tags.update(device_name=label.name or "", kind=label.kind or "", vendor=label.vendor or "")
        return tags

    def _emit(self, rows: TrafficRows | None) -> None:
        if rows is None or not len(rows):
            return
        local = self.lan.is_local(rows.rhi, rows.rlo).tolist()
        devices: dict[tuple[int, int, int], dict[str, str] | None] = {}
        prefixes = self._prefixes
        if len(prefixes) > MAX_TAG_CACHE:
            prefixes.clear()
        lines: list[str] = []
        cols = (
            rows.bin_s,
            rows.kind,
            rows.dhi,
            rows.dlo,
            rows.rhi,
            rows.rlo,
            rows.bytes_out,
            rows.bytes_in,
            rows.packets_out,
            rows.packets_in,
            rows.flows,
        )
        for i, (b, k, dh, dl, rh, rl, bo, bi, po, pi, fl) in enumerate(
            zip(*(c.tolist() for c in cols), strict=True)
        ):
            dkey = (k, dh, dl)
            if dkey not in devices:
                devices[dkey] = self._device_tags(k, dh, dl)
            dev = devices[dkey]
            if dev is None:
                continue
            key = (k, dh, dl, rh, rl)
            pre = prefixes.get(key)
            if pre is None:
                pre = "traffic" + tag_set({**dev, **self.destinations.tags(rh, rl, local[i])})
                prefixes[key] = pre
            lines.append(
                f"{pre} bytes_out={bo}i,bytes_in={bi}i,packets_out={po}i,packets_in={pi}i,"
                f"flows={fl}i {b}000000000"
            )
            self._add_totals(dev["device"], rh, rl, bo, bi, po, pi)
        self.stats.lines += len(lines)
        self.sink.write(lines)

    def _add_totals(self, device: str, rh: int, rl: int, bo: int, bi: int, po: int, pi: int) -> None:
        t = self.totals.get(device)
        if t is None:
            t = self.totals[device] = DeviceTotals()
        t.bytes_out += bo
        t.bytes_in += bi
        t.packets_out += po
        t.packets_in += pi
        if len(t.destinations) < MAX_SUMMARY_DESTINATIONS:
            t.destinations.add((rh, rl))
