"""Atheris harness: the HTTP/1.x request host, arbitrary bytes in."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["gateway"]):
    from gateway.parsers.http import parse_http_host


def test_one_input(data: bytes) -> None:
    host = parse_http_host(data)
    assert host is None or (host and len(host) <= 253 and host == host.lower())


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
