"""What the detectors read: a batch's packets sent by devices to the outside, and flushed traffic rows.

Both are built by the Gateway from what it already has (decoded headers, the LAN, device identities,
the destination tags of a flush); the detectors never see a packet's bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from gateway.aggregators.grouping import group_rows
from gateway.aggregators.traffic import KIND_IP, KIND_MAC
from gateway.enrichers.devices import is_unicast_mac
from gateway.enrichers.lan import Lan, address_text
from gateway.enrichers.names import NameTable
from gateway.parsers.headers import IPPROTO_TCP, IPPROTO_UDP, Headers
from gateway.sources.capfile import PacketBatch

B = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
DeviceKey = tuple[int, int, int]  # (kind, hi, lo) as in traffic rows
FlowKey = tuple[int, int, int, int, int, int, int, int]  # device key, remote hi/lo, proto, ports
HostsOf = Callable[[Sequence[FlowKey]], list[str]]  # the host name of each flow
PacketHostsOf = Callable[["SentPackets", "I64"], list[str]]  # the host name of some sent packets


@dataclass(frozen=True, slots=True)
class Subject:
    """A device as the detectors and its MQTT state see it."""

    device: str  # the device tag (MAC or ip:<address>)
    name: str  # what people call it
    kind: str
    vendor: str = ""
    model: str = ""
    ip: str = ""
    threshold_bps: int | None = None  # upload bytes/s above which a second is an activation's

    @property
    def label(self) -> str:
        return self.name or self.device


SubjectOf = Callable[[DeviceKey], "Subject | None"]


@dataclass(frozen=True, slots=True)
class SentPackets:
    """Packets of one batch that devices sent outside the LAN; arrays are aligned, one per packet."""

    ts_ns: I64
    device: I64  # index into ``subjects``
    subjects: tuple[Subject, ...]
    kind: npt.NDArray[np.uint8]
    dhi: U64
    dlo: U64
    rhi: U64
    rlo: U64
    proto: npt.NDArray[np.uint8]
    lport: npt.NDArray[np.uint16]
    rport: npt.NDArray[np.uint16]
    nbytes: I64  # frame length on the wire
    data: B  # carries transport payload (a pure TCP ACK does not)

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])

    def select(self, mask: B) -> SentPackets:
        cols = {f: getattr(self, f) for f in self.__slots__ if f != "subjects"}
        return SentPackets(subjects=self.subjects, **{k: v[mask] for k, v in cols.items()})

    def flow(self, i: int) -> FlowKey:
        return (
            int(self.kind[i]),
            int(self.dhi[i]),
            int(self.dlo[i]),
            int(self.rhi[i]),
            int(self.rlo[i]),
            int(self.proto[i]),
            int(self.lport[i]),
            int(self.rport[i]),
        )

    def uploads_443(self) -> B:
        return is_upload_443(self.proto, self.rport, self.data)


def is_upload_443(proto: npt.NDArray[np.uint8], dport: npt.NDArray[np.uint16], data: B) -> B:
    """Data packets to TCP/443 or UDP/443 (HTTPS, QUIC): where a speaker sends what it heard.

    Pure ACKs (no payload) are not uploads: a download makes the device send a stream of them.
    """
    web = (proto == IPPROTO_TCP) | (proto == IPPROTO_UDP)
    found: B = data & web & (dport == 443)
    return found


def sent_outside(
    batch: PacketBatch, h: Headers, src_lan: B, lan: Lan, subject_of: SubjectOf
) -> SentPackets | None:
    """The packets of ``batch`` that a device sent to an address outside the LAN, or None.

    The sender is the source MAC (or, without a link layer, the LAN source address), the same key
    as the traffic aggregator's; ``subject_of`` says whether that key is a device now.
    """
    counted = h.is_ip & ~h.malformed & ~h.unsupported_link
    by_mac = h.has_mac & is_unicast_mac(h.src_mac)
    sel = counted & (by_mac | (~h.has_mac & src_lan))
    if not sel.any():
        return None
    sel &= ~lan.is_local(h.dst_hi, h.dst_lo)
    idx = np.flatnonzero(sel)
    if not len(idx):
        return None
    mac = h.has_mac[idx]
    kind = np.where(mac, KIND_MAC, KIND_IP).astype(np.uint8)
    dhi = np.where(mac, np.uint64(0), h.src_hi[idx]).astype(np.uint64)
    dlo = np.where(mac, h.src_mac[idx], h.src_lo[idx]).astype(np.uint64)
    first, inverse = group_rows([kind, dhi, dlo])
    found = [subject_of((int(kind[f]), int(dhi[f]), int(dlo[f]))) for f in first.tolist()]
    keep_group = np.array([s is not None for s in found], dtype=np.bool_)
    if not keep_group.any():
        return None
    subjects = tuple(s for s in found if s is not None)
    renumber = np.cumsum(keep_group) - 1
    keep = keep_group[inverse]
    idx, inverse = idx[keep], inverse[keep]
    return SentPackets(
        ts_ns=batch.ts_ns[idx],
        device=renumber[inverse].astype(np.int64),
        subjects=subjects,
        kind=kind[keep],
        dhi=dhi[keep],
        dlo=dlo[keep],
        rhi=h.dst_hi[idx],
        rlo=h.dst_lo[idx],
        proto=h.proto[idx],
        lport=h.sport[idx],
        rport=h.dport[idx],
        nbytes=batch.wirelen[idx],
        data=h.payload_len[idx] > 0,
    )


_FLOW_COLUMNS = ("kind", "dhi", "dlo", "rhi", "rlo", "proto", "lport", "rport")


def flow_hosts(names: NameTable, flows: Sequence[FlowKey]) -> list[str]:
    """The host name of each flow as the traffic measurement names it, else its remote address."""
    if not flows:
        return []
    table = np.array(flows, dtype=np.uint64).reshape(len(flows), len(_FLOW_COLUMNS))
    return _hosts(names, {c: table[:, k] for k, c in enumerate(_FLOW_COLUMNS)})


def packet_hosts(names: NameTable, sent: SentPackets, at: I64) -> list[str]:
    """``flow_hosts`` of the packets ``sent[at]``, straight from its columns (no tuple per packet)."""
    if not len(at):
        return []
    return _hosts(names, {c: getattr(sent, c)[at] for c in _FLOW_COLUMNS})


def _hosts(names: NameTable, flows: dict[str, npt.NDArray[np.generic]]) -> list[str]:
    """The name of each flow row (``_FLOW_COLUMNS``), else its remote address, each written once."""
    ids, _ = names.name_rows(flows)
    known = names.names
    hosts = [known[i] for i in ids.tolist()]
    unnamed = np.flatnonzero(ids == 0)
    texts: dict[tuple[int, int], str] = {}
    for k, hi, lo in zip(
        unnamed.tolist(), flows["rhi"][unnamed].tolist(), flows["rlo"][unnamed].tolist(), strict=True
    ):
        text = texts.get((hi, lo))
        if text is None:
            text = texts[hi, lo] = address_text(hi, lo)
        hosts[k] = text
    return hosts


# ---------------------------------------------------------------- flushed rows


@dataclass(frozen=True, slots=True)
class Destination:
    host: str  # name, or the address when unnamed
    country: str  # where the server's address is registered (ISO 3166 alpha-2), "" if unknown
    local: bool  # the LAN, or multicast: traffic that stays home


@dataclass(frozen=True, slots=True)
class DeviceRows:
    """Flushed traffic of devices: one row per (bin, device, destination)."""

    bin_s: I64  # bin start, epoch seconds
    device: I64  # index into ``subjects``
    dest: I64  # index into ``destinations``
    bytes_out: I64
    bytes_in: I64
    subjects: tuple[Subject, ...]
    destinations: tuple[Destination, ...]
    interval_s: int

    def __len__(self) -> int:
        return int(self.bin_s.shape[0])

    @classmethod
    def from_tags(
        cls,
        bin_s: I64,
        device: I64,
        dest: I64,
        bytes_out: I64,
        bytes_in: I64,
        subjects: Sequence[Subject],
        dest_tags: Sequence[str],
        interval_s: int,
    ) -> DeviceRows:
        """Rows whose destinations are given as the tag sets the Gateway wrote (``,host=...``)."""
        return cls(
            bin_s.astype(np.int64),
            device.astype(np.int64),
            dest.astype(np.int64),
            bytes_out.astype(np.int64),
            bytes_in.astype(np.int64),
            tuple(subjects),
            tuple(destination_from_tags(t) for t in dest_tags),
            interval_s,
        )


# Tag sets parsed once: a lab has a few hundred destinations; a scan's many more only cost re-parsing.
_PARSED_TAG_SETS = 4096


@lru_cache(maxsize=_PARSED_TAG_SETS)
def destination_from_tags(text: str) -> Destination:
    """The destination a tag set (``,country=US,host=...,party=first``) describes."""
    tags = parse_tag_set(text)
    return Destination(tags.get("host", ""), tags.get("country", ""), tags.get("party") == "local")


def parse_tag_set(text: str) -> dict[str, str]:
    """The tags of a ``,k=v,k2=v2`` tag set, as `gateway.sinks.lineproto.tag_set` escapes them."""
    if "\\" not in text:  # nothing escaped: plain splits
        return dict(item.split("=", 1) for item in text.split(",") if "=" in item)
    tags = {}
    for item in _split(text, ","):
        parts = _split(item, "=", 1)
        if len(parts) == 2:
            tags[_unescape(parts[0])] = _unescape(parts[1])
    return tags


def _split(text: str, sep: str, maxsplit: int = -1) -> list[str]:
    """``text`` cut at each ``sep`` not preceded by a backslash escape (escapes kept)."""
    parts, start, i = [], 0, 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == sep and maxsplit != 0:
            parts.append(text[start:i])
            start, maxsplit = i + 1, maxsplit - 1
        i += 1
    parts.append(text[start:])
    return [p for p in parts if p] if sep == "," else parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)
