"""Atheris harness: ICMPv6 router advertisements, arbitrary bytes in."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["gateway"]):
    from gateway.parsers.ndp import MAX_OPTIONS, parse_router_advertisement


def test_one_input(data: bytes) -> None:
    advert = parse_router_advertisement(b"\x86" + data)
    assert advert is None or len(advert.prefixes) <= MAX_OPTIONS
    parse_router_advertisement(data)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
