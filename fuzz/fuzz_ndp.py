"""Atheris harness: ICMPv6 router advertisements.

The property checked is fuzz.checks.check_ndp, which tests/fuzz/ also runs on every saved finding.
Run it through `python -m fuzz.run --only ndp` (seeds, corpus and time limit), or directly:
`python -m fuzz.fuzz_ndp -max_total_time=60 CORPUS_DIR`.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["gateway"]):
    from fuzz.checks import check_ndp


def main() -> None:
    atheris.Setup(sys.argv, check_ndp)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
