"""Per time bin, per device and remote address: bytes, packets and flows, in both directions.

Every IP packet yields up to two records: one for the MAC (or LAN address) that sent it, with the
destination as remote (``out``), and one for the unicast MAC (or LAN address) that received it, with
the source as remote (``in``). Which of these keys are devices is decided when a bin is flushed, so
a device's first received frames are not lost before it has been seen sending. Records are reduced
per batch to one row per flow, and per bin to one row per (device, remote) with ``flows`` the number
of distinct transport flows (protocol and ports) active in the bin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gateway.aggregators.grouping import group_sum
from gateway.enrichers.devices import is_unicast_mac
from gateway.parsers.headers import Headers

B = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
Array = npt.NDArray[np.generic]

KIND_MAC, KIND_IP = 1, 2
# Gives each flow row (columns FLOW_KEYS) a name id and a name-source code.
Namer = Callable[[dict[str, Array]], tuple[I64, I64]]
FLOW_KEYS = ("bin", "kind", "dhi", "dlo", "rhi", "rlo", "proto", "lport", "rport")
DEST_KEYS = FLOW_KEYS[:6]
VALUES = ("bytes_out", "bytes_in", "packets_out", "packets_in")
# Keep this many pending per-batch partials before merging them: merging costs a sort, and the
# partials of a busy bin would otherwise grow with the number of batches.
MAX_PARTIALS = 32


@dataclass(slots=True)
class TrafficRows:
    """Flushed rows: one per (bin, device key, remote); ``bin`` is the bin's start in seconds."""

    bin_s: I64
    kind: npt.NDArray[np.uint8]
    dhi: npt.NDArray[np.uint64]
    dlo: npt.NDArray[np.uint64]
    rhi: npt.NDArray[np.uint64]
    rlo: npt.NDArray[np.uint64]
    bytes_out: I64
    bytes_in: I64
    packets_out: I64
    packets_in: I64
    flows: I64
    name_id: I64  # 0: unnamed (the address is the host); else an id of the caller's name table
    source: I64  # how the name was found, as the caller's code

    def __len__(self) -> int:
        return int(self.bin_s.shape[0])

    def select(self, mask: B) -> TrafficRows:
        return TrafficRows(*(getattr(self, f)[mask] for f in self.__slots__))

    def take(self, index: I64) -> TrafficRows:
        return TrafficRows(*(getattr(self, f)[index] for f in self.__slots__))


