"""`mouchard dashboards build`: stable files, both languages, and committed files that are up to date."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gateway.cli import main
from gateway.config import default_config, load_config
from gateway.grafana.language import Lang
from gateway.grafana.render import DATASOURCE_FILE, PROVIDER_FILE, render, write
from tests.conftest import ROOT

COMMITTED = ROOT / "dashboards"
REGENERATE = (
    "run `mouchard dashboards build` (default configuration, from the checkout's root) and commit dashboards/"
)


def test_committed_dashboards_are_up_to_date() -> None:
    wanted = render(default_config())
    stale = [
        str(p)
        for p, text in wanted.items()
        if not (COMMITTED / p).is_file() or (COMMITTED / p).read_text(encoding="utf-8") != text
    ]
    assert stale == [], f"stale or missing under dashboards/: {stale} — {REGENERATE}"
    extra = sorted(str(p.relative_to(COMMITTED)) for p in COMMITTED.rglob("*") if p.is_file())
    extra = [p for p in extra if Path(p) not in wanted]
    assert extra == [], f"files no build writes: {extra} — delete them, then {REGENERATE}"


def test_render_is_stable_and_sorted() -> None:
    first, second = render(default_config()), render(default_config())
    assert first == second
    for path, text in first.items():
        if path.suffix == ".json":
            model = json.loads(text)
            assert text == json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "mouchard.yaml"
    path.write_text(f"state_dir: {tmp_path}/state\n")
    return path


def test_build_writes_both_languages_and_provisioning(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["dashboards", "build", "--output", str(out), "--config", str(config)]) == 0
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == sorted(str(p) for p in render(load_config(config)))
    assert {p.split("/")[0] for p in files} == {"en", "fr", "provisioning"}
    assert "10 file(s) written" in capsys.readouterr().out
    assert main(["dashboards", "build", "--output", str(out), "--config", str(config)]) == 0
    assert "already up to date" in capsys.readouterr().out


def test_build_one_language(tmp_path: Path, config: Path) -> None:
    out = tmp_path / "out"
    assert main(["dashboards", "build", "--output", str(out), "--lang", "fr", "--config", str(config)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["fr", "provisioning"]
    overview = json.loads((out / "fr" / "overview.json").read_text(encoding="utf-8"))
    assert overview["title"] == "Où vont vos données\u00a0?"


def test_build_into_an_unwritable_place_is_bad_input(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["dashboards", "build", "--output", str(blocker / "out"), "--config", str(config)]) == 2
    assert "cannot write to" in capsys.readouterr().err


def test_provisioning_files() -> None:
    files = render(default_config(), [])
    (source,) = yaml.safe_load(files[DATASOURCE_FILE])["datasources"]
    assert source["uid"] == "mouchard-influxdb"
    assert source["type"] == "influxdb"
    assert source["jsonData"] == {
        "dbName": "mouchard",
        "httpMode": "POST",
        "timeInterval": "10s",
        "version": "InfluxQL",
    }
    assert source["url"] == "http://127.0.0.1:8086"
    (provider,) = yaml.safe_load(files[PROVIDER_FILE])["providers"]
    assert provider["type"] == "file"
    assert provider["folderUid"] == "mouchard"
    assert set(files) == {DATASOURCE_FILE, PROVIDER_FILE}


def test_datasource_follows_the_configuration_and_keeps_secrets_out(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("hunter2\n")
    path = tmp_path / "mouchard.yaml"
    path.write_text(
        "influxdb:\n  url: https://influx.lab:8086\n  database: lab\n  username: grafana\n"
        f"  password_file: {secret}\naggregation:\n  interval_s: 30\n"
    )
    text = render(load_config(path, env={}), [Lang.EN])[DATASOURCE_FILE]
    assert "hunter2" not in text
    (source,) = yaml.safe_load(text)["datasources"]
    assert source["url"] == "https://influx.lab:8086"
    assert source["user"] == "grafana"
    assert source["jsonData"]["dbName"] == "lab"
    assert source["jsonData"]["timeInterval"] == "30s"
    assert source["secureJsonData"] == {"password": "$MOUCHARD_INFLUXDB_PASSWORD"}


def test_influxdb_2_uses_a_token_header(tmp_path: Path) -> None:
    path = tmp_path / "mouchard.yaml"
    path.write_text("influxdb:\n  api: v2\n  database: lab-bucket\n  org: lab\n")
    (source,) = yaml.safe_load(render(load_config(path, env={}), [])[DATASOURCE_FILE])["datasources"]
    assert source["jsonData"]["httpHeaderName1"] == "Authorization"
    assert source["secureJsonData"] == {"httpHeaderValue1": "Token $MOUCHARD_INFLUXDB_TOKEN"}
    assert source["jsonData"]["dbName"] == "lab-bucket"


def test_write_reports_only_changed_files(tmp_path: Path) -> None:
    files = {Path("a/b.json"): "{}\n"}
    assert write(tmp_path, files) == [tmp_path / "a/b.json"]
    assert write(tmp_path, files) == []
