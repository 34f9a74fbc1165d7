"""Group rows by a multi-column key and sum their values, exactly, with numpy.

Rows are grouped by a 64-bit hash of their key columns (one fast sort of uint64), then every row is
checked against the first row of its group; only if two different keys shared a hash (a collision)
does the slower exact grouping over all columns run. Sums are therefore always exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.generic]
I64 = npt.NDArray[np.int64]

_MUL = np.uint64(0x9E3779B97F4A7C15)
_MUL2 = np.uint64(0xBF58476D1CE4E5B9)


def key_hash(columns: Sequence[Array]) -> npt.NDArray[np.uint64]:
    """A well-mixed 64-bit hash of each row of the key columns (wrapping uint64 arithmetic)."""
    h = np.zeros(len(columns[0]), np.uint64)
    for col in columns:
        h ^= col.astype(np.uint64)
        h *= _MUL
        h ^= h >> np.uint64(31)
        h *= _MUL2
    return h


_M64 = (1 << 64) - 1
_MUL_INT, _MUL2_INT = int(_MUL), int(_MUL2)


def key_hash_one(values: Sequence[int]) -> int:
    """``key_hash`` of a single row, in plain Python (for keys built one packet at a time)."""
    h = 0
    for v in values:
        h ^= v & _M64
        h = (h * _MUL_INT) & _M64
        h ^= h >> 31
        h = (h * _MUL2_INT) & _M64
    return h


def unique_pairs(a: Array, b: Array) -> list[tuple[int, int]]:
    """The distinct (a, b) rows, as ints (exact; far faster than ``np.unique(axis=0)``)."""
    if not len(a):
        return []
    first, _ = group_rows([a, b])
    return list(zip(a[first].tolist(), b[first].tolist(), strict=True))


def group_rows(columns: Sequence[Array]) -> tuple[I64, I64]:
    """(index of each group's first row, group number of each row)."""
    if len(columns[0]) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    _, first, inverse = np.unique(key_hash(columns), return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    if all(np.array_equal(col, col[first][inverse]) for col in columns):
        return first.astype(np.int64), inverse.astype(np.int64)
    table = np.rec.fromarrays(list(columns))
    _, first, inverse = np.unique(table, return_index=True, return_inverse=True)
    return first.astype(np.int64), inverse.reshape(-1).astype(np.int64)


def group_sum(columns: Sequence[Array], values: Sequence[I64]) -> tuple[list[Array], list[I64], I64]:
    """Unique keys, the per-group sums of each value column, and the row count of each group."""
    first, inverse = group_rows(columns)
    groups = len(first)
    keys = [col[first] for col in columns]
    sums = [_sum_int(inverse, v, groups) for v in values]
    counts = np.bincount(inverse, minlength=groups).astype(np.int64)
    return keys, sums, counts


def _sum_int(inverse: I64, values: I64, groups: int) -> I64:
    # bincount sums in float64, exact for totals below 2**53 (9 PB): check rather than assume.
    total = np.bincount(inverse, weights=values, minlength=groups)
    if groups and float(total.max(initial=0)) >= 2.0**53:
        out = np.zeros(groups, np.int64)
        np.add.at(out, inverse, values)
        return out
    return total.astype(np.int64)
