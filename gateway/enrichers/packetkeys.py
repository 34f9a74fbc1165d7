"""Per-packet helpers for the few packets that reach Python: whose packet it is, and its payload."""

from __future__ import annotations

from gateway.aggregators.traffic import KIND_IP, KIND_MAC
from gateway.parsers.headers import Headers
from gateway.sources.capfile import PacketBatch

DeviceKey = tuple[int, int, int]  # (kind, hi, lo) as in traffic rows


def sender(h: Headers, i: int) -> DeviceKey:
    """The device key of packet ``i``'s sender: its MAC, or its address without a link layer."""
    if h.has_mac[i]:
        return KIND_MAC, 0, int(h.src_mac[i])
    return KIND_IP, int(h.src_hi[i]), int(h.src_lo[i])


def receiver(h: Headers, i: int) -> DeviceKey:
    if h.has_mac[i]:
        return KIND_MAC, 0, int(h.dst_mac[i])
    return KIND_IP, int(h.dst_hi[i]), int(h.dst_lo[i])


def payload(batch: PacketBatch, h: Headers, i: int) -> bytes:
    """The captured transport payload of packet ``i``."""
    start = int(h.payload[i] - batch.offset[i])
    return batch.payload(i, start, start + int(h.payload_len[i]))
