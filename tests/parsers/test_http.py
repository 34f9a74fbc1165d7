"""gateway.parsers.http: real requests checked against tshark, hand-built edge cases, fuzzing."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.parsers.http import MAX_HTTP_BYTES, parse_http_host
from tests.conftest import CAPTURES

TSHARK_PREFS = ["-n", "-o", "http.desegment_headers:TRUE", "-o", "tcp.desegment_tcp_streams:TRUE"]


def request(head: str, body: bytes = b"") -> bytes:
    return head.replace("\n", "\r\n").encode() + b"\r\n" + body


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (request("GET / HTTP/1.1\nHost: Example.COM\n"), "example.com"),
        (
            request("POST /api HTTP/1.1\nhost:api.example.com:8443\nContent-Length: 2\n", b"{}"),
            "api.example.com",
        ),
        (request("PUT /x HTTP/1.0\nUser-Agent: a\nHOST: \t device.example. \t\n"), "device.example"),
        (request("HEAD / HTTP/1.1\nHost: [2001:DB8::1]:8080\n"), "2001:db8::1"),
        (request("OPTIONS * HTTP/1.1\nHost: [::ffff:192.0.2.1]\n"), "::ffff:c000:201"),
        (request("DELETE /a HTTP/1.1\nHost: 192.168.1.20:80\n"), "192.168.1.20"),
        (request("PATCH /a HTTP/1.1\nHost: example.com:\n"), "example.com"),
        (request("GET http://Proxy.Example:3128/path HTTP/1.1\nHost: ignored.example\n"), "proxy.example"),
        (request("GET http://user:pw@origin.example/ HTTP/1.1\n"), "origin.example"),
        (request("GET https://[2001:db8::2]/ HTTP/1.1\n"), "2001:db8::2"),
        (request("CONNECT Tunnel.Example:443 HTTP/1.1\nHost: tunnel.example:443\n"), "tunnel.example"),
        (request("CONNECT [2001:db8::3]:443 HTTP/1.1\n"), "2001:db8::3"),
        (request("M-SEARCH * HTTP/1.1\nHOST: 239.255.255.250:1900\nMAN: x\n"), "239.255.255.250"),
        (request("NOTIFY * HTTP/1.1\nHost: 239.255.255.250:1900\n"), "239.255.255.250"),
        (b"GET / HTTP/1.1\nHost: lf-only.example\n\n", "lf-only.example"),
    ],
)
def test_hosts(payload: bytes, expected: str) -> None:
    assert parse_http_host(payload) == expected


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"GET / HTTP/1.1",  # no line end yet
        request("GET / HTTP/1.1\nUser-Agent: x\n"),  # no Host
        b"GET / HTTP/1.1\r\nHost: cut-short.exam",  # the Host line is not complete: maybe cut
        request("GET / HTTP/1.1\n", b"Host: in-the-body.example\r\n"),  # after the header section
        request("get / HTTP/1.1\nHost: a.example\n"),  # methods are case-sensitive
        request("GET / HTTP/2.0\nHost: a.example\n"),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        request("HTTP/1.1 200 OK\nHost: a.example\n"),  # a response
        request("GET /a b HTTP/1.1\nHost: a.example\n"),  # a space in the target
        request("GET / HTTP/1.1\nHost: bad_host name.example\n"),
        request("GET / HTTP/1.1\nHost: caf\u00e9.example\n"),
        request("GET / HTTP/1.1\nHost: a.example:http\n"),  # a port that is no number
        request("GET / HTTP/1.1\nHost: a.example:123456\n"),
        request("GET / HTTP/1.1\nHost: [2001:db8::1\n"),  # unclosed bracket
        request("GET / HTTP/1.1\nHost: [not-an-address]\n"),
        request("GET / HTTP/1.1\nHost: [2001:db8::1]x\n"),
        request("GET / HTTP/1.1\nHost: 2001:db8::1\n"),  # an IPv6 literal needs brackets
        request("GET / HTTP/1.1\nHost: " + "a" * 300 + "\n"),
        request("GET / HTTP/1.1\nHost:\n"),
        request("CONNECT :443 HTTP/1.1\n"),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # TLS
        b"\xff" * 100 + b"\n",
    ],
)
def test_no_host(payload: bytes) -> None:
    assert parse_http_host(payload) is None


def test_only_the_first_4_kib_are_read() -> None:
    filler = "X-Filler: " + "f" * 100 + "\n"
    early = request("GET / HTTP/1.1\n" + filler * 30 + "Host: early.example\n")
    late = request("GET / HTTP/1.1\n" + filler * 40 + "Host: late.example\n")
    assert len(early.split(b"Host")[0]) < MAX_HTTP_BYTES < len(late.split(b"Host")[0])
    assert parse_http_host(early) == "early.example"
    assert parse_http_host(late) is None


def test_first_host_header_wins() -> None:
    assert parse_http_host(request("GET / HTTP/1.1\nHost: one.example\nHost: two.example\n")) == "one.example"


def test_every_truncation() -> None:
    payload = request("GET /index.html HTTP/1.1\nAccept: */*\nHost: www.example.org\nUser-Agent: t\n")
    host_end = payload.index(b"www.example.org") + len("www.example.org\r\n")
    for end in range(len(payload) + 1):
        assert parse_http_host(payload[:end]) == ("www.example.org" if end >= host_end else None), end


@given(st.binary(max_size=5000))
@settings(max_examples=500)
def test_random_bytes_never_raise(payload: bytes) -> None:
    parse_http_host(payload)
    parse_http_host(b"GET / HTTP/1.1\r\nHost: " + payload)


@given(st.text(max_size=300), st.sampled_from(["GET / HTTP/1.1", "CONNECT ", "GET http://"]))
@settings(max_examples=500)
def test_random_hosts_never_raise_and_come_back_clean(host: str, start: str) -> None:
    if start == "GET / HTTP/1.1":
        payload = f"{start}\r\nHost: {host}\r\n\r\n"
    else:
        payload = f"{start}{host} HTTP/1.1\r\n\r\n"
    result = parse_http_host(payload.encode("utf-8", errors="surrogatepass"))
    if result is not None:
        assert result.isascii()
        assert result == result.lower()
        assert not result.endswith(".")
        assert len(result) <= 253


# --- real captures, with tshark as the oracle ----------------------------------------------------


def capture_params() -> list[Any]:
    if not CAPTURES.is_dir():
        reason = f"real captures not found at {CAPTURES} (they sit beside the checkout: ../shared/captures)"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason))]
    files = sorted(p for p in CAPTURES.rglob("*") if p.suffix in (".pcap", ".pcapng"))
    return [pytest.param(path, id=str(path.relative_to(CAPTURES))) for path in files]


def tshark_fields(capture: Path, display_filter: str, *fields: str) -> list[list[str]]:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (Debian package tshark): it is this test's oracle")
    command = ["tshark", *TSHARK_PREFS, "-r", str(capture), "-Y", display_filter, "-T", "fields"]
    command += [argument for field in fields for argument in ("-e", field)]
    command += ["-E", "separator=\t", "-E", "occurrence=f"]
    out = subprocess.run(command, capture_output=True, check=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def expected_host(header: str) -> str:
    """tshark's raw Host value, reduced the simple way: no port, lowercase, IP literals normalised."""
    host = header.strip().lower()
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return host.rstrip(".")


@pytest.mark.parametrize("capture", capture_params())
def test_requests_match_tshark(capture: Path) -> None:
    fields = ("tcp.reassembled.data", "tcp.payload", "udp.payload", "http.host")
    for reassembled, tcp_payload, udp_payload, host in tshark_fields(capture, "http.request", *fields):
        payload = bytes.fromhex((reassembled or tcp_payload or udp_payload).replace(":", ""))
        assert parse_http_host(payload) == (expected_host(host) if host else None), host


def test_the_captures_hold_requests() -> None:
    """Guards the oracle test above against silently checking nothing."""
    if not CAPTURES.is_dir():
        pytest.skip(f"real captures not found at {CAPTURES}")
    capture = CAPTURES / "iot_sentinel" / "HueSwitch_Setup-A-1-STA.pcap"
    assert len(tshark_fields(capture, "http.request", "http.host")) > 100
