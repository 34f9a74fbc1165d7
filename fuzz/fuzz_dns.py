"""Atheris harness: DNS responses (UDP and TCP framing) and queries.

The property checked is fuzz.checks.check_dns, which tests/fuzz/ also runs on every saved finding.
Run it through `python -m fuzz.run --only dns` (seeds, corpus and time limit), or directly:
`python -m fuzz.fuzz_dns -max_total_time=60 CORPUS_DIR`.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["gateway"]):
    from fuzz.checks import check_dns


def main() -> None:
    atheris.Setup(sys.argv, check_dns)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
