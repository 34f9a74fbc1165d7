"""Every parser on hostile bytes: never raises, never hangs, and keeps its documented bounds.

The property of each parser is the one its atheris harness checks (fuzz.checks); here hypothesis
drives it with random bytes and mutated valid messages, within a deadline.
"""

from __future__ import annotations

from hypothesis import given

from fuzz import checks
from fuzz.common import (
    dhcp_seeds,
    dns_seeds,
    headers_seeds,
    http_seeds,
    mdns_seeds,
    ndp_seeds,
    quic_seeds,
    tls_seeds,
)
from tests.fuzz.strategies import PARSER, hostile


@PARSER
@given(hostile(dns_seeds(), 600))
def test_dns_never_raises_and_keeps_its_bounds(data: bytes) -> None:
    checks.check_dns(data)


@PARSER
@given(hostile(mdns_seeds(), 9000))
def test_mdns_never_raises_and_keeps_its_bounds(data: bytes) -> None:
    checks.check_mdns(data)


@PARSER
@given(hostile(dhcp_seeds(), 600))
def test_dhcp_never_raises_and_keeps_its_bounds(data: bytes) -> None:
    checks.check_dhcp(data)


@PARSER
@given(hostile(tls_seeds(), 2000))
def test_tls_never_raises_and_reassembly_agrees(data: bytes) -> None:
    checks.check_tls(data)


@PARSER
@given(hostile(quic_seeds(), 1500))
def test_quic_datagrams_never_raise(data: bytes) -> None:
    checks.check_quic(data)


@PARSER
@given(hostile([b"\x00" + seed for seed in tls_seeds()], 1200))
def test_quic_sealed_frames_never_raise(data: bytes) -> None:
    checks.check_quic(b"\x00" + data)


@PARSER
@given(hostile(http_seeds(), 5000))
def test_http_never_raises(data: bytes) -> None:
    checks.check_http(data)


@PARSER
@given(hostile(ndp_seeds(), 600))
def test_router_advertisement_never_raises(data: bytes) -> None:
    checks.check_ndp(data)


@PARSER
@given(hostile(headers_seeds(), 3000))
def test_headers_never_read_past_a_packet(data: bytes) -> None:
    checks.check_headers(data)
