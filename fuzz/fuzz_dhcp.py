"""Atheris harness: DHCPv4 messages (inputs starting with 0x01 get a valid BOOTP head and cookie).

The property checked is fuzz.checks.check_dhcp, which tests/fuzz/ also runs on every saved finding.
Run it through `python -m fuzz.run --only dhcp` (seeds, corpus and time limit), or directly:
`python -m fuzz.fuzz_dhcp -max_total_time=60 CORPUS_DIR`.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["gateway"]):
    from fuzz.checks import check_dhcp


def main() -> None:
    atheris.Setup(sys.argv, check_dhcp)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
