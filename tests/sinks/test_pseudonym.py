"""Pseudonymous exports: `replay --output FILE --pseudonymise` and `devices --json --pseudonymise` on the
generated lab capture. The same lab gives the same pseudonyms every time, another lab others; no MAC
of the capture survives in any form; the counts are exactly those of the plain export."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import normalise_mac
from gateway.samples.lab import DEVICES, ROUTER_MAC, write_lab_capture
from gateway.sinks.pseudonym import KEY_FILE, PseudonymError, Pseudonymiser, load_key

MACS = [d.mac for d in DEVICES] + [ROUTER_MAC]
EUI64 = [addr for d in DEVICES if d.ipv6_iid and "ff:fe" in d.ipv6_iid for addr in (d.link_local, d.global6)]


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lab") / "lab.pcap"
    write_lab_capture(path, seconds=180)
    return path


def lab_config(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "mouchard.yaml"
    config.write_text(f"state_dir: {folder}/state\n")
    return config


def export(capture: Path, folder: Path, name: str, *flags: str) -> str:
    out = folder / name
    assert (
        main(
            [
                "replay",
                str(capture),
                "--config",
                str(lab_config(folder)),
                "--output",
                str(out),
                "--quiet",
                *flags,
            ]
        )
        == 0
    )
    return out.read_text()


def byte_totals(text: str) -> dict[str, int]:
    """bytes_out + bytes_in per device tag, from the line protocol."""
    totals: dict[str, int] = {}
    for line in text.splitlines():
        if not line.startswith("traffic,"):
            continue  # the only measurement with bytes; other lines hold quoted text with spaces
        key, fields, _ts = re.split(r"(?<!\\) ", line)
        tags = dict(t.split("=", 1) for t in re.split(r"(?<!\\),", key)[1:])
        values = dict(f.split("=", 1) for f in fields.split(","))
        n = int(values["bytes_out"].rstrip("i")) + int(values["bytes_in"].rstrip("i"))
        totals[tags["device"]] = totals.get(tags["device"], 0) + n
    return totals


def assert_no_mac_of_the_lab(text: str) -> None:
    lowered = text.lower()
    for mac in MACS:
        for form in (mac, mac.replace(":", "-"), mac.replace(":", "")):
            assert form not in lowered, f"{form} in the export"
    for address in EUI64:  # its interface id is the MAC
        assert address not in lowered, f"{address} in the export"


def test_replay_exports_the_same_pseudonyms_and_the_same_bytes(capture: Path, tmp_path: Path) -> None:
    plain = export(capture, tmp_path / "lab", "plain.lp")
    first = export(capture, tmp_path / "lab", "first.lp", "--pseudonymise")
    second = export(capture, tmp_path / "lab", "second.lp", "--pseudonymise")
    assert first == second  # same lab, same input: the same file
    assert_no_mac_of_the_lab(first)
    assert any(mac in plain for mac in MACS)  # the plain export does name them: the check can fail
    pseudonymiser = Pseudonymiser(load_key(tmp_path / "lab" / "state"))
    expected = {
        pseudonymiser.mac(dev) if ":" in dev and not dev.startswith("ip:") else dev: n
        for dev, n in byte_totals(plain).items()
    }
    assert byte_totals(first) == expected
    assert sum(expected.values()) > 0
    counted = ("traffic,", "dns,")  # events differ: the first replay of a lab has its new_device events
    assert [ln.startswith(counted) for ln in first.splitlines()].count(True) == [
        ln.startswith(counted) for ln in plain.splitlines()
    ].count(True)


def test_another_lab_gives_other_pseudonyms(capture: Path, tmp_path: Path) -> None:
    ours = byte_totals(export(capture, tmp_path / "a", "out.lp", "--pseudonymise"))
    theirs = byte_totals(export(capture, tmp_path / "b", "out.lp", "--pseudonymise"))
    assert sorted(ours.values()) == sorted(theirs.values())
    assert not set(ours) & set(theirs)


def test_the_key_is_private_and_never_changes(tmp_path: Path) -> None:
    key = load_key(tmp_path / "state")
    assert stat.S_IMODE((tmp_path / "state" / KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert load_key(tmp_path / "state") == key
    assert key.hex() not in repr(Pseudonymiser(key))
    (tmp_path / "state" / KEY_FILE).write_bytes(b"short")
    with pytest.raises(PseudonymError, match="delete it to make a new one"):
        load_key(tmp_path / "state")


def test_a_pseudonym_is_a_locally_administered_unicast_mac() -> None:
    p = Pseudonymiser(b"k" * 32)
    for mac in MACS:
        fake = p.mac(mac)
        assert normalise_mac(fake) == fake  # a valid device tag
        assert int(fake[:2], 16) & 0x02
        assert p.mac(mac.upper().replace(":", "-")) == fake
    assert len({p.mac(m) for m in MACS}) == len(MACS)
    assert Pseudonymiser(b"j" * 32).mac(MACS[0]) != p.mac(MACS[0])


def test_text_forms_and_what_is_left_alone() -> None:
    p = Pseudonymiser(b"k" * 32)
    fake = p.mac("68:db:f5:90:19:64")
    text = 'event,device=68:db:f5:90:19:64 text="68-DB-F5-90-19-64 is amazon-68dbf5901964"'
    assert p.text(text) == f'event,device={fake} text="{fake} is amazon-{fake.replace(":", "")}"'
    # EUI-64: the interface id is remade from the pseudonym, the prefix kept
    eui = p.text("fe80::6adb:f5ff:fe90:1964")
    assert eui.startswith("fe80::")
    assert "ff:fe" in eui
    assert "6adb" not in eui
    for kept in (
        "2001:db8:aa:bb:cc:dd:ee:ff",
        "fe80::8c3e:71ff:2a9d:4b16",
        "10:20:30",
        "deadbeef0000",
        "::1",
    ):
        assert p.text(kept) == kept


def test_devices_json_pseudonymised(
    capture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = lab_config(tmp_path / "lab")
    exported = export(capture, tmp_path / "lab", "out.lp", "--pseudonymise")
    capsys.readouterr()
    assert main(["devices", "--json", "--pseudonymise", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert_no_mac_of_the_lab(out)
    ids = {d["id"] for d in json.loads(out)}
    assert ids == set(byte_totals(exported))  # the inventory and the export name devices alike
    assert main(["devices", "--json", "--config", str(config)]) == 0
    assert {d["id"] for d in json.loads(capsys.readouterr().out)} == {d.mac for d in DEVICES}


def test_pseudonymise_without_output_is_refused(capture: Path, tmp_path: Path) -> None:
    config = lab_config(tmp_path)
    assert main(["replay", str(capture), "--config", str(config), "--pseudonymise", "--quiet"]) == 2
