"""What the roles that cannot run here would write: Grafana in check mode, the access point's files,
and mouchard.yaml against docs/configuration.md and `mouchard config check`.

Grafana's repository cannot be reached from here, and there is no Wi-Fi: these tests render the
templates (Grafana through the real role in check mode, its diffs recorded by a callback plugin of
this folder) and check the results the way the project checks its own generated files.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import load_config
from gateway.grafana.provisioning import DATASOURCE_NAME, FOLDER_UID, PROVIDER_PATH, datasource
from tests.ansible.playbook import ANSIBLE, ROOT, config_key_problems, environment, playbook, tail, tool

pytestmark = pytest.mark.ansible
UID = "mouchard-influxdb"
HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------------------- helpers


def _diffs(path: Path) -> dict[str, str]:
    """The content each task would write ("after"), by destination, from the record_diffs callback."""
    after: dict[str, str] = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        for diff in record["diff"]:
            if isinstance(diff.get("after"), str) and record["dest"]:
                after[record["dest"]] = diff["after"]
    return after


def _check_run(tmp_path: Path, variables: dict[str, Any], *args: str) -> tuple[int, str, dict[str, str]]:
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps(variables))
    record = tmp_path / "diffs.jsonl"
    record.touch()
    env = environment(
        ANSIBLE_CALLBACKS_ENABLED="record_diffs",
        ANSIBLE_CALLBACK_PLUGINS=str(HERE / "callback_plugins"),
        MOUCHARD_DIFF_FILE=str(record),
    )
    run = playbook(vars_file, "--check", "--diff", *args, env=env, timeout=300)
    return run.rc, run.output, _diffs(record)


def _render(role: str, template: str, dest: Path, variables: dict[str, Any]) -> str:
    """One template of a role rendered by Ansible with the role's defaults and vars and `variables`."""
    folder = ANSIBLE / "roles" / role
    extra = dest.parent / f"{dest.name}.vars.json"
    extra.write_text(json.dumps({"role_path": str(folder), **variables}))
    done = subprocess.run(
        [
            tool("ansible"),
            "localhost",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-m",
            "ansible.builtin.template",
            "-a",
            f"src={folder / 'templates' / template} dest={dest} mode=0644",
            "-e",
            f"@{folder / 'defaults' / 'main.yml'}",
            "-e",
            f"@{folder / 'vars' / 'main.yml'}",
            "-e",
            f"@{extra}",
            "-e",
            "ansible_python_interpreter=/usr/bin/python3",
        ],
        cwd=ANSIBLE,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, tail(done.stdout + done.stderr)
    return dest.read_text()


# ----------------------------------------------------------------------------------------- Grafana


def _dashboards_source(tmp_path: Path) -> Path:
    """The repository's dashboards/ when it has English dashboards, else a small stand-in."""
    real = ROOT / "dashboards"
    if any((real / "en").glob("*.json")):
        return real
    stand_in = tmp_path / "dashboards"
    (stand_in / "en").mkdir(parents=True)
    board = {
        "uid": "mouchard-overview",
        "title": "Overview",
        "panels": [{"datasource": {"type": "influxdb", "uid": UID}}],
    }
    (stand_in / "en" / "overview.json").write_text(json.dumps(board))
    return stand_in


def _grafana_vars(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    root = tmp_path / "grafana"
    variables = {
        "mouchard_hosts": "localhost",
        "ansible_become": False,
        "ansible_python_interpreter": "/usr/bin/python3",
        "grafana_service_manager": "none",
        "grafana_admin_password": "admin-pass-for-tests",
        "grafana_influxdb_url": "http://127.0.0.1:8086",
        "grafana_influxdb_user": "grafana",
        "grafana_influxdb_password": "grafana-reads",
        "grafana_dashboards_source_dir": str(_dashboards_source(tmp_path)),
        "grafana_config_file": f"{root}/etc/grafana.ini",
        "grafana_provisioning_dir": f"{root}/provisioning",
        "grafana_secrets_dir": f"{root}/secrets",
        "grafana_dashboards_dir": f"{root}/dashboards",
        "grafana_data_dir": f"{root}/data",
    }
    variables.update(changes)
    return variables


def _uids(node: object) -> set[str]:
    """Every datasource uid a dashboard refers to."""
    found: set[str] = set()
    if isinstance(node, dict):
        source = node.get("datasource")
        if isinstance(source, dict) and isinstance(source.get("uid"), str):
            found.add(source["uid"])
        for value in node.values():
            found |= _uids(value)
    elif isinstance(node, list):
        for value in node:
            found |= _uids(value)
    return found


def test_grafana_provisioning_renders_in_check_mode(tmp_path: Path) -> None:
    variables = _grafana_vars(tmp_path)
    rc, output, after = _check_run(tmp_path, variables, "--tags", "grafana", "--skip-tags", "install,service")
    assert rc == 0, tail(output)
    root = Path(variables["grafana_provisioning_dir"])
    assert not root.exists(), "check mode wrote files"

    (source,) = yaml.safe_load(after[f"{root}/datasources/mouchard.yaml"])["datasources"]
    assert source["uid"] == UID
    # The same data source as `mouchard dashboards build` describes for this configuration
    # (gateway/grafana/provisioning.py), the password read from a file instead of the environment.
    config = tmp_path / "mouchard.yaml"
    config.write_text("influxdb:\n  username: grafana\n")
    expected = {**datasource(load_config(config, env={})), "editable": False}
    assert {key: value for key, value in source.items() if key != "secureJsonData"} == expected
    assert source["name"] == DATASOURCE_NAME
    password_file = f"{variables['grafana_secrets_dir']}/influxdb.password"
    assert source["secureJsonData"] == {"password": f"$__file{{{password_file}}}"}
    assert "grafana-reads" not in output

    (provider,) = yaml.safe_load(after[f"{root}/dashboards/mouchard.yaml"])["providers"]
    assert provider["type"] == "file"
    assert provider["folderUid"] == FOLDER_UID
    assert provider["options"]["path"] == variables["grafana_dashboards_dir"]

    boards = {Path(h).name: text for h, text in after.items() if h.endswith(".json")}
    wanted = sorted(p.name for p in (Path(variables["grafana_dashboards_source_dir"]) / "en").glob("*.json"))
    assert sorted(boards) == wanted
    for name, text in boards.items():
        # Grafana's own "-- Grafana --" source holds the built-in annotations.
        assert _uids(json.loads(text)) - {"-- Grafana --"} == {UID}, name

    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(after[variables["grafana_config_file"]])
    assert (
        ini["security"]["admin_password"] == f"$__file{{{variables['grafana_secrets_dir']}/admin.password}}"
    )
    assert ini["analytics"]["reporting_enabled"] == "false"


def test_grafana_default_provider_path_is_the_one_the_project_documents() -> None:
    defaults = yaml.safe_load((ANSIBLE / "roles" / "grafana" / "defaults" / "main.yml").read_text())
    assert defaults["grafana_dashboards_dir"] == PROVIDER_PATH
    assert defaults["grafana_datasource_uid"] == UID


def test_grafana_stops_without_an_admin_password(tmp_path: Path) -> None:
    variables = _grafana_vars(tmp_path, grafana_admin_password="")
    rc, output, _ = _check_run(tmp_path, variables, "--tags", "grafana")
    assert rc != 0
    assert "grafana_admin_password is empty" in output


# ----------------------------------------------------------------------------------------- Mouchard


def test_mouchard_yaml_has_the_documented_keys_and_passes_config_check(tmp_path: Path) -> None:
    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    for name in ("influxdb.password", "mqtt.password", "grafana.token"):
        (config_dir / name).write_text("secret\n")
    text = _render(
        "mouchard",
        "mouchard.yaml.j2",
        config_dir / "mouchard.yaml",
        {
            "mouchard_config_dir": str(config_dir),
            "mouchard_state_dir": str(tmp_path / "state"),
            "mouchard_influxdb_username": "mouchard",
            "mouchard_influxdb_password": "x",
            "mouchard_mqtt_enabled": True,
            "mouchard_mqtt_password": "x",
            "mouchard_grafana_token": "x",
            "mouchard_detectors_timezone": "Europe/Paris",
            "mouchard_devices": {"68:db:f5:90:19:64": {"name": "Kitchen Echo"}},
            "mouchard_detectors_activation_thresholds": {"68:db:f5:90:19:64": 12172},
        },
    )
    problems = config_key_problems(yaml.safe_load(text))
    assert not problems, problems
    done = subprocess.run(
        [tool("mouchard"), "config", "check", "--config", str(config_dir / "mouchard.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("MOUCHARD_")},
    )
    assert done.returncode == 0, done.stderr


def test_mouchard_keeps_the_days_of_the_influxdb_roles_default_policy(tmp_path: Path) -> None:
    text = _render(
        "mouchard",
        "mouchard.yaml.j2",
        tmp_path / "mouchard.yaml",
        {"mouchard_state_dir": str(tmp_path / "state"), "mouchard_influxdb_retention_days": "365"},
    )
    assert yaml.safe_load(text)["influxdb"]["retention_days"] == 365
    assert load_config(tmp_path / "mouchard.yaml", env={}).influxdb.retention_days == 365
    # the example inventory gives Mouchard the influxdb role's days, so neither undoes the other
    wired = yaml.safe_load((ANSIBLE / "inventories/example/group_vars/all/main.yml").read_text())
    assert wired["mouchard_influxdb_retention_days"] == "{{ influxdb_retention_days }}"
    role = yaml.safe_load((ANSIBLE / "roles/mouchard/defaults/main.yml").read_text())
    assert role["mouchard_influxdb_retention_days"] == load_config(None, env={}).influxdb.retention_days


# ----------------------------------------------------------------------------------------- access point

AP_VARS = {
    "access_point_enabled": True,
    "access_point_interface": "wlan9",
    "access_point_uplink_interface": "eth9",
    "access_point_passphrase": "lab wifi passphrase",
}


def test_access_point_files(tmp_path: Path) -> None:
    hostapd = _render("access_point", "hostapd.conf.j2", tmp_path / "hostapd.conf", AP_VARS)
    settings = dict(
        line.split("=", 1) for line in hostapd.splitlines() if "=" in line and not line.startswith("#")
    )
    assert settings["interface"] == "wlan9"
    assert settings["wpa"] == "2"
    assert settings["wpa_passphrase"] == AP_VARS["access_point_passphrase"]
    assert settings["country_code"] == "FR"
    dnsmasq = _render("access_point", "dnsmasq.conf.j2", tmp_path / "dnsmasq.conf", AP_VARS)
    assert "interface=wlan9" in dnsmasq.splitlines()
    assert "dhcp-option=option:dns-server,10.42.0.1" in dnsmasq.splitlines()
    unit = _render("access_point", "mouchard-ap-address.service.j2", tmp_path / "address.service", AP_VARS)
    assert "ExecStart=/sbin/ip address replace 10.42.0.1/24 dev wlan9" in unit.splitlines()


def test_access_point_firewall_counts_flows_and_parses(tmp_path: Path) -> None:
    rules = _render("access_point", "access-point.nft.j2", tmp_path / "ap.nft", AP_VARS)
    assert "ct state established,related accept" in rules
    assert 'ip saddr 10.42.0.0/24 oifname "eth9" masquerade' in rules
    nft = shutil.which("nft")
    if nft is None or os.geteuid() != 0:
        pytest.skip("nft (Debian's nftables) and root are needed to parse the rules")
    # Parsed (--check) in a network namespace of its own, so the machine's rules are never touched.
    done = subprocess.run(
        ["unshare", "--net", nft, "--check", "--file", str(tmp_path / "ap.nft")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
