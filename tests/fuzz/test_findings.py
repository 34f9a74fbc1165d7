"""Every input the fuzzers ever flagged, and every seed, through the property of its harness.

A finding lives in tests/fuzz/findings/HARNESS/NAME (the bytes atheris wrote as crash-*, timeout-*
or oom-*); its regression test with a readable name is in test_regressions.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.checks import CHECKS
from fuzz.common import SEEDS

FINDINGS = Path(__file__).parent / "findings"


def test_every_saved_finding_stays_fixed() -> None:
    for path in sorted(p for p in FINDINGS.glob("*/*") if p.is_file()):
        try:
            CHECKS[path.parent.name](path.read_bytes())
        except Exception as exc:
            raise AssertionError(f"{path.relative_to(FINDINGS)} fails again: {exc!r}") from exc


@pytest.mark.parametrize("harness", sorted(CHECKS))
def test_seeds_pass_their_check(harness: str) -> None:
    for seed in SEEDS[harness]():
        CHECKS[harness](seed)


def test_every_finding_folder_names_a_harness() -> None:
    assert {p.name for p in FINDINGS.iterdir() if p.is_dir()} <= set(CHECKS)
