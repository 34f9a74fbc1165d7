"""`mouchard dashboards push` against a local server that speaks Grafana's documented HTTP API.

No Grafana server runs in the test suite (it cannot be installed here): `fake_grafana` answers as the
API reference documents and rejects request bodies that differ from it.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.config import default_config
from gateway.grafana.language import Lang
from gateway.grafana.provisioning import DATASOURCE_NAME, FOLDER_UID, datasource
from gateway.grafana.push import Change, Pusher, PushError, connect
from gateway.grafana.render import dashboards
from gateway.grafana.settings import GrafanaSettings, SettingsError, settings_from, with_lab_settings
from tests.grafana.fake_grafana import GrafanaState, fake_grafana

TOKEN = "glsa_mouchardTestToken_0123456789abcdef"  # noqa: S105 - a made-up token for the fake server
UIDS = {"mouchard-overview", "mouchard-device", "mouchard-phone-home", "mouchard-health"}


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MOUCHARD_GRAFANA_TOKEN", TOKEN)
    path = tmp_path / "mouchard.yaml"
    path.write_text(f"state_dir: {tmp_path}/state\ndetectors:\n  timezone: America/Montreal\n")
    return path


def push(config: Path, url: str, *extra: str) -> int:
    return main(["dashboards", "push", "--config", str(config), "--url", url, *extra])


def summary(state: GrafanaState) -> list[tuple[str, str]]:
    return [(c.method, c.path) for c in state.writes]


def test_first_push_creates_everything_a_second_changes_nothing(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fake_grafana(TOKEN) as (url, state):
        assert push(config, url) == 0
        assert state.violations == []
        assert summary(state) == [
            ("POST", "/api/folders"),
            ("POST", "/api/datasources"),
            *[("POST", "/api/dashboards/db")] * 4,
        ]
        assert state.folders[FOLDER_UID]["title"] == "Mouchard"
        assert state.datasources["mouchard-influxdb"]["name"] == DATASOURCE_NAME
        assert set(state.dashboards) == UIDS
        assert all(saved["folderUid"] == FOLDER_UID for saved in state.dashboards.values())
        first = capsys.readouterr().out
        assert "6 change(s)" in first

        before = len(state.calls)
        assert push(config, url) == 0
        assert state.violations == []
        second = state.calls[before:]
        assert [c.method for c in second] == ["GET"] * 6, "a second push must only read"
        assert all(saved["dashboard"]["version"] == 1 for saved in state.dashboards.values())
        assert "0 change(s)" in capsys.readouterr().out


def test_request_bodies_follow_the_documented_api(config: Path) -> None:
    with fake_grafana(TOKEN) as (url, state):
        assert push(config, url) == 0
    bodies = {(c.method, c.path): c.body for c in state.writes}
    assert bodies[("POST", "/api/folders")] == {"title": "Mouchard", "uid": FOLDER_UID}
    source = bodies[("POST", "/api/datasources")]
    assert source["type"] == "influxdb"
    assert source["access"] == "proxy"
    assert source["jsonData"]["version"] == "InfluxQL"
    assert source["jsonData"]["dbName"] == "mouchard"
    assert "secureJsonData" not in source  # InfluxDB 1.x without authentication: no secret
    saves = [c.body for c in state.writes if c.path == "/api/dashboards/db"]
    for body in saves:
        assert body["folderUid"] == FOLDER_UID
        assert body["overwrite"] is True
        assert body["dashboard"]["id"] is None


def test_an_edited_dashboard_is_put_back_and_only_it(config: Path) -> None:
    with fake_grafana(TOKEN) as (url, state):
        assert push(config, url) == 0
        state.dashboards["mouchard-health"]["dashboard"]["title"] = "edited in the UI"
        state.dashboards["mouchard-device"]["folderUid"] = "elsewhere"
        before = len(state.writes)
        assert push(config, url) == 0
        again = state.writes[before:]
        assert sorted(c.body["dashboard"]["uid"] for c in again) == ["mouchard-device", "mouchard-health"]
        assert state.dashboards["mouchard-health"]["dashboard"]["title"] == "Gateway health"
        assert state.dashboards["mouchard-device"]["folderUid"] == FOLDER_UID
        assert state.violations == []


def test_lab_settings_and_language_reach_the_dashboards(config: Path) -> None:
    with fake_grafana(TOKEN) as (url, state):
        assert push(config, url, "--lang", "fr") == 0
    overview = state.dashboards["mouchard-overview"]["dashboard"]
    assert overview["title"] == "Où vont vos données\u00a0?"
    device = state.dashboards["mouchard-device"]["dashboard"]
    (timezone,) = [v for v in device["templating"]["list"] if v["name"] == "timezone"]
    assert timezone["current"]["value"] == timezone["query"] == "America/Montreal"


def test_grafana_under_a_sub_path(config: Path) -> None:
    with fake_grafana(TOKEN, prefix="/grafana") as (url, state):
        assert url.endswith("/grafana")
        assert push(config, url) == 0
    assert state.violations == []
    assert all(c.path.startswith("/grafana/api/") for c in state.calls)


def test_folder_title_and_datasource_drift_are_corrected() -> None:
    cfg = default_config()
    boards = dashboards(Lang.EN)
    with fake_grafana(TOKEN) as (url, state):
        settings = GrafanaSettings(url=url, folder="Mouchard", token=TOKEN)
        Pusher(connect(settings), settings).push(datasource(cfg), {}, boards)
        state.datasources["mouchard-influxdb"]["url"] = "http://elsewhere:8086"
        renamed = GrafanaSettings(url=url, folder="Labo", token=TOKEN)
        report = Pusher(connect(renamed), renamed).push(datasource(cfg), {}, boards)
        assert [change for _, change in report.changes[:2]] == [Change.UPDATED, Change.UPDATED]
        assert state.folders[FOLDER_UID]["title"] == "Labo"
        assert state.datasources["mouchard-influxdb"]["url"] == "http://127.0.0.1:8086"
        assert state.violations == []


def test_secrets_are_sent_once_and_only_as_secure_json() -> None:
    cfg = default_config()
    boards: dict[str, dict[str, Any]] = {}
    with fake_grafana(TOKEN) as (url, state):
        settings = GrafanaSettings(url=url, token=TOKEN)
        Pusher(connect(settings), settings).push(datasource(cfg), {"password": "s3cret"}, boards)
        (create,) = [c for c in state.writes if c.path == "/api/datasources"]
        assert create.body["secureJsonData"] == {"password": "s3cret"}
        assert "s3cret" not in str({k: v for k, v in create.body.items() if k != "secureJsonData"})
        report = Pusher(connect(settings), settings).push(datasource(cfg), {"password": "s3cret"}, boards)
        assert report.changed == 0  # stored (secureJsonFields says so): not sent again
        assert len(state.writes) == 2  # the folder and the data source, once


def test_without_a_token_nothing_is_sent(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MOUCHARD_GRAFANA_TOKEN")
    with fake_grafana(TOKEN) as (url, state):
        assert push(config, url) == 2
    assert state.calls == []
    assert "MOUCHARD_GRAFANA_TOKEN" in capsys.readouterr().err


def test_a_refused_token_is_reported_without_being_shown(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MOUCHARD_GRAFANA_TOKEN", "glsa_wrong")
    with fake_grafana(TOKEN) as (url, _):
        assert push(config, url) == 1
    out = capsys.readouterr()
    assert "refused the token (HTTP 401)" in out.err
    assert "glsa_wrong" not in out.err + out.out


def test_an_unreachable_grafana_is_reported(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert push(config, f"http://127.0.0.1:{port}") == 1
    assert "cannot reach Grafana" in capsys.readouterr().err


def test_push_error_says_whether_to_retry() -> None:
    with fake_grafana(TOKEN) as (url, _):
        wrong = GrafanaSettings(url=url, token="glsa_wrong")  # noqa: S106 - refused by the fake
        with pytest.raises(PushError) as refused:
            Pusher(connect(wrong), wrong).push({"uid": "x", "name": "x"}, {}, {})
    assert refused.value.retryable is False


def test_settings_checks() -> None:
    cfg = default_config()
    with pytest.raises(SettingsError, match="MOUCHARD_GRAFANA_TOKEN"):
        settings_from(cfg, env={})
    with pytest.raises(SettingsError, match="not an http"):
        settings_from(cfg, env={"MOUCHARD_GRAFANA_TOKEN": TOKEN}, url="ftp://grafana")
    settings = settings_from(cfg, env={"MOUCHARD_GRAFANA_TOKEN": TOKEN}, url="http://g:3000/", lang="fr")
    assert (settings.url, settings.language, settings.folder) == ("http://g:3000", Lang.FR, "Mouchard")
    assert TOKEN not in repr(settings)


def test_settings_read_a_grafana_section_when_the_configuration_has_one() -> None:
    """The `grafana:` section (docs/dashboards.md) is read by name; a stand-in shows the mapping."""
    from types import SimpleNamespace

    from pydantic import SecretStr

    section = SimpleNamespace(
        url="https://grafana.lab:3000",
        folder="Atelier",
        language="fr",
        home_country="be",
        verify_tls=False,
        timeout_s=3,
        token=SecretStr("from-file"),
    )
    cfg = SimpleNamespace(grafana=section, detectors=SimpleNamespace(timezone="Europe/Brussels"))
    settings = settings_from(cfg, env={})  # type: ignore[arg-type]
    assert settings == GrafanaSettings(
        "https://grafana.lab:3000", "Atelier", Lang.FR, "BE", "Europe/Brussels", False, 3.0, "from-file"
    )


def test_with_lab_settings_changes_only_the_text_boxes() -> None:
    board = dashboards(Lang.EN)["overview"]
    changed = with_lab_settings(board, GrafanaSettings(home_country="BE", token=TOKEN))
    (country,) = changed["templating"]["list"]
    assert country["query"] == "BE"
    assert country["current"] == {"selected": True, "text": "BE", "value": "BE"}
    assert {k: v for k, v in changed.items() if k != "templating"} == {
        k: v for k, v in board.items() if k != "templating"
    }
    assert board["templating"]["list"][0]["query"] == "FR"  # the original is untouched
