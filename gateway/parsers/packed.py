"""Vectorised reads of fixed-size fields at per-packet offsets of a byte array.

Callers keep every offset inside the array (capture batches are padded with zero bytes) and
mask out the reads that fall past a packet's captured length.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]


def gather_u8(buf: U8, off: I64) -> npt.NDArray[np.uint8]:
    return buf[off]


def gather_u16(buf: U8, off: I64) -> npt.NDArray[np.uint16]:
    """Big-endian (network order) 16-bit values."""
    return (buf[off].astype(np.uint16) << np.uint16(8)) | buf[off + 1]


def gather_u32(buf: U8, off: I64, big: bool = True) -> npt.NDArray[np.uint32]:
    raw = gather_bytes(buf, off, 4)
    return raw.view(">u4" if big else "<u4").reshape(-1).astype(np.uint32)


def gather_bytes(buf: U8, off: I64, width: int) -> U8:
    """An (n, width) array of the bytes at each offset (a copy, C-contiguous)."""
    idx = off[:, None] + np.arange(width, dtype=np.int64)
    return np.ascontiguousarray(buf[idx])


def gather_u64_pair(buf: U8, off: I64) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """A 128-bit big-endian value (an IPv6 address) as (high, low) 64-bit halves."""
    both = gather_bytes(buf, off, 16).view(">u8").astype(np.uint64)
    return both[:, 0].copy(), both[:, 1].copy()


def gather_mac(buf: U8, off: I64) -> npt.NDArray[np.uint64]:
    """A 48-bit MAC address as an integer (first octet most significant)."""
    raw = np.zeros((len(off), 8), dtype=np.uint8)
    raw[:, 2:] = gather_bytes(buf, off, 6)
    return raw.view(">u8").reshape(-1).astype(np.uint64)
