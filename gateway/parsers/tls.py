"""TLS ClientHello: the server name, ALPN and ECH use a client announces (RFC 8446, RFC 6066).

`parse_client_hello` reads the start of a TCP stream (one or more TLS records);
`HelloReassembler` collects a ClientHello that spans several TCP segments; and
`parse_client_hello_handshake` reads a bare handshake message, as QUIC's CRYPTO frames carry it.
Nothing here raises on hostile bytes: reads are bounds-checked and every loop has a bound below.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from gateway.parsers.dns import normalise_hostname

MAX_HELLO_BYTES = 16384  # stream bytes read for one ClientHello: real ones take 0.2-2 KB (post-quantum
#                          key shares included); 16 KiB, one full TLS record, leaves room for any sane one
MAX_RECORD_LENGTH = 16384  # RFC 8446 §5.1: a plaintext record fragment is at most 2^14 bytes
MAX_EXTENSIONS = 128  # extensions read: browsers send about 20, so more is padding or an attack
MAX_ALPN = 16  # ALPN protocols kept: browsers offer 2-4

CONTENT_HANDSHAKE = 22
HANDSHAKE_CLIENT_HELLO = 1
EXT_SERVER_NAME = 0
EXT_ALPN = 16
EXT_SUPPORTED_VERSIONS = 43
EXT_ECH = 0xFE0D  # encrypted_client_hello (draft-ietf-tls-esni, as browsers ship it)
NAME_TYPE_HOST = 0

_WANTED = frozenset({EXT_SERVER_NAME, EXT_ALPN, EXT_SUPPORTED_VERSIONS, EXT_ECH})
_TYPE_LENGTH = struct.Struct(">HH").unpack_from
_RECORD_HEADER = 5
_HANDSHAKE_HEADER = 4


@dataclass(frozen=True, slots=True)
class ClientHello:
    """What a ClientHello says in the clear.

    `ech` is True when the encrypted_client_hello extension is present. Browsers also send it as
    GREASE when they have no ECH configuration, and the two are indistinguishable by design (the ECH
    specification, "GREASE ECH"): with real ECH, `server_name` is the client-facing server's public
    name, with GREASE it is the real one. Either way it names the server the packets go to.
    """

    server_name: str | None  # the SNI host_name: lowercase, no trailing dot; None if absent or invalid
    alpn: tuple[str, ...]  # ALPN protocols in the client's order ("h2", "http/1.1", "h3", ...)
    ech: bool  # an encrypted_client_hello extension (0xfe0d) is present, real or GREASE
    ech_outer_name: str | None  # server_name when ech is True (the outer, public name), else None
    version: int  # first non-GREASE supported_versions entry, else legacy_version (0x0304 = TLS 1.3)
    legacy_version: int  # the ClientHello's legacy_version field (0x0303 for TLS 1.2 and 1.3)


class _TruncatedError(Exception):
    """A read ran past the end of its buffer; caught in this module, never raised to callers."""


class _Reader:
    """A cursor over bytes whose reads raise `_TruncatedError` instead of returning short data."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def take(self, count: int) -> bytes:
        if count > self.remaining:
            raise _TruncatedError
        self._pos += count
        return self._data[self._pos - count : self._pos]

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def vec8(self) -> bytes:
        return self.take(self.u8())

    def vec16(self) -> bytes:
        return self.take(self.u16())


