"""Atheris harness: DNS responses (UDP and TCP framing) and queries, arbitrary bytes in."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["gateway"]):
    from gateway.parsers.dns import (
        MAX_ANSWERS,
        MAX_CNAME_DEPTH,
        MAX_NAME_CHARS,
        parse_dns_query,
        parse_dns_response,
        parse_dns_tcp,
    )


def test_one_input(data: bytes) -> None:
    for answer in (parse_dns_response(data), parse_dns_tcp(data)):
        if answer is not None:
            assert len(answer.qname) <= MAX_NAME_CHARS
            assert len(answer.addresses) <= MAX_ANSWERS
            assert len(answer.cnames) <= MAX_CNAME_DEPTH
    qname = parse_dns_query(data)
    assert qname is None or len(qname) <= MAX_NAME_CHARS


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
