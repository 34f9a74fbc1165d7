"""Atheris harness: DHCPv4 messages, arbitrary bytes in (the BOOTP cookie is often forced)."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["gateway"]):
    from gateway.parsers.dhcp import (
        BOOTP_HEADER_LEN,
        MAGIC_COOKIE,
        MAX_ADDRESSES,
        MAX_FQDN,
        MAX_HOSTNAME,
        MAX_PARAMS,
        parse_dhcp,
    )


def test_one_input(data: bytes) -> None:
    # Half the inputs get a valid BOOTP head and cookie, so the option walk is reached.
    if data[:1] == b"\x01" and len(data) > 1:
        data = b"\x01\x01\x06\x00" + bytes(BOOTP_HEADER_LEN - 4) + MAGIC_COOKIE + data[1:]
    msg = parse_dhcp(data)
    if msg is not None:
        assert msg.hostname is None or len(msg.hostname) <= MAX_HOSTNAME
        assert msg.client_fqdn is None or len(msg.client_fqdn) <= MAX_FQDN
        assert len(msg.param_request_list) <= MAX_PARAMS
        assert len(msg.routers) <= MAX_ADDRESSES and len(msg.dns_servers) <= MAX_ADDRESSES
        _ = msg.fingerprint, msg.client_ip


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
