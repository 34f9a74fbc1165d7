"""HTTP/1.x requests: the host a client names in its request (RFC 9112 §3.2).

`parse_http_host` reads the first TCP payload of a request (or an SSDP/UPnP datagram, which uses the
same syntax over UDP) and never raises. It reads at most MAX_HTTP_BYTES.
"""

from __future__ import annotations

import ipaddress
import re

from gateway.parsers.dns import normalise_hostname

MAX_HTTP_BYTES = 4096  # request bytes read: the request line and Host come first; 4 KiB bounds the scan

# A method token (GET, POST, ..., CONNECT, and M-SEARCH/NOTIFY/SUBSCRIBE of SSDP and UPnP), a target
# of visible ASCII, and an HTTP/1.x version: the version is what tells HTTP from other TCP payloads.
_REQUEST_LINE = re.compile(rb"(?P<method>[A-Z][A-Z_-]{0,23}) (?P<target>[!-~]+) HTTP/1\.\d")
_ABSOLUTE_FORM = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]*://(?P<authority>[^/?#]*)")
_PORT = re.compile(r":\d{0,5}")


def parse_http_host(payload: bytes) -> str | None:
    """The host an HTTP/1.x request is for: lowercase, without port or trailing dot.

    From the request target when it is in absolute form (proxies) or authority form (CONNECT), as
    RFC 9112 §3.2.2 says, else from the Host header. An IP literal comes back as the address's text
    (IPv6 without brackets). None when the payload is no request, or the host is no valid name.
    """
    head = payload[:MAX_HTTP_BYTES]
    line_end = head.find(b"\n")
    request = _REQUEST_LINE.fullmatch(head[:line_end].removesuffix(b"\r")) if line_end > 0 else None
    if request is None:
        return None
    target = request.group("target")
    absolute = _ABSOLUTE_FORM.match(target)
    if absolute is not None:
        return _host_of(absolute.group("authority"))
    if request.group("method") == b"CONNECT":
        return _host_of(target)
    header = _host_header(head[line_end + 1 :])
    return None if header is None else _host_of(header)


def _host_header(headers: bytes) -> bytes | None:
    """The value of the first Host header among the complete header lines of `headers`."""
    lines = headers.split(b"\n")
    for line in lines[:-1]:  # the last piece has no line end yet: a value there may be cut short
        if line in (b"", b"\r"):
            return None  # end of the header section
        name, colon, value = line.partition(b":")
        if colon and name.lower() == b"host":
            return value.strip(b" \t\r")
    return None


def _host_of(authority: bytes) -> str | None:
    """The host of an authority `[userinfo@]host[:port]`, normalised; None when invalid."""
    if not authority.isascii():
        return None
    text = authority.decode("ascii").rpartition("@")[2]
    if text.startswith("["):
        literal, bracket, port = text[1:].partition("]")
        return _ipv6(literal) if bracket and (not port or _PORT.fullmatch(port)) else None
    host, colon, port = text.partition(":")
    if colon and not _PORT.fullmatch(colon + port):
        return None
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        return normalise_hostname(host)


def _ipv6(literal: str) -> str | None:
    try:
        return ipaddress.IPv6Address(literal).compressed
    except ValueError:
        return None
