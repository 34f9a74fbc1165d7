"""influxdb.retention_days against Debian's InfluxDB 1.6.7: the live gateway's set-up gives the
database's DEFAULT retention policy that duration, does nothing the second time, follows a change,
and a user who may not change it is told, in one line, what to ask an admin to run."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from gateway.sinks.factory import open_influx_sink
from gateway.sinks.influxdb import RetentionSetup
from tests.conftest import Service
from tests.sinks.conftest import FAST, Server, config, influx_query
from tests.sinks.test_influx_setup import ADMIN, SECRET, with_password

DAY_H = 24


def policies(url: str, db: str, auth: tuple[str, str] | None = None) -> dict[str, tuple[str, str, bool]]:
    """SHOW RETENTION POLICIES: name -> (duration, shard group duration, default)."""
    res = influx_query(url, f'SHOW RETENTION POLICIES ON "{db}"', auth=auth)
    return {row[0]: (row[1], row[2], row[4]) for row in res[0]["series"][0]["values"]}  # type: ignore[index]


def default_policy(url: str, db: str, auth: tuple[str, str] | None = None) -> tuple[str, str]:
    found = [(name, duration) for name, (duration, _, default) in policies(url, db, auth).items() if default]
    assert len(found) == 1, found
    return found[0]


def set_up(tmp_path: Path, url: str, db: str, days: int, extra: str = "") -> None:
    """What `mouchard run` does on start: open the sink (which sets up InfluxDB), then close it."""
    cfg = config(tmp_path, url, db, extra, retention_days=days)
    sink = open_influx_sink(cfg, timing=FAST)
    sink.close()


def fresh() -> str:
    return f"ret_{uuid.uuid4().hex[:8]}"


def test_the_default_policy_gets_the_configured_duration(influxdb: Service, tmp_path: Path) -> None:
    db = fresh()
    set_up(tmp_path, influxdb.url, db, 30)
    # InfluxDB made `autogen` (infinite) with the database; it now keeps 30 days and is still the default
    assert default_policy(influxdb.url, db) == ("autogen", f"{30 * DAY_H}h0m0s")
    assert list(policies(influxdb.url, db)) == ["autogen"]


def test_a_second_set_up_changes_nothing_and_a_new_value_alters_it(
    influxdb: Service, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = fresh()
    caplog.set_level(logging.INFO, logger="gateway.sinks.influxdb")
    set_up(tmp_path, influxdb.url, db, 30)
    assert "ALTER RETENTION POLICY" in caplog.text
    caplog.clear()
    set_up(tmp_path, influxdb.url, db, 30)
    assert "RETENTION POLICY" not in caplog.text  # nothing to do, nothing run
    assert default_policy(influxdb.url, db) == ("autogen", f"{30 * DAY_H}h0m0s")
    set_up(tmp_path, influxdb.url, db, 90)
    assert default_policy(influxdb.url, db) == ("autogen", f"{90 * DAY_H}h0m0s")
    set_up(tmp_path, influxdb.url, db, 0)
    assert default_policy(influxdb.url, db) == ("autogen", "0s")  # 0: kept forever


def test_one_day_shortens_the_shards_too(influxdb: Service, tmp_path: Path) -> None:
    db = fresh()
    set_up(
        tmp_path, influxdb.url, db, 1
    )  # autogen has 7-day shards, longer than a day: InfluxDB refuses that
    duration, shard, default = policies(influxdb.url, db)["autogen"]
    assert (duration, shard, default) == ("24h0m0s", "1h0m0s", True)


def test_a_named_policy_is_created_as_the_default_with_the_duration(
    influxdb: Service, tmp_path: Path
) -> None:
    db = fresh()
    set_up(tmp_path, influxdb.url, db, 14, "  retention_policy: lab\n")
    assert default_policy(influxdb.url, db) == ("lab", f"{14 * DAY_H}h0m0s")
    assert policies(influxdb.url, db)["autogen"][0] == "0s"  # left alone
    set_up(tmp_path, influxdb.url, db, 7, "  retention_policy: lab\n")
    assert default_policy(influxdb.url, db) == ("lab", f"{7 * DAY_H}h0m0s")


def test_an_existing_named_policy_becomes_the_default(influxdb: Service, tmp_path: Path) -> None:
    db = fresh()
    influx_query(influxdb.url, f'CREATE DATABASE "{db}"')
    influx_query(influxdb.url, f'CREATE RETENTION POLICY "old" ON "{db}" DURATION 30d REPLICATION 1')
    assert default_policy(influxdb.url, db)[0] == "autogen"
    set_up(tmp_path, influxdb.url, db, 30, "  retention_policy: old\n")
    assert default_policy(influxdb.url, db) == ("old", f"{30 * DAY_H}h0m0s")


def test_a_replay_leaves_the_policies_alone(influxdb: Service, tmp_path: Path) -> None:
    db = fresh()
    cfg = config(tmp_path, influxdb.url, db, retention_days=30)
    open_influx_sink(cfg, timing=FAST, retention=RetentionSetup.LEAVE).close()
    assert default_policy(influxdb.url, db) == ("autogen", "0s")


def test_a_user_who_may_not_is_told_in_one_line_what_to_run(
    auth_influxd: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = fresh()
    influx_query(auth_influxd.url, f"CREATE USER keeper WITH PASSWORD '{SECRET}'", auth=ADMIN)
    influx_query(auth_influxd.url, f'CREATE DATABASE "{db}"', auth=ADMIN)
    influx_query(auth_influxd.url, f'GRANT ALL ON "{db}" TO keeper', auth=ADMIN)  # READ and WRITE, not admin
    caplog.set_level(logging.INFO, logger="gateway.sinks.influxdb")
    cfg = with_password(tmp_path, auth_influxd, db, "keeper", retention_days=30)
    sink = open_influx_sink(cfg, timing=FAST)
    sink.write(["traffic,device=aa:bb:cc:dd:ee:ff bytes_out=1i,bytes_in=2i"])  # writing goes on
    sink.close()
    assert sink.report().written >= 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "\n" not in warnings[0]
    assert (
        f'ask an admin to run: ALTER RETENTION POLICY "autogen" ON "{db}" DURATION 30d DEFAULT' in warnings[0]
    )
    assert SECRET not in caplog.text
    assert default_policy(auth_influxd.url, db, ADMIN) == ("autogen", "0s")
    # and the statement it gives is the one that works
    influx_query(
        auth_influxd.url, f'ALTER RETENTION POLICY "autogen" ON "{db}" DURATION 30d DEFAULT', auth=ADMIN
    )
    caplog.clear()
    open_influx_sink(cfg, timing=FAST).close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_writer_who_may_not_read_the_policies_is_told_at_info(
    auth_influxd: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = fresh()
    influx_query(auth_influxd.url, f"CREATE USER pen WITH PASSWORD '{SECRET}'", auth=ADMIN)
    influx_query(auth_influxd.url, f'CREATE DATABASE "{db}"', auth=ADMIN)
    influx_query(auth_influxd.url, f'GRANT WRITE ON "{db}" TO pen', auth=ADMIN)  # Ansible's mouchard user
    caplog.set_level(logging.INFO, logger="gateway.sinks.influxdb")
    open_influx_sink(with_password(tmp_path, auth_influxd, db, "pen", retention_days=30), timing=FAST).close()
    infos = [r.getMessage() for r in caplog.records if "retention" in r.getMessage()]
    assert len(infos) == 1, infos
    assert "DURATION 30d DEFAULT" in infos[0]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
