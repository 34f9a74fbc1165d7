"""Atheris harness: TLS ClientHello, whole, as a bare handshake, and reassembled from cut segments."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["gateway"]):
    from gateway.parsers.tls import (
        MAX_ALPN,
        HelloReassembler,
        client_hello_needed,
        handshake_message_missing,
        parse_client_hello,
        parse_client_hello_handshake,
    )


def test_one_input(data: bytes) -> None:
    whole = parse_client_hello(data)
    parse_client_hello_handshake(data)
    client_hello_needed(data)
    handshake_message_missing(data)
    if whole is not None:
        assert len(whole.alpn) <= MAX_ALPN
    # The same bytes in segments cut at a size taken from the first byte: same answer, or none.
    step = (data[0] if data else 1) or 1
    assembler = HelloReassembler()
    found = None
    for start in range(0, len(data), step):
        found = assembler.feed(data[start : start + step]) or found
        if assembler.finished:
            break
    if whole is not None and found is not None:
        assert found == whole


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
