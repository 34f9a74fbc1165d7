"""A real run of site.yml on this machine: InfluxDB and Mosquitto from Debian, Mouchard from this checkout.

Everything lives under a temporary root on non-default loopback ports, daemons are started directly
(`*_service_manager: none`: there is no systemd here) and stopped by their pid files afterwards. The
playbook runs twice: the second run must change nothing. Grafana (its repository is out of reach) and
the access point (no Wi-Fi) are checked by test_render.py instead. Takes 3-4 minutes, half of it pip.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import urllib3
import yaml

from tests.ansible.playbook import ROOT, Run, config_key_problems, playbook, tail
from tests.conftest import free_port

pytestmark = [
    pytest.mark.ansible,
    pytest.mark.root,
    pytest.mark.services,
    pytest.mark.skipif(
        os.geteuid() != 0, reason="installs packages, users and daemons: needs root (CI is root)"
    ),
    pytest.mark.timeout(900),
]

# Quotes, backslashes, dollars and spaces: every layer (InfluxQL, YAML, files, MQTT) must pass them.
INFLUX_ADMIN = "adm'in \\ pa$$word"
INFLUX_MOUCHARD = "mou'chard $PATH pw"
INFLUX_GRAFANA = "grafana-reads-only"
MQTT_PASSWORD = 'mq$tt "pass" word'  # noqa: S105 - test passwords of a throwaway deployment


@dataclass(frozen=True)
class Deployment:
    root: Path
    vars: dict[str, Any]
    first: Run
    second: Run

    def path(self, name: str) -> Path:
        return Path(self.vars[name])


def _snapshot_sources(dest: Path) -> Path:
    """The files the package build needs, copied, so edits made meanwhile cannot change the second run."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "gateway", dest / "gateway", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def _variables(root: Path, suffix: str, iface: str) -> dict[str, Any]:
    http, mqtt = free_port(2), free_port()
    user = f"mch-ans-{suffix}"
    return {
        "mouchard_hosts": "localhost",
        "ansible_become": False,
        "ansible_python_interpreter": "/usr/bin/python3",
        # InfluxDB
        "influxdb_service_manager": "none",
        "influxdb_config_file": f"{root}/etc/influxdb/influxdb.conf",
        "influxdb_data_root": f"{root}/var/lib/influxdb",
        "influxdb_pid_file": f"{root}/run/influxd.pid",
        "influxdb_log_file": f"{root}/var/log/influxdb/influxd.log",
        "influxdb_http_port": http,
        "influxdb_rpc_port": http + 1,
        "influxdb_admin_password": INFLUX_ADMIN,
        "influxdb_retention_days": 30,
        "influxdb_users": [
            {
                "name": "mouchard",
                "password": INFLUX_MOUCHARD,
                "grants": [{"database": "mouchard", "privilege": "WRITE"}],
            },
            {
                "name": "grafana",
                "password": INFLUX_GRAFANA,
                "grants": [{"database": "mouchard", "privilege": "READ"}],
            },
        ],
        # Mosquitto
        "mosquitto_service_manager": "none",
        "mosquitto_config_file": f"{root}/etc/mosquitto/mosquitto.conf",
        "mosquitto_password_file": f"{root}/etc/mosquitto/passwd",
        "mosquitto_acl_file": f"{root}/etc/mosquitto/acl",
        "mosquitto_data_dir": f"{root}/var/lib/mosquitto",
        "mosquitto_pid_file": f"{root}/run/mosquitto.pid",
        "mosquitto_log_file": f"{root}/var/log/mosquitto/mosquitto.log",
        "mosquitto_include_dir": "",
        "mosquitto_listener_port": mqtt,
        "mosquitto_users": [
            {
                "name": "mouchard",
                "password": MQTT_PASSWORD,
                "topics": [{"topic": "mouchard/#", "access": "readwrite"}],
            }
        ],
        # Mouchard
        "mouchard_service_manager": "none",
        # Started directly as its own user with CAP_NET_RAW and CAP_NET_ADMIN only, on an idle veth.
        "mouchard_service_enabled": True,
        "mouchard_source_dir": str(_snapshot_sources(root / "src")),
        "mouchard_controller_build_dir": f"{root}/build",
        "mouchard_user": user,
        "mouchard_group": user,
        "mouchard_prefix": f"{root}/opt/mouchard",
        "mouchard_config_dir": f"{root}/etc/mouchard",
        "mouchard_systemd_dir": f"{root}/etc/systemd/system",
        "mouchard_offloads_script": f"{root}/usr/local/sbin/mouchard-offloads",
        "mouchard_state_dir": f"{root}/var/lib/mouchard",
        "mouchard_pid_file": f"{root}/run/mouchard.pid",
        "mouchard_log_file": f"{root}/var/log/mouchard/mouchard.log",
        "mouchard_capture_interface": iface,
        "mouchard_influxdb_url": f"http://127.0.0.1:{http}",
        "mouchard_influxdb_username": "mouchard",
        "mouchard_influxdb_password": INFLUX_MOUCHARD,
        "mouchard_mqtt_enabled": True,
        "mouchard_mqtt_port": mqtt,
        "mouchard_mqtt_username": "mouchard",
        "mouchard_mqtt_password": MQTT_PASSWORD,
        "mouchard_detectors_timezone": "Europe/Paris",
        "mouchard_devices": {"68:db:f5:90:19:64": {"name": "Kitchen Echo", "kind": "voice_assistant"}},
    }


