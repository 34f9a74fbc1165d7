"""Live capture from an interface through libpcap (pcapy-ng), in batches for the vectorised path.

libpcap hands each packet's header with its *wire* length (``getlen``) as well as the captured
length: Mouchard counts the wire length, so a short snaplen cuts what is kept, never what is
counted. The handle is non-blocking, so an idle link never hangs the loop; the BPF filter is
compiled and checked before the capture starts.

Before opening, the interface's state is read (`link_state`): a name that does not exist is a
set-up error, an interface that exists but is down is an `InterfaceDownError`, which `mouchard run`
treats as "wait for it" (libpcap opens a dead handle on a down interface on Linux, and no packet ever
comes). While capturing, a failure (the interface went down, or was deleted) is a `CaptureError`:
the handle is dead and a new `LiveCapture` is the way back.
"""

from __future__ import annotations

import errno
import fcntl
import shutil
import socket
import struct
import subprocess
from dataclasses import dataclass
from enum import StrEnum
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
# <linux/if.h> and <linux/sockios.h>: an interface's flags, read with one ioctl in the caller's namespace.
SIOCGIFFLAGS = 0x8913
IFF_UP = 0x1
IFNAMSIZ = 16
_IFREQ = struct.Struct("16sH22x")  # struct ifreq on 64-bit Linux: name, then ifr_flags in a 24-byte union


class CaptureError(Exception):
    """The capture stopped while running (the interface went down or away): open a new one."""


class CaptureSetupError(CaptureError):
    """The capture cannot start; the message says what the user must do (exit 2)."""


class InterfaceDownError(CaptureSetupError):
    """The interface exists but is down: `mouchard run` waits for it instead of stopping."""


class LinkState(StrEnum):
    UP = "up"
    DOWN = "down"  # administratively: `ip link set IF up` is the fix
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class CaptureStats:
    received: int
    dropped: int  # by the kernel: the ring buffer was full
    if_dropped: int  # by the interface or its driver

    def __add__(self, other: CaptureStats) -> CaptureStats:
        return CaptureStats(
            self.received + other.received, self.dropped + other.dropped, self.if_dropped + other.if_dropped
        )


def link_state(interface: str) -> LinkState:
    """Whether ``interface`` exists in this network namespace, and is up (IFF_UP: set by the admin).

    Carrier is not required: an interface that is up without a cable or a Wi-Fi client captures
    fine, it just sees nothing yet. libpcap's ``any`` pseudo-interface is always up.
    """
    if interface == "any":
        return LinkState.UP
    name = interface.encode()
    if not name or len(name) >= IFNAMSIZ:
        return LinkState.MISSING
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            answer = fcntl.ioctl(sock, SIOCGIFFLAGS, _IFREQ.pack(name, 0))
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                return LinkState.MISSING
            raise CaptureSetupError(f"cannot read the state of {interface}: {exc}") from None
    return LinkState.UP if _IFREQ.unpack(answer)[1] & IFF_UP else LinkState.DOWN


def _check_link(interface: str) -> None:
    state = link_state(interface)
    if state is LinkState.MISSING:
        known = ", ".join(sorted(name for _, name in socket.if_nameindex())) or "none"
        raise CaptureSetupError(
            f"no interface named {interface}: set capture.interface to one of {known} (`ip -br link`)"
        )
    if state is LinkState.DOWN:
        raise InterfaceDownError(f"{interface} is down: bring it up with `ip link set {interface} up`")


class LiveCapture:
    def __init__(self, interface: str, snaplen: int = 65535, bpf: str = "") -> None:
        import pcapy  # noqa: PLC0415  (a C extension only the live gateway needs)

        self.interface = interface
        self.snaplen = snaplen
        self.bpf = bpf
        self._pcapy: Any = pcapy
        _check_link(interface)
        try:
            handle = pcapy.create(interface)
        except pcapy.PcapError as exc:
            raise _setup_error(interface, str(exc)) from None
        try:
            self.linktype = _open(pcapy, handle, interface, snaplen, bpf)
        except CaptureSetupError:
            handle.close()  # a waiting gateway tries again and again: no handle left behind
            raise
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
        except self._pcapy.PcapError as exc:  # "The interface went down": also when it was deleted
            raise CaptureError(str(exc)) from None
        if not self._data:
            return None
        return _batch(self._ts, self._lens, self._caps, self._data, self.linktype)

    def _packet(self, header: Any, data: bytes) -> None:
        self._ts.append(header.getts())
        self._lens.append(header.getlen())
        self._caps.append(len(data))
        self._data.append(data)

    def stats(self) -> CaptureStats:
        try:
            received, dropped, if_dropped = self._handle.stats()
        except self._pcapy.PcapError as exc:
            raise CaptureError(str(exc)) from None
        return CaptureStats(int(received), int(dropped), int(if_dropped))

    def close(self) -> None:
        self._handle.close()


def _open(pcapy: Any, handle: Any, interface: str, snaplen: int, bpf: str) -> int:
    """Activate ``handle`` non-blocking with ``bpf``; its link type."""
    try:
        handle.set_snaplen(snaplen)
        handle.set_promisc(1)
        handle.set_timeout(TIMEOUT_MS)
        handle.set_buffer_size(BUFFER_BYTES)
        handle.activate()
    except pcapy.PcapError as exc:
        raise _setup_error(interface, str(exc)) from None
    linktype = int(handle.datalink())
    if bpf:
        try:
            pcapy.compile(linktype, snaplen, bpf, 1, 0)
        except pcapy.PcapError as exc:
            raise CaptureSetupError(f"capture.bpf_filter {bpf!r} does not compile: {exc}") from None
        handle.setfilter(bpf)
    try:
        handle.setnonblock(1)
    except pcapy.PcapError as exc:  # the interface went down since the check: a dead handle
        raise _setup_error(interface, str(exc)) from None
    return linktype


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


def _setup_error(interface: str, message: str) -> CaptureSetupError:
    text = _explain(interface, message)
    return InterfaceDownError(text) if link_state(interface) is LinkState.DOWN else CaptureSetupError(text)


def _explain(interface: str, message: str) -> str:
    text = message.lower()
    if "permission" in text or "operation not permitted" in text:
        return (
            f"no permission to capture on {interface}: Mouchard needs CAP_NET_RAW (and CAP_NET_ADMIN to "
            "turn offloads off). Run it from its systemd unit, as root, or grant them once with "
            "`sudo setcap cap_net_raw,cap_net_admin+eip $(readlink -f .venv/bin/python)`"
        )
    if "f_getfl" in text or "network is down" in text:
        return f"{interface} is down: bring it up with `ip link set {interface} up` ({message})"
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
