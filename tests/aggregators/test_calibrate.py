"""`mouchard calibrate`: the quiet maximum is what tshark counts independently, and the threshold it
proposes finds the voice requests of a night without flagging the idle speaker."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.samples.lab import ECHO
from gateway.samples.scenarios import write_scenario

REST_S = 300


@pytest.fixture(scope="module")
def rest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rest")
    write_scenario(folder / "rest.pcap", seconds=REST_S, voice_requests=())
    (folder / "mouchard.yaml").write_text(
        f'devices:\n  "{ECHO.mac}": {{name: Kitchen Echo, kind: voice_assistant, vendor: Amazon}}\n',
        encoding="utf-8",
    )
    return folder


def tshark_quiet_max(capture: Path) -> int:
    """The busiest second of data packets the Echo sent to port 443, as tshark reads the capture."""
    done = subprocess.run(
        ["tshark", "-n", "-r", str(capture), "-Y",
         f"eth.src == {ECHO.mac} && ((tcp.dstport == 443 && tcp.len > 0) || udp.dstport == 443)",
         "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    per_second: Counter[int] = Counter()
    for line in done.stdout.splitlines():
        when, length = line.split("\t")
        per_second[int(float(when))] += int(length)
    return max(per_second.values())


def test_calibrate_proposes_one_and_a_half_times_the_quiet_maximum(
    rest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["calibrate", ECHO.mac, str(rest / "rest.pcap"), "--config", str(rest / "mouchard.yaml")])
    out = capsys.readouterr().out
    assert code == 0, out
    quiet = int(re.search(r"quiet maximum ([\d,]+) B/s", out).group(1).replace(",", ""))  # type: ignore[union-attr]
    proposal = int(re.search(rf'"{ECHO.mac}": (\d+)', out).group(1))  # type: ignore[union-attr]
    if shutil.which("tshark"):
        assert quiet == tshark_quiet_max(rest / "rest.pcap")
    assert proposal == math.ceil(quiet * 1.5 / 100) * 100
    assert proposal < 12_172, "the idle Echo should stay under the paper's threshold"
    assert "Kitchen Echo (68:db:f5:90:19:64)" in out
    assert "12,172 B/s" in out


def test_calibrate_says_what_is_wrong(rest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "02:00:00:00:00:01", str(rest / "rest.pcap")]) == 2
    assert "sent no packet in this capture" in capsys.readouterr().err
    assert main(["calibrate", "kitchen", str(rest / "rest.pcap")]) == 2
    assert "neither a MAC nor an IP address" in capsys.readouterr().err
    assert main(["calibrate", ECHO.mac, str(rest / "absent.pcap")]) == 2
    assert "no such file" in capsys.readouterr().err
    not_a_capture = rest / "mouchard.yaml"
    assert main(["calibrate", ECHO.mac, str(not_a_capture)]) == 2
    assert "not a pcap or pcapng file" in capsys.readouterr().err
