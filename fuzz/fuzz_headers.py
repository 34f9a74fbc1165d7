"""Atheris harness: the vectorised header decoder on batches of mixed link types (alone = in a batch).

The property checked is fuzz.checks.check_headers, which tests/fuzz/ also runs on every saved finding.
Run it through `python -m fuzz.run --only headers` (seeds, corpus and time limit), or directly:
`python -m fuzz.fuzz_headers -max_total_time=60 CORPUS_DIR`.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["gateway"]):
    from fuzz.checks import check_headers


def main() -> None:
    atheris.Setup(sys.argv, check_headers)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
