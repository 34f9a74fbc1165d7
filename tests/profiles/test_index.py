"""The committed index: fresh, stable, and what the gateway loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.profiles import Matcher, ProfileIndex, ProfileIndexError, load_profiles
from gateway.profiles.index import BUILD_COMMAND, DEFAULT_INDEX, DEFAULT_SOURCE, index_text
from tests.profiles.cases import CASES


@pytest.fixture(scope="module")
def fresh_text() -> str:
    return index_text(load_profiles(DEFAULT_SOURCE))


def test_committed_index_is_fresh(fresh_text: str) -> None:
    committed = DEFAULT_INDEX.read_text(encoding="utf-8") if DEFAULT_INDEX.is_file() else ""
    assert committed == fresh_text, (
        f"{DEFAULT_INDEX} does not match device_profiles/: run `{BUILD_COMMAND}` and commit the result"
    )


def test_index_text_is_stable_and_sorted(fresh_text: str) -> None:
    profiles = load_profiles(DEFAULT_SOURCE)
    assert index_text(reversed(profiles)) == fresh_text  # input order does not matter
    data = json.loads(fresh_text)
    assert json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False) + "\n" == fresh_text
    assert list(data["profiles"]) == sorted(data["profiles"])
    assert all(ids == sorted(ids) for ids in data["mac_prefixes"].values())
    assert [p["pattern"] for p in data["hostnames"]] == sorted(p["pattern"] for p in data["hostnames"])


def test_index_tables_point_to_profiles(fresh_text: str) -> None:
    data = json.loads(fresh_text)
    ids = set(data["profiles"])
    assert data["command"] == BUILD_COMMAND
    assert {rule["profile"] for rules in data["service_types"].values() for rule in rules} <= ids
    assert "_googlecast._tcp" in data["service_types"]
    assert data["mac_prefixes"]["00:17:88"] == ["hue_bridge"]
    assert "sonos_speaker" in data["domains"]["sonos.com"]


def test_loaded_index_matches_like_the_profiles_it_was_built_from() -> None:
    loaded = Matcher(ProfileIndex.load())
    built = Matcher(ProfileIndex.from_profiles(load_profiles(DEFAULT_SOURCE)))
    assert len(loaded.index) == len(built.index) >= 40
    for evidence in CASES.values():
        assert loaded.match(evidence) == built.match(evidence)
    assert loaded.index.profiles == built.index.profiles


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "cannot read the profile index"),
        ("{not json", "cannot read the profile index"),
        ('{"format": 99}', "not a format-1 profile index"),
        ('{"format": 1, "profiles": {}}', "damaged profile index"),
    ],
)
def test_a_damaged_index_says_how_to_rebuild_it(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "profile_index.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileIndexError) as raised:
        ProfileIndex.load(path)
    assert words in str(raised.value)
    assert BUILD_COMMAND in str(raised.value)
    with pytest.raises(ProfileIndexError, match=BUILD_COMMAND):
        ProfileIndex.load(tmp_path / "missing.json")


def test_build_writes_the_index(
    tmp_path: Path, fresh_text: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MOUCHARD_CONFIG", raising=False)
    output = tmp_path / "index.json"
    assert main(["profiles", "build", "--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8") == fresh_text
    assert "written" in capsys.readouterr().out
    assert main(["profiles", "build", "--output", str(output)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_build_refuses_broken_profiles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MOUCHARD_CONFIG", raising=False)
    (tmp_path / "bad.yaml").write_text("profiles:\n  - id: x\n", encoding="utf-8")
    output = tmp_path / "index.json"
    assert main(["profiles", "build", "--source", str(tmp_path), "--output", str(output)]) == 2
    assert f"{tmp_path / 'bad.yaml'}:2: " in capsys.readouterr().err
    assert not output.exists()
