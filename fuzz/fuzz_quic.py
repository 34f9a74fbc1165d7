"""Atheris harness: QUIC Initials (inputs starting with 0x00 are frames sealed in a valid Initial).

The property checked is fuzz.checks.check_quic, which tests/fuzz/ also runs on every saved finding.
Run it through `python -m fuzz.run --only quic` (seeds, corpus and time limit), or directly:
`python -m fuzz.fuzz_quic -max_total_time=60 CORPUS_DIR`.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["gateway"]):
    from fuzz.checks import check_quic


def main() -> None:
    atheris.Setup(sys.argv, check_quic)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
