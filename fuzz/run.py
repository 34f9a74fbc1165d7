"""Run the atheris harnesses, each for a fixed time, with seeds built from gateway.samples.

    python -m fuzz.run [--seconds 300] [--jobs 2] [--only dns quic ...] [--workdir .fuzz]

Each harness keeps its growing corpus in WORKDIR/NAME/corpus (reused by the next run) and writes any
crashing, hanging or memory-hungry input to WORKDIR/NAME/ as crash-*, timeout-* or oom-*. The exit
status is 1 when any harness found something: turn each finding into a regression test under
tests/fuzz/ and keep the input in tests/fuzz/findings/.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fuzz.common import SEEDS

HARNESSES = ("dns", "mdns", "dhcp", "tls", "quic", "http", "ndp", "headers", "capfile", "gateway")
# Longest input per harness: a little over what the parser reads (mDNS: 9000-byte messages; a
# ClientHello: 16 KiB; capture files: enough for tens of records and several pcapng blocks).
MAX_LEN = {"mdns": 9100, "tls": 17000, "quic": 1600, "capfile": 65536, "gateway": 65536}
DEFAULT_MAX_LEN = 4096
# An input that takes longer than this is a hang (libFuzzer writes it as timeout-*).
TIMEOUT_S = 10
RSS_LIMIT_MB = 2048
# atheris' comparison hooks keep numpy arrays alive: the headers harness grows by about 17 KiB per
# input at a few hundred inputs a second (uninstrumented, the code under test stays flat). Each
# harness is restarted with its corpus this often, so that growth stays far below RSS_LIMIT_MB.
RESTART_S = 120


def prepare(name: str, workdir: Path) -> tuple[Path, Path]:
    seeds, corpus = workdir / name / "seeds", workdir / name / "corpus"
    seeds.mkdir(parents=True, exist_ok=True)
    corpus.mkdir(parents=True, exist_ok=True)
    for index, seed in enumerate(SEEDS[name]()):
        (seeds / f"seed-{index}").write_bytes(seed)
    return seeds, corpus


def run_one(name: str, seconds: int, workdir: Path) -> tuple[str, int, list[Path]]:
    seeds, corpus = prepare(name, workdir)
    out = workdir / name
    command = [
        sys.executable,
        "-m",
        f"fuzz.fuzz_{name}",
        f"-timeout={TIMEOUT_S}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-max_len={MAX_LEN.get(name, DEFAULT_MAX_LEN)}",
        f"-artifact_prefix={out}/",
        "-print_final_stats=1",
        str(corpus),
        str(seeds),
    ]
    started = time.monotonic()
    code = 0
    with (out / "log.txt").open("w") as log:
        while code == 0 and (left := seconds - (time.monotonic() - started)) >= 1:
            stint = [*command, f"-max_total_time={int(min(left, RESTART_S))}"]
            code = subprocess.run(stint, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    findings = sorted(p for p in out.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-", "leak-")))
    took = time.monotonic() - started
    print(f"{name:8} {took:6.0f} s  exit {code}  findings {len(findings)}  log {out / 'log.txt'}")
    return name, code, findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=300, help="time per harness (default 300)")
    parser.add_argument("--jobs", type=int, default=2, help="harnesses run at once (default 2)")
    parser.add_argument("--only", nargs="*", choices=HARNESSES, help="run only these harnesses")
    parser.add_argument("--workdir", type=Path, default=Path(".fuzz"), help="corpora and findings")
    args = parser.parse_args(argv)
    names = args.only or list(HARNESSES)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda n: run_one(n, args.seconds, args.workdir), names))
    found = [path for _name, _code, paths in results for path in paths]
    failed = [name for name, code, _paths in results if code != 0]
    for path in found:
        print(f"finding: {path}")
    if found or failed:
        print(f"harnesses with findings: {', '.join(sorted(set(failed)))}")
        return 1
    print(f"no finding in {len(names)} harnesses x {args.seconds} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
