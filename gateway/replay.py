"""`mouchard replay`: capture files through the same pipeline as the live gateway."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.app import Gateway
from gateway.parsers.headers import SUPPORTED_LINKS
from gateway.sources.capfile import ReadStats, open_capture


@dataclass(slots=True)
class FileReport:
    path: Path
    stats: ReadStats
    unsupported_links: list[int] = field(default_factory=list)


def check_readable(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Problems with the files, found before any work starts (each names the file and what to do)."""
    problems = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            problems.append(f"{p}: no such file; give the path of a .pcap or .pcapng capture")
        elif p.is_dir():
            problems.append(f"{p}: is a folder; give the capture files inside it (e.g. {p}/*.pcap)")
        elif not os.access(p, os.R_OK):
            problems.append(f"{p}: not readable by this user; check its permissions")
    return problems


def replay_files(
    gateway: Gateway,
    paths: Sequence[str | os.PathLike[str]],
    progress: Callable[[int], None] | None = None,
) -> list[FileReport]:
    """Feed every file through ``gateway``; ``progress`` gets the bytes consumed since its last call.

    Raises CaptureError for a file that is not a capture at all; damage inside a file is
    reported in its ReadStats and the rest of the file is skipped.
    """
    reports = []
    for raw in paths:
        report = FileReport(Path(raw), ReadStats())
        done = 0
        for batch in open_capture(raw, report.stats):
            gateway.process(batch)
            if progress is not None:
                progress(report.stats.bytes_read - done)
                done = report.stats.bytes_read
        report.unsupported_links = sorted({lt for lt in report.stats.interfaces if lt not in SUPPORTED_LINKS})
        if progress is not None:
            progress(max(0, Path(raw).stat().st_size - done))
        reports.append(report)
    gateway.finish()
    return reports