class TrafficAggregator:
    """Sums records into bins of ``interval_s`` seconds of capture time."""

    def __init__(self, interval_s: int, lag_s: int = 30) -> None:
        self.interval_ns = interval_s * 1_000_000_000
        self.interval_s = interval_s
        # Bins stay open this long after newer packets arrive, for slightly reordered captures.
        self.lag_bins = max(1, -(-lag_s // interval_s))
        self.partials: dict[int, list[dict[str, Array]]] = {}  # per bin, reduced per batch
        self.watermark = -(1 << 62)
        self.floor = -(1 << 62)  # bins below this were flushed: late packets join the oldest open bin
        self.late_packets = 0

    def add(self, ts_ns: I64, h: Headers, wirelen: I64) -> None:
        counted = h.is_ip & ~h.unsupported_link
        bins = ts_ns // self.interval_ns
        late = bins < self.floor
        if late.any():
            self.late_packets += int(np.count_nonzero(late & counted))
            bins = np.maximum(bins, self.floor)
        by_mac = counted & h.has_mac
        by_ip = counted & ~h.has_mac & ~h.malformed
        # Without a link layer every address gets its records: which are LAN devices is decided at
        # flush time, when prefixes announced later in the capture are known.
        send = (by_mac & is_unicast_mac(h.src_mac)) | by_ip
        recv = (by_mac & is_unicast_mac(h.dst_mac)) | by_ip
        s, r = np.flatnonzero(send), np.flatnonzero(recv)
        if len(s) + len(r) == 0:
            return
        kind = np.where(h.has_mac, KIND_MAC, KIND_IP).astype(np.uint8)
        zeros = np.zeros(len(s) + len(r), np.uint64)
        length = wirelen
        cols: dict[str, Array] = {
            "bin": np.concatenate([bins[s], bins[r]]),
            "kind": np.concatenate([kind[s], kind[r]]),
            "dhi": np.where(
                np.concatenate([h.has_mac[s], h.has_mac[r]]),
                zeros,
                np.concatenate([h.src_hi[s], h.dst_hi[r]]),
            ),
            "dlo": np.where(
                np.concatenate([h.has_mac[s], h.has_mac[r]]),
                np.concatenate([h.src_mac[s], h.dst_mac[r]]),
                np.concatenate([h.src_lo[s], h.dst_lo[r]]),
            ),
            "rhi": np.concatenate([h.dst_hi[s], h.src_hi[r]]),
            "rlo": np.concatenate([h.dst_lo[s], h.src_lo[r]]),
            "proto": np.concatenate([h.proto[s], h.proto[r]]),
            "lport": np.concatenate([h.sport[s], h.dport[r]]),
            "rport": np.concatenate([h.dport[s], h.sport[r]]),
        }
        ns, nr = len(s), len(r)
        values = {
            "bytes_out": np.concatenate([length[s], np.zeros(nr, np.int64)]),
            "bytes_in": np.concatenate([np.zeros(ns, np.int64), length[r]]),
            "packets_out": np.concatenate([np.ones(ns, np.int64), np.zeros(nr, np.int64)]),
            "packets_in": np.concatenate([np.zeros(ns, np.int64), np.ones(nr, np.int64)]),
        }
        self._add_reduced(_reduce(cols, values), bins)

    def add_flows(self, ts_ns: I64, flows: dict[str, Array]) -> None:
        """Counters that come per flow instead of per packet (conntrack): columns of FLOW_KEYS but
        ``bin``, and VALUES, one row per flow and time (the bytes since the previous reading)."""
        bins = np.maximum(ts_ns // self.interval_ns, self.floor)
        cols = {k: flows[k] for k in FLOW_KEYS if k != "bin"} | {"bin": bins}
        self._add_reduced(_reduce(cols, {v: flows[v].astype(np.int64) for v in VALUES}), bins)

    def _add_reduced(self, reduced: dict[str, Array], bins: I64) -> None:
        if not len(bins):
            return
        low, high = int(bins.min()), int(bins.max())
        for b in range(low, high + 1) if high - low < 4 else np.unique(reduced["bin"]).tolist():
            part = reduced if low == high else _select(reduced, reduced["bin"] == b)
            if not len(part["bin"]):
                continue
            pending = self.partials.setdefault(b, [])
            pending.append(part)
            if len(pending) > MAX_PARTIALS:
                self.partials[b] = [_merge(pending)]
        self.watermark = max(self.watermark, high)

    def advance(self, now_ns: int) -> None:
        """Live capture: time passes even without packets, so bins of an idle lab get written too."""
        self.watermark = max(self.watermark, now_ns // self.interval_ns)

    def flush(self, final: bool = False, namer: Namer | None = None) -> TrafficRows | None:
        """Rows of every bin old enough to be complete (all bins when ``final``).

        ``namer`` gives each flow row a name id and a source code; rows are then summed per
        (bin, device, remote, name), with ``flows`` the number of flows in each.
        """
        cutoff = self.watermark + 1 if final else self.watermark - self.lag_bins + 1
        ready = [b for b in self.partials if b < cutoff]
        if not ready:
            return None
        self.floor = max(self.floor, cutoff)
        done = _merge([p for b in sorted(ready) for p in self.partials.pop(b)])
        values = [done[v].astype(np.int64) for v in VALUES]
        if namer is None:
            name_id = source = np.zeros(len(done["bin"]), np.int64)
        else:
            name_id, source = namer(done)
        keys, sums, flows = group_sum([*(done[k] for k in DEST_KEYS), name_id, source], values)
        return TrafficRows(
            bin_s=keys[0].astype(np.int64) * self.interval_s,
            kind=keys[1].astype(np.uint8),
            dhi=keys[2].astype(np.uint64),
            dlo=keys[3].astype(np.uint64),
            rhi=keys[4].astype(np.uint64),
            rlo=keys[5].astype(np.uint64),
            bytes_out=sums[0],
            bytes_in=sums[1],
            packets_out=sums[2],
            packets_in=sums[3],
            flows=flows,
            name_id=keys[6].astype(np.int64),
            source=keys[7].astype(np.int64),
        )


def _select(cols: dict[str, Array], mask: B) -> dict[str, Array]:
    return {k: v[mask] for k, v in cols.items()}


def _reduce(cols: dict[str, Array], values: dict[str, I64]) -> dict[str, Array]:
    keys, sums, _ = group_sum([cols[k] for k in FLOW_KEYS], [values[v] for v in VALUES])
    out: dict[str, Array] = dict(zip(FLOW_KEYS, keys, strict=True))
    out.update(zip(VALUES, sums, strict=True))
    return out


def _merge(partials: list[dict[str, Array]]) -> dict[str, Array]:
    if len(partials) == 1:
        return partials[0]
    cols = {k: np.concatenate([p[k] for p in partials]) for k in FLOW_KEYS}
    vals = {k: np.concatenate([p[k] for p in partials]).astype(np.int64) for k in VALUES}
    return _reduce(cols, vals)
