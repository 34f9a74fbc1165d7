"""pcap and pcapng writers for synthetic captures.

Timestamps are a float of seconds, or an int of nanoseconds since the epoch (exact). Frames longer than
the snapshot length are cut and their original length kept, as a capture would. The writers buffer
in large blocks: a million records take about a second.
"""

from __future__ import annotations

import struct
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from gateway.samples.frames import LinkType

Timestamp = float | int
"""Seconds since the epoch (float), or nanoseconds since the epoch (int)."""

_NS = 1_000_000_000
_BUFFER = 1 << 20
PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
SHB_TYPE, IDB_TYPE, SPB_TYPE, EPB_TYPE = 0x0A0D0D0A, 1, 3, 6
CUSTOM_BLOCK_COPY, CUSTOM_BLOCK_NO_COPY = 0x00000BAD, 0x40000BAD
PEN_DOCUMENTATION = 32473  # RFC 5612: the enterprise number reserved for examples


def _split(ts: Timestamp, units_per_second: int) -> tuple[int, int]:
    """(seconds, sub-second units) of a timestamp."""
    if isinstance(ts, int):
        seconds, ns = divmod(ts, _NS)
        return seconds, ns * units_per_second // _NS
    seconds = int(ts // 1)
    fraction = round((ts - seconds) * units_per_second)
    if fraction >= units_per_second:
        return seconds + 1, fraction - units_per_second
    return seconds, fraction


class PcapWriter:
    """A classic pcap file (microsecond or nanosecond timestamps, either byte order)."""

    def __init__(
        self,
        path: str | Path,
        linktype: int = LinkType.ETHERNET,
        *,
        nanosecond: bool = False,
        big_endian: bool = False,
        snaplen: int = 65535,
    ) -> None:
        order = ">" if big_endian else "<"
        self._record = struct.Struct(order + "IIII")
        self._units = _NS if nanosecond else 1_000_000
        self._snaplen = snaplen
        self._file: BinaryIO = Path(path).open("wb", buffering=_BUFFER)  # noqa: SIM115 closed by close()
        magic = PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US
        self._file.write(struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, int(linktype)))
        self.packets = 0

    def write(self, ts: Timestamp, frame: bytes, orig_len: int | None = None) -> None:
        """One record; `orig_len` defaults to the frame's length (before any snaplen cut)."""
        length = len(frame)
        if orig_len is None:
            orig_len = length
        if length > self._snaplen:
            frame = frame[: self._snaplen]
            length = self._snaplen
        if type(ts) is int:  # the fast path: integer nanoseconds
            seconds, ns = divmod(ts, _NS)
            fraction = ns if self._units == _NS else ns // 1000
        else:
            seconds, fraction = _split(ts, self._units)
        self._file.write(self._record.pack(seconds, fraction, length, orig_len) + frame)
        self.packets += 1

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


class PcapngWriter:
    """A pcapng file: one section, interfaces added with `add_interface`, then EPB/SPB/custom blocks."""

    def __init__(
        self,
        path: str | Path,
        *,
        big_endian: bool = False,
        application: str = "Mouchard samples",
        os_name: str | None = None,
        hardware: str | None = None,
        comment: str | None = None,
    ) -> None:
        self._order = ">" if big_endian else "<"
        self._epb = struct.Struct(self._order + "IIIIIII")
        self._file: BinaryIO = Path(path).open("wb", buffering=_BUFFER)  # noqa: SIM115 closed by close()
        self._interfaces: list[tuple[int, int]] = []  # (snaplen, timestamp units per second)
        options = self._options([(1, comment), (2, hardware), (3, os_name), (4, application)])
        body = struct.pack(self._order + "IHHq", 0x1A2B3C4D, 1, 0, -1) + options
        self.write_block(SHB_TYPE, body)
        self.packets = 0

    def _option(self, code: int, value: bytes) -> bytes:
        return struct.pack(self._order + "HH", code, len(value)) + _pad4(value)

    def _options(self, options: list[tuple[int, str | bytes | None]]) -> bytes:
        """Encoded options ending with opt_endofopt; empty when none is set."""
        encoded = b"".join(
            self._option(code, value.encode() if isinstance(value, str) else value)
            for code, value in options
            if value is not None
        )
        return encoded + self._option(0, b"") if encoded else b""

    def write_block(self, block_type: int, body: bytes) -> None:
        """Any block (`body` is padded to 4 bytes): also the way to insert block types readers must skip."""
        body = _pad4(body)
        length = 12 + len(body)
        self._file.write(
            struct.pack(self._order + "II", block_type, length)
            + body
            + struct.pack(self._order + "I", length)
        )

    def add_interface(
        self,
        linktype: int = LinkType.ETHERNET,
        snaplen: int = 65535,
        tsresol: int = 6,
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> int:
        """An Interface Description Block; `tsresol` as in if_tsresol (6: µs, 9: ns, 0x80|n: 2^-n s)."""
        units = 1 << (tsresol & 0x7F) if tsresol & 0x80 else 10**tsresol
        resolution = bytes([tsresol]) if tsresol != 6 else None
        options = self._options([(2, name), (3, description), (9, resolution)])
        self.write_block(IDB_TYPE, struct.pack(self._order + "HHI", int(linktype), 0, snaplen) + options)
        self._interfaces.append((snaplen, units))
        return len(self._interfaces) - 1

    def write(
        self,
        ts: Timestamp,
        frame: bytes,
        orig_len: int | None = None,
        *,
        interface: int = 0,
        flags: int | None = None,
        comment: str | None = None,
    ) -> None:
        """An Enhanced Packet Block; `flags` is epb_flags (bits 0-1: direction, 1 inbound, 2 outbound)."""
        snaplen, units = self._interfaces[interface]
        if orig_len is None:
            orig_len = len(frame)
        if snaplen and len(frame) > snaplen:
            frame = frame[:snaplen]
        stamp = ts * units // _NS if isinstance(ts, int) else round(ts * units)
        options = b""
        if flags is not None or comment is not None:
            flag_bytes = None if flags is None else struct.pack(self._order + "I", flags)
            options = self._options([(2, flag_bytes), (1, comment)])
        length = 32 + len(frame) + (-len(frame) % 4) + len(options)
        self._file.write(
            self._epb.pack(EPB_TYPE, length, interface, stamp >> 32, stamp & 0xFFFFFFFF, len(frame), orig_len)
        )
        self._file.write(_pad4(frame) + options + struct.pack(self._order + "I", length))
        self.packets += 1

    def write_simple(self, frame: bytes, orig_len: int | None = None) -> None:
        """A Simple Packet Block (no timestamp, first interface)."""
        snaplen = self._interfaces[0][0]
        if orig_len is None:
            orig_len = len(frame)
        if snaplen and len(frame) > snaplen:
            frame = frame[:snaplen]
        self.write_block(SPB_TYPE, struct.pack(self._order + "I", orig_len) + frame)
        self.packets += 1

    def write_custom_block(self, data: bytes, *, pen: int = PEN_DOCUMENTATION, copyable: bool = True) -> None:
        """A Custom Block (0x00000BAD, or 0x40000BAD when it must not be copied) that readers must skip."""
        kind = CUSTOM_BLOCK_COPY if copyable else CUSTOM_BLOCK_NO_COPY
        self.write_block(kind, struct.pack(self._order + "I", pen) + data)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
