"""Live capture from an interface through libpcap (pcapy-ng), in batches for the vectorised path.

libpcap hands each packet's header with its *wire* length (``getlen``) as well as the captured
length: Mouchard counts the wire length, so a short snaplen cuts what is kept, never what is
counted. The handle is non-blocking, so an idle link never hangs the loop; the BPF filter is
compiled and checked before the capture starts.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

import numpy as np

from gateway.sources.capfile import PAD, PacketBatch

# Packets taken from the kernel per read; the ring buffer holds the rest meanwhile.
MAX_BATCH = 65_536
# Kernel ring buffer: about a second of a busy 100 Mb/s lab at full-size frames.
BUFFER_BYTES = 32 << 20
# libpcap's read timeout: how long the kernel may hold packets in a block before waking us.
TIMEOUT_MS = 100
OFFLOADS = ("gro", "lro", "gso", "tso")


class CaptureSetupError(Exception):
    """The capture cannot start; the message says what the user must do (exit 2)."""


@dataclass(frozen=True, slots=True)
class CaptureStats:
    received: int
    dropped: int  # by the kernel: the ring buffer was full
    if_dropped: int  # by the interface or its driver


class LiveCapture:
    def __init__(self, interface: str, snaplen: int = 65535, bpf: str = "") -> None:
        import pcapy  # noqa: PLC0415  (a C extension only the live gateway needs)

        self.interface = interface
        self._pcapy: Any = pcapy
        try:
            handle = pcapy.create(interface)
            handle.set_snaplen(snaplen)
            handle.set_promisc(1)
            handle.set_timeout(TIMEOUT_MS)
            handle.set_buffer_size(BUFFER_BYTES)
            handle.activate()
        except pcapy.PcapError as exc:
            raise CaptureSetupError(_explain(interface, str(exc))) from None
        self.linktype = int(handle.datalink())
        if bpf:
            try:
                pcapy.compile(self.linktype, snaplen, bpf, 1, 0)
            except pcapy.PcapError as exc:
                raise CaptureSetupError(f"capture.bpf_filter {bpf!r} does not compile: {exc}") from None
            handle.setfilter(bpf)
        try:
            handle.setnonblock(1)
        except pcapy.PcapError as exc:  # e.g. the interface is down
            raise CaptureSetupError(_explain(interface, str(exc))) from None
        self._handle: Any = handle
        self._ts: list[tuple[int, int]] = []
        self._lens: list[int] = []
        self._caps: list[int] = []
        self._data: list[bytes] = []

    def fileno(self) -> int:
        return int(self._handle.getfd())

    def read(self, max_packets: int = MAX_BATCH) -> PacketBatch | None:
        """The packets ready now (none on an idle link: it never blocks)."""
        self._ts, self._lens, self._caps, self._data = [], [], [], []
        try:
            self._handle.dispatch(max_packets, self._packet)
        except self._pcapy.PcapError as exc:
            raise CaptureSetupError(f"capture on {self.interface} failed: {exc}") from None
        if not self._data:
            return None
        return _batch(self._ts, self._lens, self._caps, self._data, self.linktype)

    def _packet(self, header: Any, data: bytes) -> None:
        self._ts.append(header.getts())
        self._lens.append(header.getlen())
        self._caps.append(len(data))
        self._data.append(data)

    def stats(self) -> CaptureStats:
        received, dropped, if_dropped = self._handle.stats()
        return CaptureStats(int(received), int(dropped), int(if_dropped))

    def close(self) -> None:
        self._handle.close()


def _batch(
    ts: list[tuple[int, int]], lens: list[int], caps: list[int], data: list[bytes], link: int
) -> PacketBatch:
    caplen = np.asarray(caps, dtype=np.int64)
    offset = np.zeros(len(caps), dtype=np.int64)
    np.cumsum(caplen[:-1], out=offset[1:])
    raw = b"".join(data)
    buf = np.zeros(len(raw) + PAD, dtype=np.uint8)
    buf[: len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    stamps = np.asarray(ts, dtype=np.int64).reshape(-1, 2)
    return PacketBatch(
        buf=buf,
        offset=offset,
        caplen=caplen,
        wirelen=np.maximum(np.asarray(lens, dtype=np.int64), caplen),
        ts_ns=stamps[:, 0] * 1_000_000_000 + stamps[:, 1] * 1000,
        linktype=np.full(len(caps), link, dtype=np.int32),
    )


def _explain(interface: str, message: str) -> str:
    text = message.lower()
    if "permission" in text or "operation not permitted" in text:
        return (
            f"no permission to capture on {interface}: Mouchard needs CAP_NET_RAW (and CAP_NET_ADMIN to "
            "turn offloads off). Run it from its systemd unit, as root, or grant them once with "
            "`sudo setcap cap_net_raw,cap_net_admin+eip $(readlink -f .venv/bin/python)`"
        )
    if "f_getfl" in text or "network is down" in text:
        return f"{interface} is down: bring it up (`ip link set {interface} up`) and start again ({message})"
    if "no such device" in text or "doesn't exist" in text:
        return f"no interface named {interface}: set capture.interface to one of `ip -br link` ({message})"
    return f"cannot capture on {interface}: {message}"


def disable_offloads(interface: str) -> str | None:
    """Turn receive/segmentation offloads off (as Zeek and Suricata advise); a warning when it cannot.

    With GRO/LRO on, the kernel hands capture merged frames of up to 64 KB: bytes stay right but
    packet counts are not wire counts.
    """
    ethtool = shutil.which("ethtool")
    if ethtool is None:
        return f"ethtool not found: offloads on {interface} stay as they are (apt-get install ethtool)"
    args = [ethtool, "-K", interface]
    for feature in OFFLOADS:
        args += [feature, "off"]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0 and "not permitted" in done.stderr:
        return f"cannot turn offloads off on {interface} (needs CAP_NET_ADMIN): packets may be merged frames"
    return None
