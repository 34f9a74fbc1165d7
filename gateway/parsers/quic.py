"""QUIC Initial packets: the ClientHello a client sends first, behind keys anyone can derive.

A client Initial is protected with keys derived from its Destination Connection ID and a salt fixed
by the version (RFC 9001 §5.2 for QUIC v1, RFC 9369 §3.3 for v2), so an observer can remove the
header protection, decrypt the payload, gather the CRYPTO frames and read the TLS ClientHello in it.

`parse_quic_initial` reads one UDP datagram; `QuicInitialReassembler` joins a ClientHello that spans
several Initial packets (post-quantum key shares make Chrome's hello ~1.8 KB, more than one packet
holds). Nothing here raises on hostile bytes, and every loop has a bound named below.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from gateway.parsers.tls import (
    MAX_HELLO_BYTES,
    ClientHello,
    handshake_message_missing,
    parse_client_hello_handshake,
)

QUIC_V1 = 0x00000001
QUIC_V2 = 0x6B3343CF

MAX_CID = 20  # RFC 9000 §17.2: v1 (and v2) connection IDs are at most 20 bytes
MAX_COALESCED = 4  # long-header packets looked at in one datagram: Initial, 0-RTT, Handshake, spare
MAX_FRAMES = 256  # frames walked in one Initial: Chrome's chaos protection cuts a hello into tens
MAX_ACK_RANGES = 64  # extra ACK ranges skipped: a client's Initial ACKs one or two server packets
MAX_CRYPTO_BYTES = MAX_HELLO_BYTES  # CRYPTO stream bytes kept per connection: the ClientHello's bound
MAX_FRAGMENTS = 512  # CRYPTO frames kept per connection: a hello comes in tens, so sorting stays cheap
MAX_CONNECTIONS = 256  # DCIDs a reassembler tracks, oldest dropped first: ≤ 2 x 16 KiB each, 8 MiB in all
MAX_KEY_CACHE = 256  # derived key sets cached: a client's Initials share one DCID, so few are live

_SAMPLE = 16  # RFC 9001 §5.4.2: the header-protection sample is 16 bytes, 4 bytes after the PN start
_PADDING_RUN = re.compile(rb"\x00*")
FRAME_PADDING = 0x00
FRAME_PING = 0x01
FRAME_ACK = 0x02
FRAME_ACK_ECN = 0x03
FRAME_CRYPTO = 0x06


@dataclass(frozen=True, slots=True)
class _Version:
    salt: bytes
    label_prefix: bytes
    initial_type: int  # the long-header packet type bits of an Initial
    retry_type: int  # Retry packets carry no Length field


_VERSIONS = {
    QUIC_V1: _Version(bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"), b"quic", 0b00, 0b11),
    QUIC_V2: _Version(bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"), b"quicv2", 0b01, 0b00),
}


@dataclass(frozen=True, slots=True)
class QuicInitial:
    """One decrypted client Initial packet."""

    version: int  # QUIC_V1 or QUIC_V2
    dcid: bytes  # the Destination Connection ID the keys derive from
    scid: bytes
    packet_number: int
    crypto: tuple[tuple[int, bytes], ...]  # CRYPTO frames as (stream offset, data), in packet order
    hello: ClientHello | None  # the ClientHello, when this packet's CRYPTO data holds all of it

    @property
    def server_name(self) -> str | None:
        return None if self.hello is None else self.hello.server_name


@dataclass(frozen=True, slots=True)
class _LongHeader:
    version: int
    is_initial: bool
    dcid: bytes
    scid: bytes
    start: int  # first byte of the packet in the datagram
    pn_offset: int  # first byte of the (protected) packet number
    end: int  # one past the packet's last byte: the Length field bounds it, not the datagram


@dataclass(frozen=True, slots=True)
class _Keys:
    aead: AESGCM
    iv: bytes
    header: Cipher[modes.ECB]


def client_initial_keys(version: int, dcid: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(key, iv, hp) protecting a client's Initial packets for `dcid`; None for unknown versions."""
    spec = _VERSIONS.get(version)
    if spec is None:
        return None
    extract = hmac.HMAC(spec.salt, hashes.SHA256())  # HKDF-Extract(salt, DCID)
    extract.update(dcid)
    secret = _expand_label(extract.finalize(), b"client in", 32)
    prefix = spec.label_prefix
    return (
        _expand_label(secret, prefix + b" key", 16),
        _expand_label(secret, prefix + b" iv", 12),
        _expand_label(secret, prefix + b" hp", 16),
    )


