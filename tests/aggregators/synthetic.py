"""Hand-made detector inputs: packets a device sends, rows of a flush."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gateway.aggregators.detectors.inputs import Destination, DeviceRows, SentPackets, Subject
from gateway.aggregators.traffic import KIND_MAC
from gateway.enrichers.names import address_key

NS = 1_000_000_000
T0 = 1_730_857_800  # 2024-11-06 01:50 UTC
ECHO = Subject(
    "68:db:f5:90:19:64", "Kitchen Echo", "voice_assistant", "Amazon", "Echo Dot", threshold_bps=12_172
)
PLUG = Subject("50:c7:bf:a1:3c:5e", "Desk Plug", "plug", "TP-Link", "HS110")


def sent(
    subject: Subject,
    times_s: Sequence[float],
    sizes: Sequence[int] | int = 1500,
    *,
    remote: str = "52.94.233.112",
    port: int = 443,
    proto: int = 6,
    data: bool = True,
    lport: int = 40000,
) -> SentPackets:
    n = len(times_s)
    hi, lo = address_key(remote)
    mac = int(subject.device.replace(":", ""), 16)
    sizes_arr = np.full(n, sizes, np.int64) if isinstance(sizes, int) else np.array(sizes, np.int64)
    return SentPackets(
        ts_ns=(np.array(times_s, np.float64) * NS).astype(np.int64) + T0 * NS,
        device=np.zeros(n, np.int64),
        subjects=(subject,),
        kind=np.full(n, KIND_MAC, np.uint8),
        dhi=np.zeros(n, np.uint64),
        dlo=np.full(n, mac, np.uint64),
        rhi=np.full(n, hi, np.uint64),
        rlo=np.full(n, lo, np.uint64),
        proto=np.full(n, proto, np.uint8),
        lport=np.full(n, lport, np.uint16),
        rport=np.full(n, port, np.uint16),
        nbytes=sizes_arr,
        data=np.full(n, data, np.bool_),
    )


def stream(subject: Subject, start_s: float, seconds: float, rate: int, *, packet: int = 1000) -> SentPackets:
    """``rate`` bytes/s in packets of ``packet`` bytes, evenly spread."""
    count = int(seconds * rate / packet)
    return sent(subject, [start_s + i * seconds / count for i in range(count)], packet)


def rows(
    entries: Sequence[tuple[float, Subject, str, str, int, int]],
    interval_s: int = 10,
    local: Sequence[str] = (),
) -> DeviceRows:
    """Rows from (bin start since T0, subject, host, country, bytes_out, bytes_in)."""
    subjects = list(dict.fromkeys(e[1] for e in entries))
    dests = list(dict.fromkeys((e[2], e[3]) for e in entries))
    return DeviceRows(
        bin_s=np.array([T0 + int(e[0]) for e in entries], np.int64),
        device=np.array([subjects.index(e[1]) for e in entries], np.int64),
        dest=np.array([dests.index((e[2], e[3])) for e in entries], np.int64),
        bytes_out=np.array([e[4] for e in entries], np.int64),
        bytes_in=np.array([e[5] for e in entries], np.int64),
        subjects=tuple(subjects),
        destinations=tuple(Destination(h, c, h in local) for h, c in dests),
        interval_s=interval_s,
    )
