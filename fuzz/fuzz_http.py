"""Atheris harness: the HTTP/1.x request host.

The property checked is fuzz.checks.check_http, which tests/fuzz/ also runs on every saved finding.
Run it through `python -m fuzz.run --only http` (seeds, corpus and time limit), or directly:
`python -m fuzz.fuzz_http -max_total_time=60 CORPUS_DIR`.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["gateway"]):
    from fuzz.checks import check_http


def main() -> None:
    atheris.Setup(sys.argv, check_http)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