def parse_quic_initial(datagram: bytes) -> QuicInitial | None:
    """The first client Initial packet of a UDP datagram (v1 or v2), decrypted; None otherwise."""
    start = 0
    for _ in range(MAX_COALESCED):
        header = _read_long_header(datagram, start)
        if header is None:
            return None
        if header.is_initial:
            return _decrypt_initial(datagram, header)
        start = header.end
    return None


class QuicInitialReassembler:
    """Joins the CRYPTO data of client Initials that share a DCID until a ClientHello is whole.

    `feed` returns the ClientHello when a datagram completes one (each time a packet holding a
    whole one is retransmitted, too: callers keep one name per flow). Only Initials protected with
    their own DCID are read, which covers a client's whole first flight; Initials sent after the
    server changed the DCID (RFC 9001 §5.2) are not matched to their connection.
    """

    __slots__ = ("_max_connections", "_pending")

    def __init__(self, max_connections: int = MAX_CONNECTIONS) -> None:
        self._max_connections = max_connections
        self._pending: OrderedDict[tuple[int, bytes], dict[int, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def feed(self, datagram: bytes) -> ClientHello | None:
        initial = parse_quic_initial(datagram)
        if initial is None:
            return None
        key = (initial.version, initial.dcid)
        fragments = self._pending.pop(key, {})
        if initial.hello is not None:
            return initial.hello
        _merge(fragments, initial.crypto)
        stream = _contiguous(fragments.items())
        missing = handshake_message_missing(stream)
        if missing == 0:
            return parse_client_hello_handshake(stream)
        if missing > 0:
            self._pending[key] = fragments
            while len(self._pending) > self._max_connections:
                self._pending.popitem(last=False)
        return None


def _merge(fragments: dict[int, bytes], new: tuple[tuple[int, bytes], ...]) -> None:
    """Add CRYPTO fragments by offset, keeping at most 2 x MAX_CRYPTO_BYTES per connection."""
    held = sum(len(data) for data in fragments.values())
    for offset, data in new:
        if held + len(data) > 2 * MAX_CRYPTO_BYTES or len(fragments) >= MAX_FRAGMENTS:
            return
        if len(data) > len(fragments.get(offset, b"")):
            held += len(data) - len(fragments.get(offset, b""))
            fragments[offset] = data


def _contiguous(fragments: Iterable[tuple[int, bytes]]) -> bytes:
    """The CRYPTO stream from offset 0 up to its first gap."""
    stream = bytearray()
    for offset, data in sorted(fragments):
        if offset > len(stream):
            break
        stream += data[len(stream) - offset :]
    return bytes(stream)


def _decrypt_initial(datagram: bytes, header: _LongHeader) -> QuicInitial | None:
    keys = _cached_keys(header.version, header.dcid)
    opened = None if keys is None else _open(datagram, header, keys)
    if opened is None:
        return None
    packet_number, plaintext = opened
    crypto = _crypto_frames(plaintext)
    hello = parse_client_hello_handshake(_contiguous(crypto))
    return QuicInitial(header.version, header.dcid, header.scid, packet_number, crypto, hello)


@lru_cache(maxsize=MAX_KEY_CACHE)
def _cached_keys(version: int, dcid: bytes) -> _Keys | None:
    derived = client_initial_keys(version, dcid)
    if derived is None:
        return None
    key, iv, hp = derived
    # RFC 9001 §5.4.3 defines the header-protection mask as AES-ECB of one block: not a choice here.
    return _Keys(AESGCM(key), iv, Cipher(algorithms.AES(hp), modes.ECB()))  # noqa: S305


def _open(datagram: bytes, header: _LongHeader, keys: _Keys) -> tuple[int, bytes] | None:
    """(packet number, plaintext) after removing header protection and the AEAD; None if it fails."""
    sample_at = header.pn_offset + 4
    if sample_at + _SAMPLE > header.end:
        return None
    mask = keys.header.encryptor().update(datagram[sample_at : sample_at + _SAMPLE])
    first = datagram[header.start] ^ (mask[0] & 0x0F)  # long header: the low 4 bits are protected
    pn_length = (first & 0x03) + 1
    protected = datagram[header.pn_offset : header.pn_offset + pn_length]
    pn_bytes = bytes(byte ^ bit for byte, bit in zip(protected, mask[1 : 1 + pn_length], strict=True))
    packet_number = int.from_bytes(pn_bytes, "big")
    aad = bytes([first]) + datagram[header.start + 1 : header.pn_offset] + pn_bytes
    nonce = (int.from_bytes(keys.iv, "big") ^ packet_number).to_bytes(12, "big")
    ciphertext = datagram[header.pn_offset + pn_length : header.end]
    try:
        return packet_number, keys.aead.decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        return None


def _read_long_header(datagram: bytes, start: int) -> _LongHeader | None:
    """The long header at `start` of a v1/v2 packet other than Retry; None for anything else."""
    if start + 6 > len(datagram) or not datagram[start] & 0x80:
        return None
    version = int.from_bytes(datagram[start + 1 : start + 5], "big")
    spec = _VERSIONS.get(version)
    if spec is None:
        return None
    packet_type = (datagram[start] >> 4) & 0x03
    dcid, pos = _read_cid(datagram, start + 5)
    scid, pos = _read_cid(datagram, pos)
    if pos < 0 or packet_type == spec.retry_type:
        return None
    if packet_type == spec.initial_type:
        token_length, pos = _read_varint(datagram, pos)
        pos = pos + token_length if pos >= 0 else pos
    length, pos = _read_varint(datagram, pos)
    if pos < 0 or pos + length > len(datagram):
        return None
    return _LongHeader(version, packet_type == spec.initial_type, dcid, scid, start, pos, pos + length)


def _read_cid(datagram: bytes, pos: int) -> tuple[bytes, int]:
    """(connection ID, position after it); position -1 when cut or longer than MAX_CID."""
    if pos < 0 or pos >= len(datagram) or datagram[pos] > MAX_CID:
        return b"", -1
    end = pos + 1 + datagram[pos]
    return (datagram[pos + 1 : end], end) if end <= len(datagram) else (b"", -1)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it) of a QUIC variable-length integer (RFC 9000 §16); -1 when cut."""
    if pos < 0 or pos >= len(data):
        return 0, -1
    size = 1 << (data[pos] >> 6)
    if pos + size > len(data):
        return 0, -1
    return int.from_bytes(data[pos : pos + size], "big") & ((1 << (8 * size - 2)) - 1), pos + size


def _crypto_frames(plaintext: bytes) -> tuple[tuple[int, bytes], ...]:
    """The CRYPTO frames of an Initial payload, walking PADDING, PING and ACK frames between them.

    The walk stops at the first other frame type (CONNECTION_CLOSE, or anything RFC 9000 §12.4
    forbids in an Initial) or malformed frame, keeping the frames before it.
    """
    frames: list[tuple[int, bytes]] = []
    pos = 0
    for _ in range(MAX_FRAMES):
        if pos >= len(plaintext):
            break
        kind = plaintext[pos]
        if kind == FRAME_PADDING:
            pos = _skip_padding(plaintext, pos)
        elif kind == FRAME_PING:
            pos += 1
        elif kind in (FRAME_ACK, FRAME_ACK_ECN):
            pos = _skip_ack(plaintext, pos + 1, ecn=kind == FRAME_ACK_ECN)
        elif kind == FRAME_CRYPTO:
            pos = _read_crypto(plaintext, pos + 1, frames)
        else:
            break
        if pos < 0:
            break
    return tuple(frames)


def _skip_padding(plaintext: bytes, pos: int) -> int:
    """The position after the run of PADDING bytes at `pos`, in one C-speed step."""
    run = _PADDING_RUN.match(plaintext, pos)
    return pos + 1 if run is None else max(run.end(), pos + 1)


def _read_crypto(plaintext: bytes, pos: int, frames: list[tuple[int, bytes]]) -> int:
    """Append the CRYPTO frame at `pos` (after its type) to `frames`; the position after it, or -1."""
    offset, pos = _read_varint(plaintext, pos)
    length, pos = _read_varint(plaintext, pos)
    if pos < 0 or pos + length > len(plaintext):
        return -1
    if offset + length <= MAX_CRYPTO_BYTES:  # data beyond the ClientHello's bound is never read
        frames.append((offset, plaintext[pos : pos + length]))
    return pos + length


def _skip_ack(plaintext: bytes, pos: int, *, ecn: bool) -> int:
    """The position after an ACK frame's fields (RFC 9000 §19.3), or -1."""
    _largest, pos = _read_varint(plaintext, pos)
    _delay, pos = _read_varint(plaintext, pos)
    range_count, pos = _read_varint(plaintext, pos)
    if range_count > MAX_ACK_RANGES:
        return -1
    fields = 1 + 2 * range_count + (3 if ecn else 0)  # first range, (gap, length) pairs, ECN counts
    for _ in range(fields):
        _value, pos = _read_varint(plaintext, pos)
    return pos


def _expand_label(secret: bytes, label: bytes, length: int) -> bytes:
    """HKDF-Expand-Label of TLS 1.3 (RFC 8446 §7.1) with an empty context, over SHA-256."""
    full_label = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full_label)]) + full_label + b"\x00"
    return HKDFExpand(hashes.SHA256(), length, info).derive(secret)
