"""Atheris harness: passive mDNS / DNS-SD messages and TXT properties.

The property checked is fuzz.checks.check_mdns, which tests/fuzz/ also runs on every saved finding.
Run it through `python -m fuzz.run --only mdns` (seeds, corpus and time limit), or directly:
`python -m fuzz.fuzz_mdns -max_total_time=60 CORPUS_DIR`.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["gateway"]):
    from fuzz.checks import check_mdns


def main() -> None:
    atheris.Setup(sys.argv, check_mdns)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
