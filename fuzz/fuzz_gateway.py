"""Atheris harness: the whole Gateway (names, evidence, devices, bins, line protocol) on a fuzzed capture.

The property checked is fuzz.checks.check_gateway, which tests/fuzz/ also runs on every saved finding.
Run it through `python -m fuzz.run --only gateway` (seeds, corpus and time limit), or directly:
`python -m fuzz.fuzz_gateway -max_total_time=60 CORPUS_DIR`.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["gateway"]):
    from fuzz.checks import check_gateway


def main() -> None:
    atheris.Setup(sys.argv, check_gateway)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
