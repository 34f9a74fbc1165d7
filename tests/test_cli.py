"""The replay command's promises: exit codes, messages that name the file, nothing lost silently."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CAPTURES, ROOT
from tests.oracle import mac_totals

SAMPLE = CAPTURES / "zeek" / "tls_chrome-34-google.pcap"
needs_captures = pytest.mark.skipif(not CAPTURES.is_dir(), reason="shared/captures absent")


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Commands run without --config read MOUCHARD_CONFIG: a state_dir of the test's own."""
    cfg = tmp_path / "default.yaml"
    cfg.write_text(f"state_dir: {tmp_path}/state\n")
    monkeypatch.setenv("MOUCHARD_CONFIG", str(cfg))
    return tmp_path / "state"


def mouchard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=120,
    )


def totals(lp: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in lp.splitlines():
        if not line.startswith("traffic,"):
            continue
        tags, fields, _ = line.rsplit(" ", 2)
        device = dict(kv.split("=", 1) for kv in tags.split(",")[1:])["device"]
        values = dict(kv.split("=") for kv in fields.split(","))
        out[device] = out.get(device, 0) + int(values["bytes_out"][:-1]) + int(values["bytes_in"][:-1])
    return out


def test_missing_file_exits_2_naming_it(tmp_path: Path) -> None:
    done = mouchard("replay", str(tmp_path / "nope.pcap"), "--output", "-")
    assert done.returncode == 2
    assert "nope.pcap" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("content", [b"", b"hello, this is not a capture at all\n", b"\xd4\xc3"])
def test_not_a_capture_exits_2_naming_it(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "notes.pcap"
    bad.write_bytes(content)
    done = mouchard("replay", str(bad), "--output", "-")
    assert done.returncode == 2, done.stderr
    assert "notes.pcap" in done.stderr
    assert "Traceback" not in done.stderr


@needs_captures
def test_stdout_output_is_line_protocol_and_table_goes_to_stderr() -> None:
    done = mouchard("replay", str(SAMPLE), "--output", "-")
    assert done.returncode == 0, done.stderr
    measurements = {line.split(",", 1)[0] for line in done.stdout.splitlines()}
    assert measurements <= {"traffic", "dns", "device", "event"}
    assert totals(done.stdout) == {"a8:20:66:48:ca:51": mac_totals(SAMPLE)["a8:20:66:48:ca:51"]}
    assert "a8:20:66:48:ca:51" in done.stderr  # the device table


@needs_captures
def test_file_cut_mid_record_counts_what_is_whole(tmp_path: Path) -> None:
    data = SAMPLE.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 100])
    done = mouchard("replay", str(cut), "--output", "-")
    assert done.returncode == 0, done.stderr
    assert "cut short" in done.stderr
    assert sum(totals(done.stdout).values()) < mac_totals(SAMPLE)["a8:20:66:48:ca:51"]


@needs_captures
def test_absurd_record_length_stops_that_file_and_says_where(tmp_path: Path) -> None:
    data = bytearray(SAMPLE.read_bytes())
    # the third record's header: 24-byte file header, then records of 16-byte header + data
    pos = 24
    for _ in range(2):
        pos += 16 + int.from_bytes(data[pos + 8 : pos + 12], "little")
    data[pos + 8 : pos + 12] = (0x7FFFFFFF).to_bytes(4, "little")
    bad = tmp_path / "absurd.pcap"
    bad.write_bytes(bytes(data))
    done = mouchard("replay", str(bad), "--output", "-")
    assert done.returncode == 0, done.stderr
    assert f"record at byte {pos}" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_config_exits_2_with_file_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("aggregation:\n  interval_s: ten\n")
    done = mouchard("replay", str(SAMPLE), "--config", str(cfg), "--output", "-")
    assert done.returncode == 2
    assert "bad.yaml:2" in done.stderr
    assert "interval_s" in done.stderr


@needs_captures
def test_several_files_in_one_replay(tmp_path: Path) -> None:
    second = tmp_path / "again.pcap"
    shutil.copy(SAMPLE, second)
    done = mouchard("replay", str(SAMPLE), str(second), "--output", "-")
    assert done.returncode == 0, done.stderr
    # the same packets twice: every count doubles, and none is lost to a bin being overwritten
    assert totals(done.stdout) == {"a8:20:66:48:ca:51": 2 * mac_totals(SAMPLE)["a8:20:66:48:ca:51"]}


def test_config_check_prints_effective_config(tmp_path: Path) -> None:
    cfg = tmp_path / "ok.yaml"
    cfg.write_text("gateway_id: fablab\n")
    done = mouchard("config", "check", "--config", str(cfg))
    assert done.returncode == 0, done.stderr
    assert "gateway_id: fablab" in done.stdout


@needs_captures
def test_replay_fills_the_inventory_that_devices_lists(private_state: Path) -> None:
    import json

    assert mouchard("replay", str(SAMPLE), "--output", "/dev/null").returncode == 0
    listed = mouchard("devices", "--json")
    assert listed.returncode == 0, listed.stderr
    devices = json.loads(listed.stdout)
    assert [d["id"] for d in devices] == ["a8:20:66:48:ca:51"]
    assert devices[0]["vendor"] == "Apple"
    assert devices[0]["ip"] == "192.168.4.149"
    assert (private_state / "inventory.sqlite3").exists()


def test_unwritable_state_dir_exits_2_saying_what_to_do(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"state_dir: {blocker}/state\n")
    done = mouchard("replay", str(SAMPLE), "--config", str(cfg), "--output", "/dev/null")
    assert done.returncode == 2
    assert "state_dir" in done.stderr
