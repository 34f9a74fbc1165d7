"""Read pcap and pcapng files in blocks, as batches of packets for the vectorised parsers.

The file is read in chunks of ``CHUNK_BYTES``; only the record walk (one ``unpack_from`` per
record, to find where the next one starts) runs per packet in Python. Everything else about a
packet (timestamps, lengths, link type) is gathered with numpy over the batch, so a file larger
than memory streams through a fixed-size buffer.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BufferedReader
from pathlib import Path

import numpy as np
import numpy.typing as npt

from gateway.parsers.packed import gather_u32

# Read this much of the file at a time: big enough that the per-chunk overhead vanishes,
# small enough that peak memory stays far below the 300 MB budget for any file size.
CHUNK_BYTES = 8 << 20
# No capture tool writes records longer than this (libpcap's MAXIMUM_SNAPLEN is 262144);
# a longer record length means the file is damaged, and we stop reading it.
MAX_RECORD = 262_144
# An original (wire) length above this is damage too: no link carries larger frames (GRO merges TCP
# segments to 64 KiB at most). Counting it as it stands would add up to 4 GiB to a device per packet.
MAX_WIRE = MAX_RECORD
# Interfaces one pcapng section may describe: capture tools write one per capture interface (a
# handful). Further IDBs are skipped (their packets count as an unsupported link): without a bound,
# IDBs alternating with packets made the reader quadratic in the file size.
MAX_INTERFACES = 256
# Batches a pcapng file may be cut into early: a new section, or an interface block after packets,
# ends the batch being gathered. A real file has a few (`cat` of rotated captures: one per file);
# a hostile one of tiny sections made every packet a batch, minutes for a few MB.
MAX_BATCH_SPLITS = 1024
# if_tsoffset beyond this many seconds (about 126 years either way) is damage: it is clamped so the
# nanosecond timestamps stay inside int64.
MAX_TS_OFFSET_S = 4_000_000_000
# Zero bytes after the data, so vectorised header reads past a short packet's end stay in the
# array; every such read is masked out afterwards by the caplen checks.
PAD = 128

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D


class CaptureError(Exception):
    """The file cannot be read as a capture at all (exit 2, naming the file)."""


@dataclass(slots=True)
class PacketBatch:
    """Packets of one block of a capture: data offsets into ``buf`` and per-packet metadata."""

    buf: npt.NDArray[np.uint8]
    offset: npt.NDArray[np.int64]
    caplen: npt.NDArray[np.int64]
    wirelen: npt.NDArray[np.int64]
    ts_ns: npt.NDArray[np.int64]
    linktype: npt.NDArray[np.int32]

    def __len__(self) -> int:
        return int(self.offset.shape[0])

    def payload(self, index: int, start: int, end: int) -> bytes:
        """Captured bytes ``[start, end)`` of packet ``index`` (offsets relative to the packet)."""
        base = int(self.offset[index])
        stop = min(end, int(self.caplen[index]))
        return self.buf[base + start : base + stop].tobytes() if stop > start else b""


@dataclass(slots=True)
class ReadStats:
    """What the reader saw; a damaged file is reported, never raised past the CLI."""

    packets: int = 0
    bytes_read: int = 0  # file offset up to which records were consumed (for progress)
    skipped_blocks: int = 0
    damaged: str | None = None
    truncated_tail: int = 0
    interfaces: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Interface:
    linktype: int
    ns_per_unit_num: int = 1000  # pcapng default resolution: microseconds
    ns_per_unit_den: int = 1
    offset_s: int = 0


def open_capture(path: str | os.PathLike[str], stats: ReadStats | None = None) -> Iterator[PacketBatch]:
    """Yield batches from a pcap or pcapng file; raise CaptureError if it is neither."""
    p = Path(path)
    try:
        fh = p.open("rb")
    except OSError as exc:
        raise CaptureError(f"{p}: cannot open: {exc.strerror}") from exc
    with fh:
        head = fh.read(24)
        if len(head) < 4:
            raise CaptureError(f"{p}: empty or too short to be a capture ({len(head)} bytes)")
        magic_le = struct.unpack_from("<I", head)[0]
        magic_be = struct.unpack_from(">I", head)[0]
        st = stats if stats is not None else ReadStats()
        fh.seek(0)
        if magic_le in (PCAP_MAGIC_US, PCAP_MAGIC_NS) or magic_be in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            yield from _read_pcap(fh, p, st)
        elif magic_le == PCAPNG_SHB:
            yield from _read_pcapng(fh, p, st)
        else:
            raise CaptureError(
                f"{p}: not a pcap or pcapng file (starts with {head[:4].hex()}); "
                "save captures in pcap or pcapng format (tcpdump -w, Wireshark 'Save as')"
            )


class _Reader:
    """A window over the file: ``arr[pos:end]`` holds unread bytes, followed by PAD zero bytes.

    Each refill reads straight into a new numpy array (``readinto``), so the batch built on it
    needs no copy; the unread tail of the previous window moves to its front.
    """

    def __init__(self, fh: BufferedReader, start: int) -> None:
        self.fh = fh
        self.arr = np.zeros(PAD, np.uint8)
        self.pos = 0
        self.end = 0
        self.base = start  # file offset of arr[0]
        self.eof = False

    def refill(self) -> bool:
        """Read another chunk after the unread bytes; False at end of file."""
        if self.eof:
            return False
        left = self.end - self.pos
        size = left + CHUNK_BYTES
        arr = np.empty(size + PAD, np.uint8)
        arr[:left] = self.arr[self.pos : self.end]
        got = self.fh.readinto(arr.data[left:size])
        if not got:
            self.eof = True
            return False
        arr[left + got : left + got + PAD] = 0
        self.base += self.pos
        self.arr, self.pos, self.end = arr, 0, left + got
        return True

    @property
    def unread(self) -> int:
        return self.end - self.pos


def _read_pcap(fh: BufferedReader, path: Path, st: ReadStats) -> Iterator[PacketBatch]:
    head = fh.read(24)
    if len(head) < 24:
        raise CaptureError(f"{path}: pcap header cut short ({len(head)} of 24 bytes)")
    magic = struct.unpack_from("<I", head)[0]
    endian = "<" if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS) else ">"
    if endian == ">":
        magic = struct.unpack_from(">I", head)[0]
    nanos = magic == PCAP_MAGIC_NS
    linktype = struct.unpack_from(endian + "I", head, 20)[0] & 0x0FFFFFFF
    st.interfaces.append(linktype)
    rd = _Reader(fh, 24)
    incl_at = struct.Struct(endian + "8xI").unpack_from
    while rd.refill():
        buf, end = rd.arr.data, rd.end
        pos = rd.pos
        starts: list[int] = []
        append = starts.append
        last = end - 16
        # The hot loop: one unpack per record; a record running past the window ends it.
        while pos <= last:
            nxt = pos + 16 + incl_at(buf, pos)[0]
            if nxt > end:
                break
            append(pos)
            pos = nxt
        if pos <= last and (incl := incl_at(buf, pos)[0]) > MAX_RECORD:
            st.damaged = f"record at byte {rd.base + pos} claims {incl} bytes (more than {MAX_RECORD})"
        rd.pos = pos
        st.bytes_read = rd.base + pos
        if starts:
            yield _pcap_batch(rd.arr, starts, endian, nanos, linktype, st, rd.base)
        if st.damaged:
            return
    st.truncated_tail = rd.unread


def _pcap_batch(
    arr: npt.NDArray[np.uint8],
    starts: list[int],
    endian: str,
    nanos: bool,
    linktype: int,
    st: ReadStats,
    base: int,
) -> PacketBatch:
    rec = np.asarray(starts, dtype=np.int64)
    big = endian == ">"
    incl = gather_u32(arr, rec + 8, big).astype(np.int64)
    absurd = incl > MAX_RECORD
    if absurd.any():
        # A length that fit in the window but no capture tool writes: the file is damaged here.
        k = int(np.argmax(absurd))
        where, claim = base + int(rec[k]), int(incl[k])
        st.damaged = f"record at byte {where} claims {claim} bytes (more than {MAX_RECORD})"
        rec, incl = rec[:k], incl[:k]
    sec = gather_u32(arr, rec, big).astype(np.int64)
    frac = gather_u32(arr, rec + 4, big).astype(np.int64)
    orig = gather_u32(arr, rec + 12, big).astype(np.int64)
    ts = sec * 1_000_000_000 + (frac if nanos else frac * 1000)
    st.packets += len(rec)
    return PacketBatch(
        buf=arr,
        offset=rec + 16,
        caplen=incl,
        wirelen=np.maximum(np.minimum(orig, MAX_WIRE), incl),
        ts_ns=ts,
        linktype=np.full(len(rec), linktype, dtype=np.int32),
    )


def _read_pcapng(fh: BufferedReader, path: Path, st: ReadStats) -> Iterator[PacketBatch]:
    rd = _Reader(fh, 0)
    walk = _PcapngWalk(path, st)
    need_data = True
    while True:
        if need_data and not rd.refill():
            break
        rd.pos, need_data = walk.walk(rd.arr.data, rd.pos, rd.end, rd.base)
        st.bytes_read = rd.base + rd.pos
        if walk.epb or walk.spb:
            yield _pcapng_batch(rd.arr, walk, st, path)
        if st.damaged:
            return
    st.truncated_tail = rd.unread


class _PcapngWalk:
    """The per-block loop of pcapng: collects packet blocks, handles section and interface blocks."""

    def __init__(self, path: Path, st: ReadStats) -> None:
        self.path, self.st = path, st
        self.ifaces: list[_Interface] = []
        self.batch_ifaces: list[_Interface] = []
        self.endian = "<"
        self.first = True
        self.epb: list[int] = []
        self.spb: list[int] = []
        self.splits = 0

    def walk(self, buf: memoryview, pos: int, end: int, base: int) -> tuple[int, bool]:
        """Walk blocks from ``pos``; return (next position, whether more file data is needed)."""
        self.epb, self.spb = [], []
        self.batch_ifaces = self.ifaces
        epb_append = self.epb.append
        u32x2 = struct.Struct(self.endian + "II").unpack_from
        while pos + 12 <= end:
            btype, blen = u32x2(buf, pos)
            if btype == PCAPNG_SHB:
                if self.epb or self.spb:
                    return self._split(pos, base)  # a new section may change byte order
                if not self._section(buf, pos, base):
                    return pos, False
                u32x2 = struct.Struct(self.endian + "II").unpack_from
                blen = u32x2(buf, pos)[1]
            elif self.first:
                raise CaptureError(f"{self.path}: pcapng file does not start with a section header block")
            if blen < 12 or blen % 4 or blen > MAX_RECORD + 64:
                self.st.damaged = f"block at byte {base + pos} has an impossible length {blen}"
                return pos, False
            if pos + blen > end:
                return pos, True
            if btype == 6:
                epb_append(pos)
            elif btype == 3:
                self.spb.append(pos)
            elif btype == 1 and len(self.ifaces) >= MAX_INTERFACES:
                self.st.skipped_blocks += 1
            elif btype == 1:
                if self.epb or self.spb:
                    return self._split(pos, base)  # keep the interface table of a batch fixed
                self.ifaces.append(_parse_idb(bytes(buf[pos : pos + blen]), self.endian))
                self.st.interfaces.append(self.ifaces[-1].linktype)
            elif btype != PCAPNG_SHB:
                self.st.skipped_blocks += 1
            pos += blen
        return pos, True

    def _split(self, pos: int, base: int) -> tuple[int, bool]:
        """End the batch before the block at ``pos``; beyond MAX_BATCH_SPLITS the file counts as damaged."""
        self.splits += 1
        if self.splits > MAX_BATCH_SPLITS:
            self.st.damaged = (
                f"block at byte {base + pos} starts more than {MAX_BATCH_SPLITS} sections or late interface "
                "blocks; merge captures with mergecap rather than concatenating them"
            )
        return pos, False

    def _section(self, buf: memoryview, pos: int, base: int) -> bool:
        bom_le = struct.unpack_from("<I", buf, pos + 8)[0]
        if bom_le == PCAPNG_BOM:
            self.endian = "<"
        elif struct.unpack_from(">I", buf, pos + 8)[0] == PCAPNG_BOM:
            self.endian = ">"
        else:
            self.st.damaged = f"section header at byte {base + pos} has a bad byte-order magic"
            return False
        self.ifaces = []
        self.batch_ifaces = self.ifaces
        self.first = False
        return True


def _parse_idb(block: bytes, endian: str) -> _Interface:
    linktype = struct.unpack_from(endian + "H", block, 8)[0]
    iface = _Interface(linktype=linktype)
    pos, end = 16, len(block) - 4
    while pos + 4 <= end:
        code, length = struct.unpack_from(endian + "HH", block, pos)
        if code == 0:
            break
        value = block[pos + 4 : pos + 4 + length]
        if code == 9 and length >= 1:  # if_tsresol
            res = value[0]
            if res & 0x80:
                iface.ns_per_unit_num, iface.ns_per_unit_den = 1_000_000_000, 1 << (res & 0x7F)
            elif res <= 9:
                iface.ns_per_unit_num, iface.ns_per_unit_den = 10 ** (9 - res), 1
            else:
                iface.ns_per_unit_num, iface.ns_per_unit_den = 1, 10 ** (res - 9)
        elif code == 14 and length == 8:  # if_tsoffset, seconds
            offset = struct.unpack_from(endian + "q", value)[0]
            iface.offset_s = max(-MAX_TS_OFFSET_S, min(MAX_TS_OFFSET_S, offset))
        pos += 4 + ((length + 3) & ~3)
    return iface


def _pcapng_batch(arr: npt.NDArray[np.uint8], walk: _PcapngWalk, st: ReadStats, path: Path) -> PacketBatch:
    epb, spb, endian, ifaces = walk.epb, walk.spb, walk.endian, walk.batch_ifaces
    if not ifaces:
        raise CaptureError(f"{path}: packet block before any interface description block")
    big = endian == ">"
    rec = np.asarray(epb, dtype=np.int64)
    iface = gather_u32(arr, rec + 8, big).astype(np.int64)
    bad_iface = iface >= len(ifaces)
    iface[bad_iface] = 0
    hi = gather_u32(arr, rec + 12, big).astype(np.uint64)
    lo = gather_u32(arr, rec + 16, big).astype(np.uint64)
    units = (hi << np.uint64(32)) | lo
    caplen = gather_u32(arr, rec + 20, big).astype(np.int64)
    orig = gather_u32(arr, rec + 24, big).astype(np.int64)
    blen = gather_u32(arr, rec + 4, big).astype(np.int64)
    # A captured length longer than its block is damage: clamp it to the block.
    caplen = np.minimum(caplen, np.maximum(blen - 32, 0))
    ts = np.zeros(len(epb), dtype=np.int64)
    link = np.zeros(len(epb), dtype=np.int32)
    for idx in np.unique(iface).tolist():  # the interfaces this batch uses, not all of the section's
        ifc = ifaces[idx]
        sel = iface == idx
        link[sel] = ifc.linktype
        u = units[sel]
        if ifc.ns_per_unit_den == 1:
            ns = u.astype(np.int64) * ifc.ns_per_unit_num
        else:
            ns = (u.astype(np.float64) * ifc.ns_per_unit_num / ifc.ns_per_unit_den).astype(np.int64)
        ts[sel] = ns + ifc.offset_s * 1_000_000_000
    link[bad_iface] = -1
    offset = rec + 28
    if spb:
        # Simple packet blocks: no interface id (always 0) and no timestamp (take the previous one).
        srec = np.asarray(spb, dtype=np.int64)
        s_orig = gather_u32(arr, srec + 8, big).astype(np.int64)
        s_blen = gather_u32(arr, srec + 4, big).astype(np.int64)
        s_cap = np.clip(s_blen - 16, 0, s_orig)  # a block too short for its header holds no data
        all_rec = np.concatenate([rec, srec])
        order = np.argsort(all_rec, kind="stable")
        offset = np.concatenate([offset, srec + 12])[order]
        caplen = np.concatenate([caplen, s_cap])[order]
        orig = np.concatenate([orig, s_orig])[order]
        link = np.concatenate([link, np.full(len(spb), ifaces[0].linktype, np.int32)])[order]
        ts_all = np.concatenate([ts, np.full(len(spb), -1, np.int64)])[order]
        ts = _fill_forward(ts_all)
    st.packets += len(offset)
    return PacketBatch(
        buf=arr,
        offset=offset,
        caplen=caplen,
        wirelen=np.maximum(np.minimum(orig, MAX_WIRE), caplen),
        ts_ns=ts,
        linktype=link,
    )


def _fill_forward(ts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Replace -1 (no timestamp) by the previous packet's time (0 at the start)."""
    known = ts >= 0
    idx = np.where(known, np.arange(len(ts)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = ts[idx]
    out[out < 0] = 0
    return out