def _stop(pid_file: Path) -> None:
    if pid_file.is_file():
        subprocess.run(
            [
                "start-stop-daemon",
                "--stop",
                "--quiet",
                "--oknodo",
                "--retry",
                "TERM/20/KILL/5",
                "--pidfile",
                str(pid_file),
            ],
            check=False,
        )


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    root = Path(tempfile.mkdtemp(prefix="mch-ansible-"))
    root.chmod(0o755)  # influxd and mosquitto run as their own users and must reach their folders
    suffix = secrets.token_hex(3)
    iface, peer = f"mcha{suffix}", f"mchb{suffix}"  # 10 characters: within IFNAMSIZ
    subprocess.run(["ip", "link", "add", iface, "type", "veth", "peer", "name", peer], check=True)
    for end in (iface, peer):
        subprocess.run(["ip", "link", "set", end, "up"], check=True)
    # The folders a real host has, root's and traversable: Ansible would create missing parents with
    # the mode and owner of the first folder it makes below them (influxdb's, 0750).
    for folder in ("etc", "run", "opt", "usr/local/sbin", "var/lib", "var/log"):
        (root / folder).mkdir(parents=True, mode=0o755)
    variables = _variables(root, suffix, iface)
    vars_file = root / "vars.json"
    vars_file.write_text(json.dumps(variables, indent=1))
    try:
        tags = ("--tags", "influxdb,mosquitto,mouchard")
        started = time.monotonic()
        first = playbook(vars_file, *tags)
        assert first.rc == 0, f"first run failed:\n{tail(first.output, 80)}"
        second = playbook(vars_file, *tags)
        print(f"converge: two runs in {time.monotonic() - started:.0f} s")
        yield Deployment(root, variables, first, second)
    finally:
        for name in ("mouchard_pid_file", "mosquitto_pid_file", "influxdb_pid_file"):
            _stop(Path(variables[name]))
        subprocess.run(["ip", "link", "del", iface], check=False, capture_output=True)
        subprocess.run(["userdel", variables["mouchard_user"]], check=False, capture_output=True)
        subprocess.run(["groupdel", variables["mouchard_group"]], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


# ----------------------------------------------------------------------------------------- idempotence


def test_first_run_converges(deployment: Deployment) -> None:
    assert deployment.first.recap.get("failed") == 0
    assert deployment.first.recap.get("changed", 0) > 0


def test_second_run_changes_nothing(deployment: Deployment) -> None:
    second = deployment.second
    assert second.rc == 0, tail(second.output, 80)
    assert second.recap.get("changed") == 0, f"changed: {second.changed_tasks()}\n{tail(second.output, 80)}"


def test_no_secret_in_the_output(deployment: Deployment) -> None:
    for secret in (INFLUX_ADMIN, INFLUX_MOUCHARD, MQTT_PASSWORD):
        assert secret not in deployment.first.output
        assert secret not in deployment.second.output


# ----------------------------------------------------------------------------------------- InfluxDB


def _influx(
    deployment: Deployment, path: str, auth: tuple[str, str] | None, **fields: str
) -> urllib3.BaseHTTPResponse:
    url = f"{deployment.vars['mouchard_influxdb_url']}{path}"
    headers = urllib3.make_headers(basic_auth=f"{auth[0]}:{auth[1]}") if auth else {}
    if path == "/ping":
        return urllib3.request("GET", url, retries=False)
    if path.startswith("/write"):
        return urllib3.request(
            "POST",
            url,
            fields=None,
            body=fields["body"].encode(),
            headers=headers,
            retries=False,
        )
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return urllib3.request("POST", url, body=urlencode(fields), headers=headers, retries=False)


def test_influxdb_answers_and_wants_a_password(deployment: Deployment) -> None:
    assert _influx(deployment, "/ping", None).status == 204
    assert _influx(deployment, "/query", None, q="SHOW DATABASES").status == 401
    assert _influx(deployment, "/query", ("admin", "wrong"), q="SHOW DATABASES").status == 401


def test_influxdb_database_policy_and_grants(deployment: Deployment) -> None:
    admin = ("admin", INFLUX_ADMIN)
    answer = _influx(deployment, "/query", admin, q="SHOW RETENTION POLICIES ON mouchard").json()
    policies = {row[0]: row for row in answer["results"][0]["series"][0]["values"]}
    assert policies["mouchard"][1] == "720h0m0s"  # 30 days
    assert policies["mouchard"][4] is True  # the default: Mouchard's retention_policy "" writes there
    point = "traffic,device=aa:bb:cc:dd:ee:ff bytes_out=1i"  # now: within the retention policy
    written = _influx(deployment, "/write?db=mouchard", ("mouchard", INFLUX_MOUCHARD), body=point)
    assert written.status == 204, written.data
    # Grafana reads, and may not write.
    read = _influx(
        deployment,
        "/query?db=mouchard",
        ("grafana", INFLUX_GRAFANA),
        q="SELECT bytes_out FROM traffic WHERE device = 'aa:bb:cc:dd:ee:ff'",
    )
    assert read.status == 200
    assert read.json()["results"][0]["series"][0]["values"][0][1] == 1
    denied = _influx(deployment, "/write?db=mouchard", ("grafana", INFLUX_GRAFANA), body=point)
    assert denied.status == 403


def test_influxdb_is_sized_for_a_raspberry_pi(deployment: Deployment) -> None:
    conf = deployment.path("influxdb_config_file").read_text()
    assert 'index-version = "tsi1"' in conf
    assert 'cache-max-memory-size = "64m"' in conf
    assert "max-series-per-database = 100000" in conf
    assert "auth-enabled = true" in conf
    assert f'bind-address = "127.0.0.1:{deployment.vars["influxdb_http_port"]}"' in conf


def _process_user(pid_file: Path) -> str:
    pid = pid_file.read_text().strip()
    status = Path(f"/proc/{pid}/status").read_text()
    uid = int(re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE).group(1))  # type: ignore[union-attr]
    done = subprocess.run(["id", "-nu", str(uid)], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_daemons_do_not_run_as_root(deployment: Deployment) -> None:
    assert _process_user(deployment.path("influxdb_pid_file")) == "influxdb"
    assert _process_user(deployment.path("mosquitto_pid_file")) == "mosquitto"


# ----------------------------------------------------------------------------------------- Mosquitto


def _mqtt(
    deployment: Deployment, tool: str, *args: str, password: str | None = MQTT_PASSWORD
) -> subprocess.CompletedProcess[str]:
    auth = ["-u", "mouchard", "-P", password] if password is not None else []
    cmd = [tool, "-h", "127.0.0.1", "-p", str(deployment.vars["mosquitto_listener_port"]), *auth, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)


def test_mosquitto_refuses_anonymous_and_wrong_passwords(deployment: Deployment) -> None:
    assert (
        _mqtt(deployment, "mosquitto_pub", "-t", "mouchard/lab/status", "-m", "x", password=None).returncode
        != 0
    )
    assert (
        _mqtt(deployment, "mosquitto_pub", "-t", "mouchard/lab/status", "-m", "x", password="nope").returncode  # noqa: S106
        != 0
    )


def test_mosquitto_gives_mouchard_its_prefix_only(deployment: Deployment) -> None:
    # Retained messages: the subscriber gets the message if, and only if, the ACL let it through.
    ours = _mqtt(deployment, "mosquitto_pub", "-r", "-t", "mouchard/acl-test/x", "-m", "allowed")
    assert ours.returncode == 0, ours.stderr
    got = _mqtt(deployment, "mosquitto_sub", "-t", "mouchard/acl-test/x", "-C", "1", "-W", "5")
    assert got.stdout.strip() == "allowed"
    _mqtt(deployment, "mosquitto_pub", "-r", "-t", "elsewhere/status", "-m", "denied")
    other = _mqtt(deployment, "mosquitto_sub", "-t", "elsewhere/status", "-C", "1", "-W", "2")
    assert other.stdout.strip() == ""


def test_mosquitto_data_belongs_to_mosquitto(deployment: Deployment) -> None:
    data = deployment.path("mosquitto_data_dir")
    assert data.owner() == "mosquitto"
    assert (deployment.path("mosquitto_password_file").stat().st_mode & 0o777) == 0o640


# ----------------------------------------------------------------------------------------- Mouchard


def _config(deployment: Deployment) -> Path:
    return Path(deployment.vars["mouchard_config_dir"]) / "mouchard.yaml"


def test_mouchard_config_check_as_the_service_user(deployment: Deployment) -> None:
    venv = Path(deployment.vars["mouchard_prefix"]) / "venv"
    done = subprocess.run(
        [
            "/usr/sbin/runuser",
            "-u",
            deployment.vars["mouchard_user"],
            "--",
            str(venv / "bin" / "mouchard"),
            "config",
            "check",
            "--config",
            str(_config(deployment)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout
    for secret in (INFLUX_MOUCHARD, MQTT_PASSWORD):
        assert secret not in done.stdout


def test_mouchard_config_has_exactly_the_documented_keys(deployment: Deployment) -> None:
    config = yaml.safe_load(_config(deployment).read_text())
    problems = config_key_problems(config)
    assert not problems, problems
    assert config["influxdb"]["password_file"].endswith("influxdb.password")
    assert config["capture"]["interface"] == deployment.vars["mouchard_capture_interface"]
    assert list(config["devices"]) == ["68:db:f5:90:19:64"]


def test_mouchard_secrets_are_files_only_mouchard_reads(deployment: Deployment) -> None:
    folder = Path(deployment.vars["mouchard_config_dir"])
    assert (folder / "influxdb.password").read_text() == INFLUX_MOUCHARD
    assert (folder / "mqtt.password").read_text() == MQTT_PASSWORD
    for path in (folder, folder / "influxdb.password", folder / "mqtt.password", folder / "mouchard.yaml"):
        assert path.owner() == "root"
        assert path.group() == deployment.vars["mouchard_group"]
        assert path.stat().st_mode & 0o007 == 0, path
    assert INFLUX_MOUCHARD not in _config(deployment).read_text()
    assert Path(deployment.vars["mouchard_state_dir"]).owner() == deployment.vars["mouchard_user"]


def test_offloads_are_off_on_the_capture_interface(deployment: Deployment) -> None:
    shown = subprocess.run(
        ["ethtool", "-k", deployment.vars["mouchard_capture_interface"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for feature in ("generic-receive-offload", "generic-segmentation-offload", "tcp-segmentation-offload"):
        assert re.search(rf"^{feature}: off", shown, re.MULTILINE), shown


def test_the_unit_is_hardened(deployment: Deployment) -> None:
    unit = deployment.path("mouchard_systemd_dir") / "mouchard.service"
    text = unit.read_text()
    lines = set(text.splitlines())
    assert f"User={deployment.vars['mouchard_user']}" in lines
    assert "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN" in lines
    assert "CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN" in lines
    assert {"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes"} <= lines
    assert f"ReadWritePaths={deployment.vars['mouchard_state_dir']}" in lines
    assert re.search(r"^ExecStart=\S+/bin/mouchard run --config \S+/mouchard.yaml$", text, re.MULTILINE)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_units_verify(deployment: Deployment) -> None:
    folder = deployment.path("mouchard_systemd_dir")
    for unit in ("mouchard.service", "mouchard-offloads@.service"):
        done = subprocess.run(
            ["systemd-analyze", "verify", str(folder / unit)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        problems = [line for line in done.stderr.splitlines() if str(folder) in line]
        assert not problems, done.stderr


CAP_NET_ADMIN, CAP_NET_RAW = 12, 13


def test_mouchard_runs_unprivileged_with_two_capabilities(deployment: Deployment) -> None:
    pid = deployment.path("mouchard_pid_file").read_text().strip()
    status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    assert _process_user(deployment.path("mouchard_pid_file")) == deployment.vars["mouchard_user"]
    wanted = (1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW)
    assert int(status["CapEff"], 16) == wanted
    assert int(status["CapBnd"], 16) == wanted
    assert status["NoNewPrivs"].strip() == "1"


def test_mouchard_announces_itself_over_mqtt(deployment: Deployment) -> None:
    """`mouchard run` logged in to Mosquitto with the templated password file, within its ACL."""
    topic = f"mouchard/{deployment.vars.get('mouchard_gateway_id', 'lab')}/status"
    got = _mqtt(deployment, "mosquitto_sub", "-t", topic, "-C", "1", "-W", "20")
    log = deployment.path("mouchard_log_file")
    assert got.stdout.strip() == "online", log.read_text()[-3000:] if log.is_file() else "no log"
