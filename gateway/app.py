"""The Gateway: one object, built from the validated configuration, that wires the stages.

sources (capture batches) -> parsers (headers) -> enrichers (LAN, devices, destinations)
-> aggregators (time bins) -> sinks (line protocol to InfluxDB or a file).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from gateway.aggregators.detectors import Detectors, DeviceRows, Event, Subject, event_lines
from gateway.aggregators.detectors.inputs import parse_tag_set
from gateway.aggregators.detectors.state import DeviceState
from gateway.aggregators.detectors.thresholds import ProfileThreshold, subject_of_identity
from gateway.aggregators.grouping import group_rows
from gateway.aggregators.series_cap import OVERFLOW_HOST, SeriesCap
from gateway.aggregators.traffic import KIND_MAC, TrafficAggregator, TrafficRows
from gateway.config import Config
from gateway.enrichers.destinations import DestinationTagger
from gateway.enrichers.devices import DeviceTracker, mac_int
from gateway.enrichers.evidence import Evidence, EvidenceCollector
from gateway.enrichers.identity import Identity, ProfileMatcher, identify
from gateway.enrichers.lan import Lan
from gateway.enrichers.macvendor import MacVendorDB
from gateway.enrichers.names import SOURCE_NONE, Namer
from gateway.enrichers.orgs import OrgDB, Party
from gateway.parsers.dhcp import parse_dhcp
from gateway.parsers.headers import IPPROTO_ICMPV6, IPPROTO_UDP, Headers, decode
from gateway.parsers.ndp import ICMPV6_ROUTER_ADVERTISEMENT, parse_router_advertisement
from gateway.sinks.inventory import DeviceRecord, Inventory
from gateway.sinks.lineproto import field_string, tag_set
from gateway.sources.capfile import PacketBatch

I64 = npt.NDArray[np.int64]
# (bin, device, name) DNS query counts held until their bin is flushed; a flood of random names
# beyond this is counted in PipelineStats.dns_overflow instead.
MAX_DNS_ROWS = 100_000
DHCP_PORTS = np.array([67, 68], dtype=np.uint16)
# A capture file may be a merge of several, slightly out of order, and a flow's name (its
# ClientHello, a QUIC Initial reassembled over datagrams) may come after its first packets: a replay
# holds each bin 30 s of capture time past its end before writing it (the live gateway, whose
# packets come in order, holds less: gateway/run.py LIVE_NAME_WAIT_S).
REPLAY_HOLD_S = 30
# Traffic series (destination tag sets) one device may open a day; the rest of its traffic is summed
# under host=other, one series per party, bytes exact. A busy phone reaches a few hundred a day; a
# device scanning the internet would otherwise add a series, and 2 KiB of memory, per address.
MAX_DESTINATIONS_PER_DEVICE = 2_000
# The same for all devices together: 10,000 devices at their cap would be 20 million series, twenty
# times InfluxDB 1.x's default max-series-per-database; 100,000 is 50 busy devices at their cap,
# and the admitted sets stay near 8 MB.
MAX_DESTINATION_SERIES = 100_000
# Distinct names one device may have in the dns measurement a day, and all devices together (the
# same reasons); further queries are counted under host=other.
MAX_DNS_NAMES_PER_DEVICE = 2_000
MAX_DNS_NAME_SERIES = 100_000
# The caps above count series opened per day of capture time, then start again: the InfluxDB index
# grows by at most a cap a day of retention, and a long-running gateway still shows new places.
SERIES_WINDOW_S = 86_400
# Distinct destinations remembered per device for the summary table (a day's series and the overflow
# ones), and for all devices together; beyond them destinations are not counted there.
MAX_SUMMARY_DESTINATIONS = MAX_DESTINATIONS_PER_DEVICE + len(Party)
MAX_SUMMARY_TOTAL = MAX_DESTINATION_SERIES
# The tags of what a device sent beyond its cap, by party (overflow keeps its party, so the
# dashboards' sums of third-party and of internet traffic stay exact).
OVERFLOW_TAGS = {
    p.value: tag_set({"host": OVERFLOW_HOST, "name_source": "none", "party": p.value}) for p in Party
}
OVERFLOW_TAG_SETS = frozenset(OVERFLOW_TAGS.values())


class EventPublisher(Protocol):
    """Where events and device states go besides InfluxDB (MQTT)."""

    def publish_events(self, events: Sequence[Event]) -> None: ...
    def publish_states(self, states: Sequence[DeviceState]) -> None: ...


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
    dns_overflow: int = 0  # DNS queries not counted: MAX_DNS_ROWS waiting for their bin
    destination_overflow: int = 0  # traffic rows (a destination in a bin) summed under host=other
    dns_name_overflow: int = 0  # DNS queries counted under host=other


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    name: str  # the device tag: a MAC, or ip:<address>
    tags: str  # ``,device=...,vendor=...`` (line protocol)
    maker: str | None  # organisation key of its maker, for first-party attribution
    identity: Identity
    version: int  # the evidence version it was built from


@dataclass(slots=True)
class DeviceTotals:
    bytes_out: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    packets_in: int = 0
    destinations: set[int] = field(default_factory=set)


class Gateway:
    def __init__(
        self,
        cfg: Config,
        sink: LineSink,
        inventory: Inventory | None = None,
        profiles: ProfileMatcher | None = None,
        thresholds: ProfileThreshold | None = None,
        mqtt: EventPublisher | None = None,
        hold_s: int = REPLAY_HOLD_S,
    ) -> None:
        """``hold_s``: how long a bin stays open once newer packets (or the clock) are past it."""
        self.cfg = cfg
        self.sink = sink
        self.inventory = inventory
        self.profiles = profiles
        self.thresholds = thresholds
        self.mqtt = mqtt
        self.evidence = EvidenceCollector()
        self.lan = Lan(cfg.lan.networks)
        self.devices = DeviceTracker(self.lan, cfg.lan.router_macs)
        self.aggregator = TrafficAggregator(cfg.aggregation.interval_s, hold_s)
        self.namer = Namer()
        self.orgs = OrgDB.load()
        self.vendors = MacVendorDB.load()
        self.destinations = DestinationTagger(self.namer.table, self.orgs)
        self.stats = PipelineStats()
        self.totals: dict[str, DeviceTotals] = {}
        self._labels = {mac_int(mac): label for mac, label in cfg.devices.items()}
        self._device_info: dict[tuple[int, int, int], DeviceInfo] = {}
        self._dns_counts: dict[tuple[int, int, int, int, str], int] = {}
        self.destination_cap = SeriesCap(MAX_DESTINATIONS_PER_DEVICE, MAX_DESTINATION_SERIES, SERIES_WINDOW_S)
        self.dns_cap = SeriesCap(MAX_DNS_NAMES_PER_DEVICE, MAX_DNS_NAME_SERIES, SERIES_WINDOW_S)
        self._summary_destinations = 0
        # Novelty remembers what it learned in the inventory's folder (none for a throwaway Gateway).
        self.detectors = Detectors(
            cfg.detectors,
            self.lan,
            self.namer.table,
            self._subject,
            learning_s=cfg.detectors.learning_s,
            state_dir=inventory.path.parent if inventory is not None else None,
        )

    def process(self, batch: PacketBatch) -> None:
        h = decode(batch)
        self._count(batch, h)
        src_lan = self._observe(batch, h)
        self._events(self.detectors.observe_packets(batch, h, src_lan))
        self.aggregator.add(batch.ts_ns, h, batch.wirelen)
        self._emit(self.aggregator.flush(namer=self.namer.table.name_rows))
        self._emit_dns(final=False)

    def observe_names(self, batch: PacketBatch) -> None:
        """Router mode: names and device evidence from ``batch``, its bytes counted nowhere.

        The narrow capture beside conntrack's counters (DNS answers, ClientHellos, QUIC Initials, HTTP,
        mDNS, DHCP) teaches names, devices and routers; ``tick`` writes the ``dns`` measurement.
        """
        self._observe(batch, decode(batch))

    def _observe(self, batch: PacketBatch, h: Headers) -> npt.NDArray[np.bool_]:
        """What every packet teaches besides its bytes; returns which sources are LAN."""
        self._router_adverts(batch, h)  # first: the prefixes it announces are LAN for this batch too
        src_lan = self.lan.is_lan(h.src_hi, h.src_lo)
        self._dhcp(batch, h)
        self.evidence.observe(batch, h, src_lan)
        self.namer.observe(batch, h)
        self.devices.observe(h, src_lan)
        return src_lan

    def process_flows(self, ts_ns: npt.NDArray[np.int64], flows: dict[str, npt.NDArray[np.generic]]) -> None:
        """Per-flow counters (router mode, conntrack) into the same bins as packets.

        ``flows`` holds the aggregator's FLOW_KEYS columns but ``bin`` (device key from the LAN side,
        remote, protocol, ports) and its VALUES (bytes and packets since the last reading, frame
        lengths). Device keys from the LAN side of a connection count as devices that send.
        """
        macs = flows["dlo"][flows["kind"] == KIND_MAC]
        self.devices.add_lan_senders(np.unique(macs).astype(np.uint64))
        self.aggregator.add_flows(ts_ns, flows)
        self._emit(self.aggregator.flush(namer=self.namer.table.name_rows))

    def tick(self, now_ns: int) -> None:
        """Live gateway, about once a second: write the bins that are complete by the clock."""
        self.aggregator.advance(now_ns)
        self._events(self.detectors.advance(now_ns))
        self._emit(self.aggregator.flush(namer=self.namer.table.name_rows))
        self._emit_dns(final=False)

    def finish(self) -> None:
        self._emit(self.aggregator.flush(final=True, namer=self.namer.table.name_rows))
        self._emit_dns(final=True)
        self._events(self.detectors.finish())
        self.update_inventory()

    def _subject(self, key: tuple[int, int, int]) -> Subject | None:
        info = self._device_tags(*key, sent=True)
        return None if info is None else self._subject_of(info)

    def _subject_of(self, info: DeviceInfo) -> Subject:
        overrides = self.cfg.detectors.activation_thresholds
        return subject_of_identity(info.name, info.identity, self.thresholds, overrides)

    def _events(self, events: list[Event]) -> None:
        """Events go to the ``event`` measurement and, when enabled, to MQTT with the device states."""
        if events:
            lines = event_lines(events)
            self.stats.lines += len(lines)
            self.sink.write(lines)
        if self.mqtt is not None:
            if events:
                self.mqtt.publish_events(events)
            self.mqtt.publish_states(self.detectors.states())

    def reload_labels(self, cfg: Config) -> None:
        """SIGHUP: the lab's labels may have changed; identities are rebuilt on the next write."""
        self._labels = {mac_int(mac): label for mac, label in cfg.devices.items()}
        self._device_info.clear()

    def self_metrics(self, now_ns: int, extra: dict[str, int]) -> None:
        """The ``mouchard`` measurement: what the gateway itself counted (packets, drops...)."""
        st = self.stats
        fields = {
            "packets": st.packets,
            "ip_packets": st.ip_packets,
            "malformed": st.malformed,
            "non_ip": st.non_ip,
            "dns_overflow": st.dns_overflow,
            "destination_overflow": st.destination_overflow,
            "dns_name_overflow": st.dns_name_overflow,
            "evidence_refused": self.evidence.stats.refused + self.evidence.stats.overflow,
            **extra,
        }
        text = ",".join(f"{k}={v}i" for k, v in fields.items())
        line = (
            f"mouchard{tag_set({'gateway': self.cfg.gateway_id})} {text} {now_ns // 1_000_000_000}000000000"
        )
        self.sink.write([line])

    def identities(self) -> dict[str, Identity]:
        """The devices seen so far, by device tag."""
        return {info.name: info.identity for info in self._device_info.values()}

    def update_inventory(self) -> list[str]:
        """Store the devices seen, write the ``device`` measurement and ``new_device`` events."""
        records = []
        for key, info in self._device_info.items():
            ev = self.evidence.get(key)
            ident = info.identity
            first, last = (ev.first_seen, ev.last_seen) if ev and ev.first_seen else (0, 0)
            records.append(
                DeviceRecord(
                    info.name,
                    ident.name,
                    ident.kind,
                    ident.vendor,
                    ident.model,
                    ident.profile,
                    ident.ip,
                    ident.services,
                    first,
                    last,
                )
            )
        new = self.inventory.upsert(records) if self.inventory is not None else []
        lines = [_device_line(r) for r in records]
        by_id = {r.id: r for r in records}
        lines += [_new_device_line(by_id[d]) for d in new]
        if lines:
            self.stats.lines += len(lines)
            self.sink.write(lines)
        return new

    def encrypted_dns_devices(self) -> set[str]:
        """Devices seen resolving on their own (DNS over TLS, or HTTPS to a public resolver)."""
        return {self.devices.key_text(*key) for key in self.namer.table.encrypted_dns}

    def _emit_dns(self, final: bool) -> None:
        """The ``dns`` measurement: queries per device and name, in the same bins as traffic."""
        interval = self.aggregator.interval_s
        counts = self._dns_counts
        cap = self.dns_cap
        for ts, kind, hi, lo, qname in self.namer.take_queries():
            self.evidence.add_domain((kind, hi, lo), qname)
            cap.start(ts)
            host = qname
            if not cap.admit((kind, hi, lo), hash(qname)):
                host = OVERFLOW_HOST
                self.stats.dns_name_overflow += 1
            key = (ts // interval * interval, kind, hi, lo, host)
            if key in counts or len(counts) < MAX_DNS_ROWS:
                counts[key] = counts.get(key, 0) + 1
            else:
                self.stats.dns_overflow += 1
        cutoff = None if final else self.aggregator.floor * interval
        ready = [k for k in counts if cutoff is None or k[0] < cutoff]
        lines = []
        for key in ready:
            start, kind, hi, lo, qname = key
            info = self._device_tags(kind, hi, lo, sent=True)
            n = counts.pop(key)
            if info is None:
                continue
            if qname == OVERFLOW_HOST:
                tags = tag_set({"host": OVERFLOW_HOST})
            else:
                attr = self.orgs.attribute(qname, info.maker)
                tags = tag_set({"host": qname, "domain": attr.domain or "", "org": attr.org or ""})
            lines.append(f"dns{info.tags}{tags} queries={n}i {start}000000000")
        if lines:
            self.stats.lines += len(lines)
            self.sink.write(lines)

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
            else:
                self.devices.add_router_addr(int(h.src_hi[i]), int(h.src_lo[i]))

    def _dhcp(self, batch: PacketBatch, h: Headers) -> None:
        """DHCP answers name the router (option 3): the MAC that sends from that address is one."""
        dhcp = (
            h.is_ip
            & ~h.malformed
            & (h.proto == IPPROTO_UDP)
            & (h.payload_len > 0)
            & np.isin(h.sport, DHCP_PORTS)
            & np.isin(h.dport, DHCP_PORTS)
        )
        for i in np.flatnonzero(dhcp).tolist():
            start = int(h.payload[i] - batch.offset[i])
            msg = parse_dhcp(batch.payload(i, start, start + int(h.payload_len[i])))
            if msg is not None:
                for router in msg.routers:
                    self.devices.add_router_ip(router)

    def _device_tags(self, kind: int, hi: int, lo: int, sent: bool) -> DeviceInfo | None:
        """Tags and maker of a device key, or None when this key is not a device (now)."""
        if kind == KIND_MAC:
            if not self.devices.is_device_mac(lo):
                return None
        elif not self.devices.is_device_ip(hi, lo, sent):
            return None
        key = (kind, hi, lo)
        info = self._device_info.get(key)
        ev = self.evidence.get(key)
        version = ev.version if ev is not None else -1
        if info is None or info.version != version:
            info = self._device_info[key] = self._identify(key, ev, version)
        return info

    def _identify(self, key: tuple[int, int, int], ev: Evidence | None, version: int) -> DeviceInfo:
        """Label, mDNS/DHCP evidence, profile and MAC vendor, strongest first (see enrichers/identity)."""
        kind, hi, lo = key
        name = self.devices.key_text(kind, hi, lo)
        label = self._labels.get(lo) if kind == KIND_MAC else None
        mac_vendor = self.vendors.lookup(name) if kind == KIND_MAC else None
        ident = identify(name, label, ev, mac_vendor, self.profiles, self.orgs.maker_key)
        tags = {"device": name, "device_name": ident.name, "kind": ident.kind, "vendor": ident.vendor}
        return DeviceInfo(name, tag_set(tags), ident.maker, ident, version)

    def _emit(self, rows: TrafficRows | None) -> None:
        """Write flushed rows of devices as line protocol; rows of non-devices are dropped here."""
        if rows is None or not len(rows):
            return
        first, inverse = group_rows([rows.kind, rows.dhi, rows.dlo])
        sent = np.bincount(inverse, weights=rows.packets_out, minlength=len(first)) > 0
        keys = zip(rows.kind[first].tolist(), rows.dhi[first].tolist(), rows.dlo[first].tolist(), strict=True)
        found = [self._device_tags(k, h, lo, s) for (k, h, lo), s in zip(keys, sent.tolist(), strict=True)]
        is_dev = np.array([t is not None for t in found], dtype=np.bool_)
        if not is_dev.all():
            keep = is_dev[inverse]
            rows = rows.select(keep)
            inverse = (np.cumsum(is_dev) - 1)[inverse[keep]]
        infos = [t for t in found if t is not None]
        devs = [t.tags for t in infos]
        if not len(rows):
            return
        # Destination tags depend on the device: a company is first party relative to the device's maker.
        r_first, r_inverse = group_rows([inverse, rows.rhi, rows.rlo, rows.name_id, rows.source])
        local = self.lan.is_local(rows.rhi[r_first], rows.rlo[r_first])
        self.destination_cap.start(int(rows.bin_s.max()))
        # Destinations are admitted under the cap in the order of their first bin (then any order).
        first_bin = np.full(len(r_first), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first_bin, r_inverse, rows.bin_s)
        order = np.argsort(first_bin, kind="stable")
        at = r_first[order]
        dest_tags = [""] * len(r_first)
        for g, d, h, lo, loc, name, source in zip(
            order.tolist(),
            inverse[at].tolist(),
            rows.rhi[at].tolist(),
            rows.rlo[at].tolist(),
            local[order].tolist(),
            rows.name_id[at].tolist(),
            rows.source[at].tolist(),
            strict=True,
        ):
            dest_tags[g] = self._destination_tags(infos[d], h, lo, loc, name, source)
        folded = np.array([t in OVERFLOW_TAG_SETS for t in dest_tags], dtype=np.bool_)
        if folded.any():
            self.stats.destination_overflow += int(np.count_nonzero(folded[r_inverse]))
        tag_ids: dict[str, int] = {}
        dest_id = np.array([tag_ids.setdefault(t, len(tag_ids)) for t in dest_tags], dtype=np.int64)
        if len(tag_ids) < len(dest_tags):
            # Several addresses share one tag set (one host name, many servers): InfluxDB keeps one
            # point per series and time, so their rows are summed into one, never overwritten.
            rows, inverse, r_inverse = _merge_same_series(rows, inverse, dest_id[r_inverse])
            dest_tags = list(tag_ids)
        subjects = [self._subject_of(i) for i in infos]
        self._events(
            self.detectors.observe_rows(
                DeviceRows.from_tags(
                    rows.bin_s,
                    inverse,
                    r_inverse,
                    rows.bytes_out,
                    rows.bytes_in,
                    subjects,
                    dest_tags,
                    self.aggregator.interval_s,
                )
            )
        )
        lines = [
            f"traffic{devs[d]}{dest_tags[r]} bytes_out={bo}i,bytes_in={bi}i,packets_out={po}i,"
            f"packets_in={pi}i,flows={fl}i {b}000000000"
            for d, r, bo, bi, po, pi, fl, b in zip(
                inverse.tolist(),
                r_inverse.tolist(),
                rows.bytes_out.tolist(),
                rows.bytes_in.tolist(),
                rows.packets_out.tolist(),
                rows.packets_in.tolist(),
                rows.flows.tolist(),
                rows.bin_s.tolist(),
                strict=True,
            )
        ]
        names = [t.name for t in infos]
        self._add_totals(rows, inverse, names, [hash(t) for t in dest_tags], r_inverse)
        self.stats.lines += len(lines)
        self.sink.write(lines)

    def _destination_tags(
        self, info: DeviceInfo, hi: int, lo: int, local: bool, name_id: int, source: int
    ) -> str:
        """The destination's tag set, or its party's overflow tags once the device has its series.

        An unnamed destination's tags follow from its address alone, so an address beyond the cap is
        folded without computing (and caching) its tags: a scan costs no memory per address.
        """
        cap = self.destination_cap
        if source == SOURCE_NONE or name_id == 0:
            if cap.admit(info.name, hash((hi, lo))):
                return self.destinations.tag_text(hi, lo, local, name_id, source, info.maker)
            return OVERFLOW_TAGS[Party.LOCAL if local else Party.THIRD]
        text = self.destinations.tag_text(hi, lo, local, name_id, source, info.maker)
        if cap.admit(info.name, hash(text)):
            return text
        return OVERFLOW_TAGS[parse_tag_set(text).get("party", Party.THIRD)]

    def _add_totals(
        self, rows: TrafficRows, device: I64, names: list[str], dests: list[int], dest: I64
    ) -> None:
        """The replay table: per device sums, and distinct destinations (by their tags)."""
        groups = len(names)
        sums = [
            np.bincount(device, weights=v, minlength=groups).astype(np.int64).tolist()
            for v in (rows.bytes_out, rows.bytes_in, rows.packets_out, rows.packets_in)
        ]
        dest_of_row = np.asarray(dests, dtype=np.int64)[dest]
        order = np.argsort(device, kind="stable")
        bounds = np.searchsorted(device[order], np.arange(groups + 1)).tolist()
        dest_sorted = dest_of_row[order]
        for g, name in enumerate(names):
            t = self.totals.get(name)
            if t is None:
                t = self.totals[name] = DeviceTotals()
            t.bytes_out += sums[0][g]
            t.bytes_in += sums[1][g]
            t.packets_out += sums[2][g]
            t.packets_in += sums[3][g]
            room = min(
                MAX_SUMMARY_DESTINATIONS - len(t.destinations), MAX_SUMMARY_TOTAL - self._summary_destinations
            )
            if room > 0:
                before = len(t.destinations)
                t.destinations.update(dest_sorted[bounds[g] : bounds[g + 1]].tolist()[:room])
                self._summary_destinations += len(t.destinations) - before


def _merge_same_series(
    rows: TrafficRows, device: npt.NDArray[np.int64], dest: npt.NDArray[np.int64]
) -> tuple[TrafficRows, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Sum rows with the same (bin, device, destination tags); flows of distinct servers add up."""
    first, inverse = group_rows([rows.bin_s, device, dest])
    merged = rows.take(first)
    for name in ("bytes_out", "bytes_in", "packets_out", "packets_in", "flows"):
        summed = np.bincount(inverse, weights=getattr(rows, name), minlength=len(first))
        setattr(merged, name, summed.astype(np.int64))
    return merged, device[first], dest[first]


def _device_line(r: DeviceRecord) -> str:
    fields = ",".join(
        [
            *(
                f"{k}={field_string(v)}"
                for k, v in (("name", r.name), ("kind", r.kind), ("vendor", r.vendor))
            ),
            *(f"{k}={field_string(v)}" for k, v in (("model", r.model), ("ip", r.ip))),
            f"services={field_string(','.join(r.services))}",
            f"first_seen={r.first_seen}i,last_seen={r.last_seen}i",
        ]
    )
    return f"device{tag_set({'device': r.id})} {fields} {r.last_seen}000000000"


def _new_device_line(r: DeviceRecord) -> str:
    what = " ".join(x for x in (r.vendor, r.model or r.kind) if x) or "unknown maker"
    text = f"New device: {r.name or r.id} ({what})"
    tags = tag_set({"device": r.id, "type": "new_device"})
    return f'event{tags} text={field_string(text)},host="",bytes=0i {r.first_seen}000000000'
