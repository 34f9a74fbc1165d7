"""Hypothesis strategies for hostile bytes: random, and valid seeds with flipped, cut or added bytes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# `make test` keeps these runs short; raise MOUCHARD_PROPERTY_EXAMPLES for a longer local run.
EXAMPLES = int(os.environ.get("MOUCHARD_PROPERTY_EXAMPLES", "150"))
# A parser bounded by its input takes a few milliseconds at most; two seconds means a hang (or a loop
# bounded too loosely), even on a loaded machine. Captures run a whole pipeline: ten seconds.
PARSER = settings(
    max_examples=EXAMPLES, deadline=timedelta(seconds=2), suppress_health_check=[HealthCheck.too_slow]
)
PIPELINE = settings(
    max_examples=max(10, EXAMPLES // 3),
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes]) -> bytes:
    """One of `seeds` with a few bytes flipped, a slice cut out or repeated, and maybe cut short."""
    data = bytearray(draw(st.sampled_from(list(seeds))))
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            break
        kind = draw(st.sampled_from(["flip", "set", "delete", "repeat", "insert"]))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[at] = draw(st.sampled_from([0x00, 0x01, 0x3F, 0x40, 0x7F, 0x80, 0xC0, 0xFE, 0xFF]))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif kind == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
    if data and draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def hostile(seeds: Sequence[bytes], max_size: int = 2000) -> st.SearchStrategy[bytes]:
    """Random bytes, or a mutated seed (which reaches deep into a parser far more often)."""
    return st.one_of(st.binary(max_size=max_size), mutated(seeds))
