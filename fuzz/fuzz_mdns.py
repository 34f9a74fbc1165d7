"""Atheris harness: passive mDNS / DNS-SD messages, arbitrary bytes in."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["gateway"]):
    from gateway.parsers.mdns import MAX_RECORDS, MAX_TXT_KEYS, parse_mdns, txt_properties


def test_one_input(data: bytes) -> None:
    msg = parse_mdns(data)
    if msg is not None:
        assert len(msg.questions) <= MAX_RECORDS
        assert all(len(text.properties) <= MAX_TXT_KEYS for text in msg.texts)
        msg.properties()
    assert len(txt_properties(data)) <= MAX_TXT_KEYS


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