class HelloReassembler:
    """Collects the ClientHello at the start of one TCP stream, fed its segments in order.

    Holds at most MAX_HELLO_BYTES. `feed` returns the ClientHello once, when it is complete; after
    that, or once the stream proves not to start with a ClientHello, `finished` is True and further
    segments are ignored. Each byte is examined once, whatever the segmentation.
    """

    __slots__ = ("_data", "_handshake", "_needed", "_offset")

    def __init__(self) -> None:
        self._data = bytearray()
        self._offset = 0  # start of the first record not yet moved into _handshake
        self._handshake = bytearray()
        self._needed = _HANDSHAKE_HEADER + _RECORD_HEADER

    @property
    def finished(self) -> bool:
        return self._needed <= 0

    @property
    def needed(self) -> int:
        """At least this many more stream bytes are needed; 0 when done, -1 when no ClientHello."""
        return self._needed

    def feed(self, segment: bytes) -> ClientHello | None:
        if self.finished:
            return None
        self._data += segment[: MAX_HELLO_BYTES - len(self._data)]
        self._needed = self._advance()
        if self._needed > 0 and len(self._data) >= MAX_HELLO_BYTES:
            self._needed = -1
        if self._needed != 0:
            return None
        hello = parse_client_hello_handshake(bytes(self._handshake))
        self._needed = 0 if hello is not None else -1
        return hello

    def _advance(self) -> int:
        """Move complete records into _handshake; the bytes still needed (0 done, -1 not a hello)."""
        while (missing := _handshake_missing(self._handshake)) > 0:
            size = _record_size(self._data, self._offset)
            if size < 0:
                return -1
            end = self._offset + (size or _RECORD_HEADER)
            if size == 0 or end > len(self._data):
                return end - len(self._data) + (missing if size == 0 else 0)
            self._handshake += self._data[self._offset + _RECORD_HEADER : end]
            self._offset = end
        return missing


def parse_client_hello(data: bytes) -> ClientHello | None:
    """The ClientHello at the start of a TCP stream (TLS records), or None if absent or incomplete."""
    # The usual case, one record holding the whole hello, without the reassembler's bookkeeping.
    if len(data) >= _RECORD_HEADER + _HANDSHAKE_HEADER and data[0] == CONTENT_HANDSHAKE and data[1] == 3:
        record = int.from_bytes(data[3:5], "big")
        hello = int.from_bytes(data[6:9], "big")
        if (
            0 < record <= MAX_RECORD_LENGTH
            and hello + _HANDSHAKE_HEADER <= record <= len(data) - _RECORD_HEADER
        ):
            return parse_client_hello_handshake(
                data[_RECORD_HEADER : _RECORD_HEADER + _HANDSHAKE_HEADER + hello]
            )
    return HelloReassembler().feed(data)


def client_hello_needed(data: bytes) -> int:
    """For the start of a TCP stream: at least how many more bytes the ClientHello needs.

    0 when `data` holds it whole, -1 when `data` does not start with one (or it exceeds the bound).
    """
    reassembler = HelloReassembler()
    reassembler.feed(data)
    return reassembler.needed


def parse_client_hello_handshake(msg: bytes) -> ClientHello | None:
    """A bare ClientHello handshake message (type 1, 3-byte length, body), without a record layer."""
    if len(msg) < _HANDSHAKE_HEADER or msg[0] != HANDSHAKE_CLIENT_HELLO:
        return None
    length = int.from_bytes(msg[1:4], "big")
    if length > MAX_HELLO_BYTES or len(msg) < _HANDSHAKE_HEADER + length:
        return None
    try:
        return _parse_body(_Reader(msg[_HANDSHAKE_HEADER : _HANDSHAKE_HEADER + length]))
    except _TruncatedError:
        return None


def handshake_message_missing(data: bytes) -> int:
    """How many bytes the handshake message starting `data` still lacks: 0 complete, -1 not a hello."""
    return _handshake_missing(data)


def _handshake_missing(data: bytes | bytearray) -> int:
    if data and data[0] != HANDSHAKE_CLIENT_HELLO:
        return -1
    if len(data) < _HANDSHAKE_HEADER:
        return _HANDSHAKE_HEADER - len(data)
    total = _HANDSHAKE_HEADER + int.from_bytes(data[1:4], "big")
    if total > MAX_HELLO_BYTES:
        return -1
    return max(0, total - len(data))


