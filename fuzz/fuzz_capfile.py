"""Atheris harness: pcap and pcapng reading of a fuzzed file, then header decoding of every batch.

A damaged file may raise CaptureError (the CLI's exit 2); anything else is a finding. Every batch
must stay inside its buffer, and the reader must account for what it read.
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris
import numpy as np

with atheris.instrument_imports(include=["gateway"]):
    from gateway.parsers.headers import decode
    from gateway.sources.capfile import PAD, CaptureError, ReadStats, open_capture

PATH = os.path.join(tempfile.mkdtemp(prefix="mouchard-fuzz-"), "input.cap")


def test_one_input(data: bytes) -> None:
    with open(PATH, "wb") as fh:  # noqa: PTH123 - the hot loop of the harness
        fh.write(data)
    stats = ReadStats()
    seen = 0
    try:
        for batch in open_capture(PATH, stats):
            n = len(batch)
            assert batch.caplen.shape == batch.wirelen.shape == batch.ts_ns.shape == (n,)
            assert (batch.offset >= 0).all()
            assert (batch.offset + np.maximum(batch.caplen, 0) <= len(batch.buf) - PAD).all()
            assert (batch.wirelen >= batch.caplen).all()
            decode(batch)
            seen += n
    except CaptureError:
        return
    assert seen == stats.packets
    assert stats.bytes_read + stats.truncated_tail <= len(data)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
