"""Atheris harness: the vectorised header decoder on a batch of fuzzed packets of mixed link types.

Besides never raising, each packet must decode the same alone as in the batch: a decoder that read
past a packet's captured bytes would see its neighbour's bytes in the batch and zeros alone.
"""

from __future__ import annotations

import sys

import atheris
import numpy as np

with atheris.instrument_imports(include=["gateway", "fuzz"]):
    from fuzz.common import LINK_TYPES, batch_of, split_packets
    from gateway.parsers.headers import Headers, decode

COMPARED = ("has_mac", "src_mac", "dst_mac", "is_ip", "malformed", "ipver", "src_hi", "src_lo", "dst_hi",
            "dst_lo", "proto", "fragment", "later_fragment", "sport", "dport", "tcp_flags", "payload_len")


def check_inside(h: Headers, offset: np.ndarray, caplen: np.ndarray) -> None:
    end = offset + np.maximum(caplen, 0)
    used = h.payload_len > 0
    assert (h.payload[used] >= offset[used]).all()
    assert (h.payload[used] + h.payload_len[used] <= end[used]).all()


def test_one_input(data: bytes) -> None:
    if len(data) < 4:
        return
    count = 1 + data[0] % 8
    links = [LINK_TYPES[b % len(LINK_TYPES)] for b in data[1 : 1 + count]]
    body = data[1 + count :]
    packets = split_packets(body[2 * count :], body[: 2 * count])
    if not packets:
        return
    batch = batch_of(packets, links)
    together = decode(batch)
    check_inside(together, batch.offset, batch.caplen)
    for i, packet in enumerate(packets):
        alone_batch = batch_of([packet], [links[i % len(links)]])
        alone = decode(alone_batch)
        for name in COMPARED:
            assert getattr(alone, name)[0] == getattr(together, name)[i], (name, i)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
