"""tshark as an independent oracle: per-endpoint byte totals of a capture."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

_ROW = re.compile(r"^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$")


def tshark_available() -> bool:
    return shutil.which("tshark") is not None


def endpoints(
    capture: Path, table: str, display_filter: str | None = None
) -> dict[str, tuple[int, int, int]]:
    """``{address: (bytes, tx_bytes, rx_bytes)}`` from ``tshark -z endpoints,TABLE[,FILTER]``."""
    stat = f"endpoints,{table}" + (f",{display_filter}" if display_filter else "")
    out = subprocess.run(
        ["tshark", "-n", "-r", str(capture), "-q", "-z", stat],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = {}
    for line in out.splitlines():
        m = _ROW.match(line)
        if m:
            addr = m.group(1).lower()
            rows[addr] = (int(m.group(3)), int(m.group(5)), int(m.group(7)))
    return rows


def mac_totals(capture: Path) -> dict[str, int]:
    """Bytes per MAC of every IPv4/IPv6 frame it sent or received."""
    return {a: v[0] for a, v in endpoints(capture, "eth", "ip or ipv6").items()}


def ip_totals(capture: Path) -> dict[str, int]:
    """Bytes per IP address (v4 and v6), for captures without a link layer."""
    out = {a: v[0] for a, v in endpoints(capture, "ip").items()}
    out.update({a: v[0] for a, v in endpoints(capture, "ipv6").items()})
    return out


def link_type(capture: Path) -> str:
    out = subprocess.run(
        ["capinfos", "-T", "-E", str(capture)], check=True, capture_output=True, text=True
    ).stdout
    return out.strip().splitlines()[-1].split("\t")[-1]
