"""Atheris harness: pcap and pcapng reading of a fuzzed file, then header decoding of every batch.

The property checked is fuzz.checks.check_capfile, which tests/fuzz/ also runs on every saved finding.
Run it through `python -m fuzz.run --only capfile` (seeds, corpus and time limit), or directly:
`python -m fuzz.fuzz_capfile -max_total_time=60 CORPUS_DIR`.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["gateway"]):
    from fuzz.checks import check_capfile


def main() -> None:
    atheris.Setup(sys.argv, check_capfile)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
