"""Profile files: every committed one validates; each kind of mistake is named with its file, line and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.enrichers.orgs import OrgDB
from gateway.profiles import Kind, ProfileError, check_profiles, load_profiles
from gateway.profiles.index import DEFAULT_SOURCE

GOOD = """\
profiles:
  - id: lab_speaker
    vendor: Sonos
    maker: sonos
    model_family: Sonos One
    kind: speaker
    match:
      mdns:
        - type: _sonos._tcp
      mac_prefixes: ['54:2A:1B']
    first_party_domains: [sonos.com]
    notes: A lab speaker.
"""

# (name, text replacing part of GOOD or a whole file, line of the problem, words the message must hold)
BROKEN = [
    ("yaml_syntax", GOOD.replace("vendor: Sonos", "vendor: [Sonos"), 4, ["YAML syntax error", "indentation"]),
    ("tab_indent", GOOD.replace("    kind: speaker", "\tkind: speaker"), 6, ["YAML syntax error"]),
    (
        "unknown_key",
        GOOD.replace("    kind: speaker", "    kind: speaker\n    colour: red"),
        7,
        ["unknown key 'colour'"],
    ),
    ("misspelt_key", GOOD.replace("model_family:", "model_famly:"), 5, ["did you mean 'model_family'"]),
    (
        "bad_kind",
        GOOD.replace("kind: speaker", "kind: speakr"),
        6,
        ["unknown kind 'speakr'", "did you mean 'speaker'"],
    ),
    (
        "bad_regex",
        GOOD.replace(
            "        - type: _sonos._tcp", "        - type: _sonos._tcp\n          name: 'Sonos-(['"
        ),
        10,
        ["not a valid regular expression", "escape"],
    ),
    (
        "pattern_too_wide",
        GOOD.replace("      mac_prefixes:", "      hostnames: ['.*']\n      mac_prefixes:"),
        10,
        ["matches anything"],
    ),
    ("bad_mac_prefix", GOOD.replace("'54:2A:1B'", "'54:2A:1G'"), 10, ["not a MAC prefix", "00:17:88"]),
    (
        "random_mac_prefix",
        GOOD.replace("'54:2A:1B'", "'02:2A:1B'"),
        10,
        ["locally administered", "IEEE registry"],
    ),
    (
        "bad_service_type",
        GOOD.replace("_sonos._tcp", "sonos"),
        9,
        ["not a DNS-SD service type", "_name._tcp"],
    ),
    (
        "shared_type_alone",
        GOOD.replace("_sonos._tcp", "_airplay._tcp"),
        9,
        ["announced by many makers", "add `name:`", "`txt:`"],
    ),
    (
        "bad_fingerprint",
        GOOD.replace("      mac_prefixes:", "      dhcp_fingerprints: ['1,3,300']\n      mac_prefixes:"),
        10,
        ["0-255"],
    ),
    (
        "bad_domain",
        GOOD.replace("[sonos.com]", "[sonos]"),
        11,
        ["public suffix or has an unknown top-level domain"],
    ),
    ("missing_kind", GOOD.replace("    kind: speaker\n", ""), 2, ["`kind` is missing", "voice_assistant"]),
    ("empty_notes", GOOD.replace("A lab speaker.", "''"), 12, ["is empty"]),
    (
        "no_rule",
        GOOD.replace(
            "      mdns:\n        - type: _sonos._tcp\n      mac_prefixes: ['54:2A:1B']",
            "      domains: [sonos.com]",
        ),
        7,
        ["no rule can recognise", "domains only support"],
    ),
    (
        "assistant_without_threshold",
        GOOD.replace("kind: speaker", "kind: voice_assistant"),
        2,
        ["activation_threshold_bps", "12172"],
    ),
    (
        "threshold_not_a_number",
        GOOD.replace("    kind: speaker", "    kind: speaker\n    activation_threshold_bps: fast"),
        7,
        ["whole number"],
    ),
    (
        "unknown_maker",
        GOOD.replace("maker: sonos", "maker: Sonos Inc"),
        4,
        ["not an organisation key", "did you mean 'sonos'"],
    ),
    (
        "first_party_of_another",
        GOOD.replace("[sonos.com]", "[sonos.com, google.com]"),
        11,
        ["'google.com' belongs to 'google'", "remove it"],
    ),
    (
        "duplicate_key",
        GOOD.replace("    notes: A lab speaker.", "    notes: A.\n    notes: B."),
        13,
        ["duplicate key 'notes'"],
    ),
    ("not_a_mapping", "- just\n- a list\n", 1, ["not a profile file", "`profiles:`"]),
    ("no_profiles", "profiles: []\n", 1, ["no profile listed", "- id:"]),
    ("bad_id", GOOD.replace("id: lab_speaker", "id: Lab-Speaker"), 2, ["lowercase letters, digits and _"]),
]


def write(folder: Path, text: str, name: str = "lab.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def orgs() -> OrgDB:
    return OrgDB.load()


def test_every_committed_profile_validates(orgs: OrgDB) -> None:
    profiles = load_profiles(DEFAULT_SOURCE, orgs)
    assert len(profiles) >= 40
    assert {p.kind for p in profiles} == set(Kind)  # every kind of the vocabulary has a profile


def test_a_good_file_loads(tmp_path: Path, orgs: OrgDB) -> None:
    write(tmp_path, GOOD)
    (profile,) = load_profiles(tmp_path, orgs)
    assert profile.id == "lab_speaker"
    assert profile.kind is Kind.SPEAKER
    assert profile.rules.mac_prefixes == ("54:2a:1b",)
    assert profile.rules.mdns[0].service_type == "_sonos._tcp"
    assert profile.source == "lab.yaml:2"


def test_scalars_are_taken_as_written(tmp_path: Path, orgs: OrgDB) -> None:
    """50:31:23 would be a base-60 number in YAML 1.1; the TXT value 'no' would be false."""
    text = GOOD.replace("'54:2A:1B'", "50:31:23").replace(
        "- type: _sonos._tcp", "- type: _sonos._tcp\n          txt: {x: no}"
    )
    (profile,) = load_profiles(write(tmp_path, text).parent, orgs)
    assert profile.rules.mac_prefixes == ("50:31:23",)
    assert profile.rules.mdns[0].txt == (("x", "no"),)


@pytest.mark.parametrize(("name", "text", "line", "words"), BROKEN, ids=[case[0] for case in BROKEN])
def test_a_mistake_names_file_line_and_fix(
    tmp_path: Path, orgs: OrgDB, name: str, text: str, line: int, words: list[str]
) -> None:
    path = write(tmp_path, text)
    _profiles, problems = check_profiles(tmp_path, orgs)
    assert problems, f"{name}: accepted"
    shown = [str(p) for p in problems]
    located = [s for s in shown if s.startswith(f"{path}:{line}: ")]
    assert located, f"{name}: nothing at line {line}: {shown}"
    assert any(all(w in s for w in words) for s in located), f"{name}: {located}"
    assert all(" — " in s or "YAML" in s for s in shown), shown  # every message says what to do


def test_every_problem_is_reported_at_once(tmp_path: Path, orgs: OrgDB) -> None:
    write(tmp_path, GOOD.replace("kind: speaker", "kind: speakr").replace("'54:2A:1B'", "'zz'"), "a.yaml")
    write(tmp_path, "profiles: [", "b.yaml")
    _, problems = check_profiles(tmp_path, orgs)
    assert {(Path(p.file).name, p.line) for p in problems} == {("a.yaml", 6), ("a.yaml", 10), ("b.yaml", 2)}
    with pytest.raises(ProfileError) as raised:
        load_profiles(tmp_path, orgs)
    assert len(str(raised.value).splitlines()) == 3


def test_duplicate_ids_across_files_name_both(tmp_path: Path, orgs: OrgDB) -> None:
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, "# another family\n" + GOOD, "b.yaml")
    _, problems = check_profiles(tmp_path, orgs)
    assert [str(p) for p in problems] == [
        f"{tmp_path / 'b.yaml'}:3: lab_speaker: id 'lab_speaker' is already used at a.yaml:2 — "
        "ids must be unique; rename one"
    ]


def test_a_folder_without_profiles_is_a_problem(tmp_path: Path, orgs: OrgDB) -> None:
    _, missing = check_profiles(tmp_path / "nope", orgs)
    _, empty = check_profiles(tmp_path, orgs)
    assert "no such folder" in str(missing[0])
    assert "no *.yaml file" in str(empty[0])


# -- the command line ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOUCHARD_CONFIG", raising=False)


def test_check_passes_on_the_committed_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "check", str(DEFAULT_SOURCE)]) == 0
    out = capsys.readouterr().out
    assert "profiles in" in out
    assert "all valid" in out


@pytest.mark.parametrize(("name", "text", "line", "words"), BROKEN, ids=[case[0] for case in BROKEN])
def test_check_exits_2_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, line: int, words: list[str]
) -> None:
    path = write(tmp_path, text)
    assert main(["profiles", "check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:{line}: " in err, err
    assert "Traceback" not in err
    assert "problem" in err.splitlines()[-1]


def test_an_alias_bomb_is_stopped(tmp_path: Path, orgs: OrgDB) -> None:
    rows = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    rows += [f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]" for p, c in zip("abcde", "bcdef", strict=True)]
    write(tmp_path, "\n".join(rows) + "\n")
    _, problems = check_profiles(tmp_path, orgs)
    assert sum("too many aliases" in str(p) for p in problems) == 1
