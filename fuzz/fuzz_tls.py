"""Atheris harness: TLS ClientHello: whole, as a bare handshake, and reassembled from cut segments.

The property checked is fuzz.checks.check_tls, which tests/fuzz/ also runs on every saved finding.
Run it through `python -m fuzz.run --only tls` (seeds, corpus and time limit), or directly:
`python -m fuzz.fuzz_tls -max_total_time=60 CORPUS_DIR`.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["gateway"]):
    from fuzz.checks import check_tls


def main() -> None:
    atheris.Setup(sys.argv, check_tls)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
