"""Start-up against an InfluxDB 1.6.7 with authentication: what is created, what the user is told,
and that passwords never reach a message, a log line or a repr."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import Config, load_config
from gateway.sinks.factory import open_influx_sink
from gateway.sinks.influxdb import InfluxSetupError
from gateway.sinks.reliable import ReliableSink
from tests.sinks.conftest import FAST, Server, config, influx_query, wait_until, write_config

SECRET = "Zebra-Secret-4242-xyzzy"  # noqa: S105 - a test password, distinctive: found anywhere = leaked
ADMIN = ("admin", "adminpw")


def with_password(
    tmp_path: Path,
    server: Server,
    db: str,
    user: str,
    extra: str = "",
    password: str = SECRET,
    retention_days: int = 0,
) -> Config:
    """A configuration whose password comes from the environment, as in production."""
    path = write_config(
        tmp_path, server.url, db, f"  username: {user}\n{extra}", retention_days=retention_days
    )
    return load_config(path, env={"MOUCHARD_INFLUXDB_PASSWORD": password})


def assert_secret_absent(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text


@pytest.fixture(autouse=True)
def _all_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3's and ours: a leak at any level counts


def test_a_wrong_password_stops_start_up_with_what_to_do(
    auth_influxd: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = with_password(tmp_path, auth_influxd, "any", "admin")
    with pytest.raises(InfluxSetupError) as info:
        open_influx_sink(cfg, timing=FAST)
    message = str(info.value)
    assert "401" in message
    assert "MOUCHARD_INFLUXDB_PASSWORD" in message
    assert_secret_absent(message, repr(info.value), caplog.text, repr(cfg), str(cfg))


def test_a_user_who_may_not_create_the_database_is_told_what_to_ask_for(
    auth_influxd: Server, tmp_path: Path
) -> None:
    influx_query(auth_influxd.url, f"CREATE USER writer WITH PASSWORD '{SECRET}'", auth=ADMIN)
    with pytest.raises(InfluxSetupError) as info:
        open_influx_sink(with_password(tmp_path, auth_influxd, "w_missing", "writer"), timing=FAST)
    assert 'CREATE DATABASE "w_missing"' in str(info.value)
    assert 'GRANT WRITE ON "w_missing" TO "writer"' in str(info.value)

    influx_query(auth_influxd.url, "CREATE DATABASE w_ok", auth=ADMIN)
    influx_query(auth_influxd.url, "GRANT WRITE ON w_ok TO writer", auth=ADMIN)
    sink = open_influx_sink(with_password(tmp_path, auth_influxd, "w_ok", "writer"), timing=FAST)
    sink.write(["traffic,device=aa:bb:cc:dd:ee:ff bytes_out=1i,bytes_in=2i 1730836200000000000"])
    sink.close()
    assert sink.report().written == 3  # with the two `mouchard` points
    assert_secret_absent(repr(sink), sink.describe(), repr(sink.transport))


def test_a_retention_policy_is_created_when_permitted(auth_influxd: Server, tmp_path: Path) -> None:
    extra = "  retention_policy: mouchard_30d\n"
    cfg = with_password(tmp_path, auth_influxd, "rp_db", "admin", extra, password=ADMIN[1], retention_days=30)
    sink = open_influx_sink(cfg, timing=FAST)
    sink.close()
    res = influx_query(auth_influxd.url, 'SHOW RETENTION POLICIES ON "rp_db"', auth=ADMIN)
    policies = {row[0]: (row[1], row[4]) for row in res[0]["series"][0]["values"]}  # type: ignore[index]
    assert policies["mouchard_30d"] == ("720h0m0s", True)  # the default: Grafana's queries read it


def test_else_the_message_gives_the_exact_statement(auth_influxd: Server, tmp_path: Path) -> None:
    influx_query(auth_influxd.url, f"CREATE USER reader WITH PASSWORD '{SECRET}'", auth=ADMIN)
    influx_query(auth_influxd.url, "CREATE DATABASE r_db", auth=ADMIN)
    influx_query(auth_influxd.url, "GRANT WRITE ON r_db TO reader", auth=ADMIN)
    extra = "  retention_policy: short\n"
    cfg = with_password(tmp_path, auth_influxd, "r_db", "reader", extra, retention_days=30)
    with pytest.raises(InfluxSetupError) as info:
        open_influx_sink(cfg, timing=FAST)
    assert 'CREATE RETENTION POLICY "short" ON "r_db" DURATION 30d REPLICATION 1 DEFAULT' in str(info.value)


def test_replay_with_a_wrong_password_exits_1_and_never_prints_it(
    auth_influxd: Server,
    lab_parts: list[Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MOUCHARD_INFLUXDB_PASSWORD", SECRET)
    cfg = write_config(tmp_path, auth_influxd.url, "cli", "  username: admin\n")
    assert main(["replay", str(lab_parts[0]), "--config", str(cfg)]) == 1
    out, err = capsys.readouterr()
    assert "401" in err
    assert_secret_absent(out, err, caplog.text)


def test_credentials_in_the_url_are_never_shown(
    auth_influxd: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = auth_influxd.url.replace("http://", f"http://admin:{SECRET}@")
    with pytest.raises(InfluxSetupError) as info:  # credentials belong in username and the password
        open_influx_sink(config(tmp_path, url, "url_db"), timing=FAST)
    assert_secret_absent(str(info.value), caplog.text)


def test_a_password_changed_while_running_raises_on_write_and_keeps_the_points(
    auth_influxd: Server, tmp_path: Path
) -> None:
    influx_query(auth_influxd.url, f"CREATE USER rotating WITH PASSWORD '{SECRET}'", auth=ADMIN)
    influx_query(auth_influxd.url, "CREATE DATABASE rot", auth=ADMIN)
    influx_query(auth_influxd.url, "GRANT WRITE ON rot TO rotating", auth=ADMIN)
    sink = open_influx_sink(with_password(tmp_path, auth_influxd, "rot", "rotating"), timing=FAST)
    assert isinstance(sink, ReliableSink)
    influx_query(auth_influxd.url, "SET PASSWORD FOR rotating = 'changed'", auth=ADMIN)
    line = "traffic,device=aa:bb:cc:dd:ee:01 bytes_out=5i,bytes_in=6i 1730836200000000000"
    sink.write([line])
    assert wait_until(lambda: sink.report().problem is not None, 5)
    with pytest.raises(InfluxSetupError) as info:
        sink.write([line.replace("01", "02")])
    assert "mouchard spool flush" in str(info.value)
    assert_secret_absent(str(info.value))
    sink.close()
    assert sink.report().spool.points >= 2  # both lines wait for a fixed password and a flush