def _record_size(data: bytes | bytearray, offset: int) -> int:
    """Size of the handshake record at `offset`, header included; 0 when its header is incomplete,
    -1 when it is no TLS handshake record."""
    header = data[offset : offset + _RECORD_HEADER]
    if header[:1] not in (b"", bytes([CONTENT_HANDSHAKE])) or header[1:2] not in (b"", b"\x03"):
        return -1
    if len(header) < _RECORD_HEADER:
        return 0
    length = int.from_bytes(header[3:5], "big")
    if not 0 < length <= MAX_RECORD_LENGTH:
        return -1
    return _RECORD_HEADER + length


def _parse_body(reader: _Reader) -> ClientHello | None:
    legacy_version = reader.u16()
    reader.take(32)  # random
    reader.vec8()  # legacy_session_id
    cipher_suites = reader.vec16()
    reader.vec8()  # legacy_compression_methods
    if not cipher_suites or len(cipher_suites) % 2:
        return None
    # Hellos of SSL 3.0 and early TLS 1.0 clients may end here, without extensions.
    extensions = _read_extensions(reader.vec16() if reader.remaining else b"")
    server_name = _server_name(extensions.get(EXT_SERVER_NAME, b""))
    ech = EXT_ECH in extensions
    return ClientHello(
        server_name=server_name,
        alpn=_alpn(extensions.get(EXT_ALPN, b"")),
        ech=ech,
        ech_outer_name=server_name if ech else None,
        version=_version(extensions.get(EXT_SUPPORTED_VERSIONS, b""), legacy_version),
        legacy_version=legacy_version,
    )


def _read_extensions(block: bytes) -> dict[int, bytes]:
    """Extension type → data, the first occurrence of each type we read, within MAX_EXTENSIONS.

    A plain offset walk (this runs once per TLS connection): only the extensions that name the
    destination or the version are sliced out.
    """
    extensions: dict[int, bytes] = {}
    pos, end = 0, len(block)
    for _ in range(MAX_EXTENSIONS):
        if pos >= end:
            break
        if pos + 4 > end:
            raise _TruncatedError
        kind, length = _TYPE_LENGTH(block, pos)
        pos += 4
        if pos + length > end:
            raise _TruncatedError
        if kind in _WANTED and kind not in extensions:
            extensions[kind] = block[pos : pos + length]
        pos += length
    return extensions


def _server_name(data: bytes) -> str | None:
    """The first host_name of a server_name extension (RFC 6066 §3)."""
    if not data:
        return None
    names = _Reader(_Reader(data).vec16())
    while names.remaining:  # each entry takes at least 3 bytes, so this ends
        name_type, name = names.u8(), names.vec16()
        if name_type == NAME_TYPE_HOST:
            return normalise_hostname(name.decode("ascii")) if name.isascii() else None
    return None


def _alpn(data: bytes) -> tuple[str, ...]:
    if not data:
        return ()
    entries = _Reader(_Reader(data).vec16())
    protocols: list[str] = []
    while entries.remaining and len(protocols) < MAX_ALPN:
        protocol = entries.vec8()
        if protocol:
            protocols.append(_printable(protocol))
    return tuple(protocols)


def _printable(raw: bytes) -> str:
    """ALPN IDs are opaque bytes (RFC 7301 §3.1): visible ASCII is kept, the rest written as \\xNN."""
    return "".join(chr(byte) if 0x20 < byte < 0x7F else f"\\x{byte:02x}" for byte in raw)


def _version(data: bytes, legacy_version: int) -> int:
    """The client's preferred TLS version: the first non-GREASE supported_versions entry."""
    if not data:
        return legacy_version
    listed = _Reader(data).vec8()
    for index in range(0, len(listed) - 1, 2):
        version = int.from_bytes(listed[index : index + 2], "big")
        if version & 0x0F0F != 0x0A0A:  # GREASE values are 0x?a?a (RFC 8701)
            return version
    return legacy_version
