"""Atheris harness: QUIC Initials. Inputs starting with 0x00 are frames sealed in a valid Initial
(so the frame walk and the ClientHello inside are reached past the AEAD); others are raw datagrams."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["gateway", "fuzz"]):
    from fuzz.common import protect_initial
    from gateway.parsers.quic import MAX_CONNECTIONS, QuicInitialReassembler, parse_quic_initial


def test_one_input(data: bytes) -> None:
    datagram = protect_initial(data[1:]) if data[:1] == b"\x00" else data
    parse_quic_initial(datagram)
    reassembler = QuicInitialReassembler(max_connections=4)
    reassembler.feed(datagram)
    reassembler.feed(datagram)
    assert len(reassembler) <= min(4, MAX_CONNECTIONS)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
