"""Tests of gateway/config.py: real files in tmp_path, every error path, secrets never shown."""

import re
from datetime import time
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from zoneinfo import ZoneInfo

import pydantic
import pytest
import yaml

from gateway.config import (
    CaptureSource,
    Config,
    ConfigError,
    DeviceLabel,
    InfluxApi,
    QuietWindow,
    default_config,
    load_config,
    normalise_mac,
    redacted_dump,
    resolve_config_path,
    system_timezone,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "gateway" / "data" / "mouchard.example.yaml"
DOCS = ROOT / "docs" / "configuration.md"
CANARY = "s3cr3t-Zebra-7731"  # distinctive, so a leak anywhere is found by a plain search


def write(tmp_path: Path, text: str, name: str = "mouchard.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={} if env is None else env)
    return caught.value.errors


def one_error(path: Path, env: dict[str, str] | None = None) -> str:
    errors = errors_of(path, env)
    assert len(errors) == 1, errors
    return errors[0]


def yaml_key_paths(model: type[pydantic.BaseModel], prefix: str = "") -> list[str]:
    """Every key a user may write, as dotted paths (`devices.<mac>.name` for labels)."""
    paths: list[str] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if pydantic.SecretStr in getattr(annotation, "__args__", ()):
            continue
        path = f"{prefix}{name}"
        if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
            paths += yaml_key_paths(annotation, f"{path}.")
        elif name == "devices":
            paths += yaml_key_paths(DeviceLabel, f"{path}.<mac>.")
        else:
            paths.append(path)
    return paths


# --- defaults ---------------------------------------------------------------------------------------


def test_defaults_work_on_a_single_machine() -> None:
    cfg = default_config()
    assert cfg.gateway_id == "lab"
    assert cfg.state_dir == Path("/var/lib/mouchard")
    assert cfg.influxdb.url == "http://127.0.0.1:8086"
    assert cfg.influxdb.api is InfluxApi.V1
    assert cfg.influxdb.database == "mouchard"
    assert cfg.capture.source is CaptureSource.PCAP
    assert cfg.mqtt.enabled is False
    assert cfg.mqtt.port == 1883
    assert cfg.aggregation.interval_s == 10
    assert cfg.detectors.quiet_hours == ("00:00-07:00",)
    assert isinstance(cfg.detectors.zone, ZoneInfo)
    assert cfg.devices == {}
    assert cfg.lan.router_macs == ()
    assert [str(n) for n in cfg.lan.networks] == [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
        "fe80::/10",
    ]
    assert cfg.influxdb.password is None
    assert cfg.influxdb.token is None
    assert cfg.mqtt.password is None


def test_no_path_and_no_env_gives_defaults() -> None:
    assert load_config(None, env={}) == default_config()


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file_gives_defaults(tmp_path: Path, text: str) -> None:
    assert load_config(write(tmp_path, text), env={}) == default_config()


def test_empty_section_gives_its_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "mqtt:\n  # enabled: true\ndevices:\ninfluxdb:\n")
    assert load_config(path, env={}) == default_config()


def test_config_is_frozen() -> None:
    cfg = default_config()
    with pytest.raises(pydantic.ValidationError):
        cfg.gateway_id = "other"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        cfg.influxdb.batch_size = 1  # type: ignore[misc]


def test_values_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "gateway_id: fablab-2\n"
        "capture: {source: conntrack, interface: br-lan}\n"
        "influxdb: {api: v2, org: lab, database: iot, batch_size: '100'}\n"
        "mqtt: {enabled: yes, port: 8883, tls: true, topic_prefix: lab/mouchard}\n"
        "aggregation: {interval_s: 60}\n",
    )
    cfg = load_config(path, env={})
    assert cfg.gateway_id == "fablab-2"
    assert cfg.capture.source is CaptureSource.CONNTRACK
    assert cfg.capture.interface == "br-lan"
    assert cfg.influxdb.api is InfluxApi.V2
    assert (cfg.influxdb.org, cfg.influxdb.database, cfg.influxdb.batch_size) == ("lab", "iot", 100)
    assert cfg.mqtt.enabled is True
    assert (cfg.mqtt.port, cfg.mqtt.tls, cfg.mqtt.topic_prefix) == (8883, True, "lab/mouchard")
    assert cfg.aggregation.interval_s == 60


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    path = write(tmp_path, "state_dir: state\n")
    assert load_config(path, env={}).state_dir == tmp_path.resolve() / "state"


# --- which file -------------------------------------------------------------------------------------


def test_mouchard_config_env_is_used_when_no_path(tmp_path: Path) -> None:
    path = write(tmp_path, "gateway_id: from-env\n")
    assert load_config(None, env={"MOUCHARD_CONFIG": str(path)}).gateway_id == "from-env"
    assert resolve_config_path(None, {"MOUCHARD_CONFIG": str(path)}) == path


def test_path_argument_wins_over_env(tmp_path: Path) -> None:
    chosen = write(tmp_path, "gateway_id: chosen\n", "a.yaml")
    other = write(tmp_path, "gateway_id: other\n", "b.yaml")
    assert load_config(chosen, env={"MOUCHARD_CONFIG": str(other)}).gateway_id == "chosen"


def test_file_not_found_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    error = one_error(missing)
    assert str(missing) in error
    assert "not found" in error


def test_missing_file_from_env_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "gone.yaml"
    with pytest.raises(ConfigError, match=re.escape(str(missing))):
        load_config(None, env={"MOUCHARD_CONFIG": str(missing)})


def test_directory_instead_of_file(tmp_path: Path) -> None:
    error = one_error(tmp_path)
    assert error.startswith(f"{tmp_path}: cannot read")


# --- structural errors ------------------------------------------------------------------------------


def test_yaml_syntax_error_gives_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "gateway_id: lab\nlan:\n  networks: [10.0.0.0/8\ncapture:\n  interface: eth0\n")
    error = one_error(path)
    assert re.match(rf"{re.escape(str(path))}:4:\d+: YAML syntax error: ", error), error
    assert "expected ',' or ']'" in error
    assert "line 3" in error  # where the unclosed list started


def test_bad_indentation_is_a_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, "lan:\n  networks: []\n router_macs: []\n")
    assert re.match(rf"{re.escape(str(path))}:3:\d+: YAML syntax error", one_error(path))


def test_several_documents_are_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "gateway_id: a\n---\ngateway_id: b\n")
    assert "YAML syntax error" in one_error(path)


@pytest.mark.parametrize(("text", "shown"), [("- a\n- b\n", "a list"), ("just text\n", "'just text'")])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, shown: str) -> None:
    path = write(tmp_path, text)
    error = one_error(path)
    assert error.startswith(f"{path}:1: (top level): expected a mapping")
    assert shown in error


def test_section_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "gateway_id: lab\nlan: [10.0.0.0/8]\n")
    assert one_error(path) == (
        f"{path}:2: lan: expected a mapping, got a list — write 'key: value' lines indented under this key"
    )


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "mqtt:\n  port: 1883\n  host: a\n  port: 1884\n")
    assert one_error(path) == f"{path}:4: mqtt.port: duplicate key 'port' (also on line 2) — keep only one"


# --- unknown keys -----------------------------------------------------------------------------------


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    path = write(tmp_path, "gateway_id: lab\naggregation:\n  interval: 10\n")
    assert one_error(path) == (
        f"{path}:3: aggregation.interval: unknown key 'interval' — did you mean 'interval_s'?"
    )


def test_unknown_top_level_key_suggests_the_closest(tmp_path: Path) -> None:
    path = write(tmp_path, "influx:\n  url: http://db:8086\n")
    assert "influx: unknown key 'influx' — did you mean 'influxdb'?" in one_error(path)


def test_unknown_key_without_a_close_one_lists_the_valid_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "capture:\n  colour: red\n")
    error = one_error(path)
    assert error.startswith(f"{path}:2: capture.colour: unknown key 'colour' — valid keys here: ")
    assert "interface, source, bpf_filter, snaplen" in error


def test_unknown_key_in_a_device_label(tmp_path: Path) -> None:
    path = write(tmp_path, 'devices:\n  "68:db:f5:90:19:64":\n    name: Echo\n    knd: speaker\n')
    assert one_error(path) == (
        f"{path}:4: devices.68:db:f5:90:19:64.knd: unknown key 'knd' — did you mean 'kind'?"
    )


def test_unknown_key_suggestion_never_offers_a_secret(tmp_path: Path) -> None:
    path = write(tmp_path, "influxdb:\n  passwd: x\n")
    error = one_error(path)
    assert "unknown key 'passwd'" in error
    assert "'password'" not in error


# --- wrong values -----------------------------------------------------------------------------------


def test_wrong_type(tmp_path: Path) -> None:
    path = write(tmp_path, "aggregation:\n  interval_s: ten\n")
    error = one_error(path)
    assert error.startswith(f"{path}:2: aggregation.interval_s: expected an integer, got 'ten' — ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("influxdb:\n  flush_interval_s: soon\n", "expected a number, got 'soon'"),
        ("influxdb:\n  verify_tls: maybe\n", "expected true or false, got 'maybe'"),
        ("capture:\n  interface: [a, b]\n", "expected a single text value, got a list"),
        ("lan:\n  networks: 10.0.0.0/8\n", "expected a list, got '10.0.0.0/8'"),
        ("aggregation:\n  interval_s: 2.5\n", "expected an integer, got 2.5"),
    ],
)
def test_wrong_types_say_what_was_expected(tmp_path: Path, text: str, expected: str) -> None:
    error = one_error(write(tmp_path, text))
    assert f":2: {text.split(':', maxsplit=1)[0]}." in error
    assert expected in error


def test_bad_enum_lists_the_choices(tmp_path: Path) -> None:
    path = write(tmp_path, "capture:\n  source: pcapng\n")
    assert one_error(path) == (
        f"{path}:2: capture.source: unknown value 'pcapng' — use one of: pcap, conntrack"
    )


def test_bad_influx_api_lists_the_choices(tmp_path: Path) -> None:
    assert "use one of: v1, v2" in one_error(write(tmp_path, "influxdb:\n  api: v3\n"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("aggregation:\n  interval_s: 0\n", "must be at least 1, got 0 — use a value from 1 to 3600"),
        ("aggregation:\n  interval_s: 7200\n", "must be at most 3600, got 7200 — use a value from 1 to 3600"),
        ("mqtt:\n  port: 70000\n", "must be at most 65535, got 70000"),
        ("influxdb:\n  timeout_s: 0\n", "must be more than 0, got 0"),
    ],
)
def test_out_of_range(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in one_error(write(tmp_path, text))


def test_negative_retention_days_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "gateway_id: lab\ninfluxdb:\n  database: mouchard\n  retention_days: -7\n")
    assert one_error(path) == (
        f"{path}:4: influxdb.retention_days: must be at least 0, got -7 — use a value from 0 to 36500"
    )


def test_retention_days_defaults_to_30_and_0_keeps_forever(tmp_path: Path) -> None:
    assert (
        load_config(write(tmp_path, "influxdb:\n  url: http://db:8086\n"), env={}).influxdb.retention_days
        == 30
    )
    assert (
        load_config(write(tmp_path, "influxdb:\n  retention_days: 0\n"), env={}).influxdb.retention_days == 0
    )
    assert "expected an integer" in one_error(write(tmp_path, "influxdb:\n  retention_days: 30d\n"))


def test_bad_network_names_the_list_item(tmp_path: Path) -> None:
    path = write(tmp_path, "lan:\n  networks:\n    - 10.0.0.0/8\n    - 192.168.0.0/16\n    - 300.1.1.0/24\n")
    error = one_error(path)
    assert error.startswith(f"{path}:5: lan.networks[2]: '300.1.1.0/24' is not an IP network — ")


def test_networks_are_parsed_loosely(tmp_path: Path) -> None:
    path = write(tmp_path, "lan:\n  networks: [192.168.1.7/24, 10.1.2.3, 2001:db8::1/64]\n")
    networks = load_config(path, env={}).lan.networks
    assert networks == (
        IPv4Network("192.168.1.0/24"),
        IPv4Network("10.1.2.3/32"),
        IPv6Network("2001:db8::/64"),
    )


def test_bad_mac_in_router_macs(tmp_path: Path) -> None:
    path = write(tmp_path, "lan:\n  router_macs:\n    - aa:bb:cc:dd:ee:f0\n    - aa:bb:cc\n")
    error = one_error(path)
    assert error.startswith(f"{path}:4: lan.router_macs[1]: 'aa:bb:cc' is not a MAC address — ")


def test_bad_mac_as_device_key(tmp_path: Path) -> None:
    path = write(tmp_path, "devices:\n  kitchen: {name: Echo}\n")
    assert one_error(path).startswith(f"{path}:2: devices.kitchen: 'kitchen' is not a MAC address — ")


def test_multicast_mac_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "lan:\n  router_macs: [ff:ff:ff:ff:ff:ff]\n")
    assert "multicast" in one_error(path)


def test_two_spellings_of_one_device_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, 'devices:\n  "68:db:f5:90:19:64": {name: a}\n  "68-DB-F5-90-19-64": {name: b}\n')
    error = one_error(path)
    assert error.startswith(f"{path}:1: devices: ")
    assert "same device" in error


@pytest.mark.parametrize(
    ("window", "reason"),
    [
        ("22:00", "not a time window"),
        ("25:00-07:00", "impossible time"),
        ("07:60-08:00", "impossible time"),
        ("10:00-10:00", "same time"),
        ("evening", "not a time window"),
    ],
)
def test_bad_quiet_hours(tmp_path: Path, window: str, reason: str) -> None:
    path = write(tmp_path, f'detectors:\n  quiet_hours:\n    - "00:00-07:00"\n    - "{window}"\n')
    error = one_error(path)
    assert error.startswith(f"{path}:4: detectors.quiet_hours[1]: ")
    assert reason in error


def test_quiet_hours_are_normalised_and_parsed(tmp_path: Path) -> None:
    path = write(tmp_path, "detectors:\n  quiet_hours: ['22:30-7:00', 12:00-13:30]\n")
    detectors = load_config(path, env={}).detectors
    assert detectors.quiet_hours == ("22:30-07:00", "12:00-13:30")
    night, lunch = detectors.windows
    assert night == QuietWindow(time(22, 30), time(7, 0))
    assert lunch.contains(time(12, 0))
    assert not lunch.contains(time(13, 30))


@pytest.mark.parametrize(
    ("moment", "inside"), [(time(23, 0), True), (time(3, 0), True), (time(7, 0), False), (time(12), False)]
)
def test_quiet_window_wraps_midnight(moment: time, inside: bool) -> None:
    assert QuietWindow.parse("22:00-07:00").contains(moment) is inside


def test_unknown_timezone_suggests_the_closest(tmp_path: Path) -> None:
    path = write(tmp_path, "detectors:\n  timezone: Europe/Pari\n")
    assert one_error(path) == (
        f"{path}:2: detectors.timezone: unknown time zone 'Europe/Pari' — did you mean 'Europe/Paris'?"
    )


def test_timezone_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, "detectors:\n  timezone: America/Montreal\n")
    assert load_config(path, env={}).detectors.zone == ZoneInfo("America/Montreal")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("gateway_id: Lab 1\n", "not a gateway id"),
        ("mqtt:\n  topic_prefix: a/#\n", "not a topic prefix"),
        ("mqtt:\n  topic_prefix: /a\n", "not a topic prefix"),
        ("influxdb:\n  url: ftp://db\n", "not an http(s) URL"),
        ("influxdb:\n  url: http://db:port\n", "not an http(s) URL"),
        ("influxdb:\n  database: ''\n", "must not be empty"),
        ("capture:\n  interface: a very long interface name\n", "not an interface name"),
    ],
)
def test_bad_strings(tmp_path: Path, text: str, reason: str) -> None:
    assert reason in one_error(write(tmp_path, text))


def test_influx_url_loses_its_trailing_slash(tmp_path: Path) -> None:
    path = write(tmp_path, "influxdb:\n  url: https://influx.lab:8086/\n")
    assert load_config(path, env={}).influxdb.url == "https://influx.lab:8086"


# --- every error at once ----------------------------------------------------------------------------


def test_every_error_is_reported_at_once_in_file_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "gateway_id: Lab 1\n"  # 1
        "lan:\n"  # 2
        "  networks: [10.0.0.0/8, nonsense]\n"  # 3
        "  router_macs: [AA-BB-CC-DD-EE-FF, nope]\n"  # 4
        "capture:\n"  # 5
        "  source: pcapng\n"  # 6
        "influxdb:\n"  # 7
        "  password: hunter2\n"  # 8
        "  password_file: /nonexistent/influx.pw\n"  # 9
        "aggregation:\n"  # 10
        "  interval: 10\n"  # 11
        "detectors:\n"  # 12
        "  timezone: Mars/Olympus\n"  # 13
        "colour: red\n",  # 14
    )
    errors = errors_of(path)
    located = [re.match(rf"{re.escape(str(path))}:(\d+): (\S+): ", e) for e in errors]
    assert all(located), errors
    assert [(int(m.group(1)), m.group(2)) for m in located if m] == [
        (1, "gateway_id"),
        (3, "lan.networks[1]"),
        (4, "lan.router_macs[1]"),
        (6, "capture.source"),
        (8, "influxdb.password"),
        (9, "influxdb.password_file"),
        (11, "aggregation.interval"),
        (13, "detectors.timezone"),
        (14, "colour"),
    ]


def test_config_error_str_joins_the_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "gateway_id: Lab 1\ncolour: red\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert len(caught.value.errors) == 2
    assert str(caught.value) == "\n".join(caught.value.errors)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


# --- MACs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "68:db:f5:90:19:64",
        "68:DB:F5:90:19:64",
        "68-db-f5-90-19-64",
        "68-DB-F5-90-19-64",
        " 68:db:f5:90:19:64 ",
    ],
)
def test_normalise_mac_accepts_common_spellings(text: str) -> None:
    assert normalise_mac(text) == "68:db:f5:90:19:64"


@pytest.mark.parametrize(
    "text",
    ["68:db:f5:90:19", "68:db:f5-90:19:64", "68dbf5901964", "gg:db:f5:90:19:64", "01:00:5e:00:00:fb", ""],
)
def test_normalise_mac_refuses_others(text: str) -> None:
    with pytest.raises(ValueError, match=r"MAC|multicast"):
        normalise_mac(text)


def test_macs_are_normalised_and_deduplicated(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "lan:\n"
        "  router_macs: [AA-BB-CC-DD-EE-F0, aa:bb:cc:dd:ee:f0, 10:20:30:40:50:58]\n"
        "devices:\n"
        "  68-DB-F5-90-19-64: {name: Kitchen Echo, kind: voice_assistant}\n"
        "  10:20:30:40:50:58: {}\n",
    )
    cfg = load_config(path, env={})
    assert cfg.lan.router_macs == ("aa:bb:cc:dd:ee:f0", "10:20:30:40:50:58")
    assert cfg.devices == {
        "68:db:f5:90:19:64": DeviceLabel(name="Kitchen Echo", kind="voice_assistant"),
        "10:20:30:40:50:58": DeviceLabel(),
    }


# --- secrets ----------------------------------------------------------------------------------------


def test_secrets_from_env(tmp_path: Path) -> None:
    env = {
        "MOUCHARD_INFLUXDB_PASSWORD": "influx-pw",
        "MOUCHARD_INFLUXDB_TOKEN": "influx-token",
        "MOUCHARD_MQTT_PASSWORD": "mqtt-pw",
    }
    for cfg in (
        load_config(None, env=env),
        load_config(write(tmp_path, "mqtt:\n  enabled: true\n"), env=env),
    ):
        assert cfg.influxdb.password is not None
        assert cfg.influxdb.password.get_secret_value() == "influx-pw"
        assert cfg.influxdb.token is not None
        assert cfg.influxdb.token.get_secret_value() == "influx-token"
        assert cfg.mqtt.password is not None
        assert cfg.mqtt.password.get_secret_value() == "mqtt-pw"


def test_secrets_from_files(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "influx").write_text("influx-pw\n", encoding="utf-8")
    (tmp_path / "token").write_text("influx-token", encoding="utf-8")
    (tmp_path / "mqtt").write_text("mqtt pw with spaces\r\n", encoding="utf-8")
    path = write(
        tmp_path,
        f"influxdb:\n  password_file: secrets/influx\n  token_file: {tmp_path / 'token'}\n"
        "mqtt:\n  password_file: mqtt\n",
    )
    cfg = load_config(path, env={})
    assert cfg.influxdb.password is not None
    assert cfg.influxdb.password.get_secret_value() == "influx-pw"
    assert cfg.influxdb.password_file == tmp_path.resolve() / "secrets" / "influx"
    assert cfg.influxdb.token is not None
    assert cfg.influxdb.token.get_secret_value() == "influx-token"
    assert cfg.mqtt.password is not None
    assert cfg.mqtt.password.get_secret_value() == "mqtt pw with spaces"


def test_env_wins_over_file_which_is_then_not_read(tmp_path: Path) -> None:
    path = write(tmp_path, "influxdb:\n  password_file: /nonexistent/pw\n")
    cfg = load_config(path, env={"MOUCHARD_INFLUXDB_PASSWORD": "from-env"})
    assert cfg.influxdb.password is not None
    assert cfg.influxdb.password.get_secret_value() == "from-env"


def test_unreadable_secret_file_names_the_key_and_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.token"
    path = write(tmp_path, f"gateway_id: lab\ninfluxdb:\n  api: v2\n  token_file: {missing}\n")
    error = one_error(path)
    assert error.startswith(f"{path}:4: influxdb.token_file: cannot read '{missing}'")
    assert "MOUCHARD_INFLUXDB_TOKEN" in error


def test_empty_secret_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("\n", encoding="utf-8")
    path = write(tmp_path, "mqtt:\n  password_file: pw\n")
    error = one_error(path)
    assert error.startswith(f"{path}:2: mqtt.password_file: ")
    assert "is empty" in error


@pytest.mark.parametrize(
    ("text", "key", "variable"),
    [
        ("influxdb:\n  password: {s}\n", "influxdb.password", "MOUCHARD_INFLUXDB_PASSWORD"),
        ("influxdb:\n  token: {s}\n", "influxdb.token", "MOUCHARD_INFLUXDB_TOKEN"),
        ("mqtt:\n  password: {s}\n", "mqtt.password", "MOUCHARD_MQTT_PASSWORD"),
    ],
)
def test_secret_as_a_yaml_key_is_refused(tmp_path: Path, text: str, key: str, variable: str) -> None:
    path = write(tmp_path, text.format(s=CANARY))
    error = one_error(path)
    assert error.startswith(f"{path}:2: {key}: secrets are not read from the config file — ")
    assert variable in error
    assert f"{key}_file" in error
    assert CANARY not in error


def test_secrets_never_reach_repr_str_or_dump(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text(CANARY, encoding="utf-8")
    path = write(tmp_path, "mqtt:\n  password_file: pw\n")
    env = {"MOUCHARD_INFLUXDB_PASSWORD": CANARY, "MOUCHARD_INFLUXDB_TOKEN": CANARY}
    cfg = load_config(path, env=env)
    for text in (
        repr(cfg),
        str(cfg),
        repr(cfg.influxdb),
        str(cfg.mqtt),
        redacted_dump(cfg),
        cfg.model_dump_json(),
    ):
        assert CANARY not in text


def test_secrets_never_reach_errors(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text(CANARY, encoding="utf-8")
    path = write(
        tmp_path,
        f"influxdb:\n  password: {CANARY}\n  batch_size: nope\n  url: ftp://x\n"
        "mqtt:\n  password_file: pw\n  port: nope\ninfluxdb_typo: 1\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={"MOUCHARD_INFLUXDB_TOKEN": CANARY})
    assert len(caught.value.errors) == 5
    assert CANARY not in str(caught.value)
    assert CANARY not in repr(caught.value)


def test_redacted_dump_shows_stars_and_loads_back(tmp_path: Path) -> None:
    env = {"MOUCHARD_MQTT_PASSWORD": CANARY}
    cfg = load_config(
        write(tmp_path, "gateway_id: dumped\ndevices:\n  '68:db:f5:90:19:64': {name: Echo}\n"), env
    )
    dumped = yaml.safe_load(redacted_dump(cfg))
    assert dumped["mqtt"]["password"] == "***"  # noqa: S105 - the redaction marker
    assert "password" not in dumped["influxdb"]  # unset secrets are left out
    del dumped["mqtt"]["password"]
    again = load_config(write(tmp_path, yaml.safe_dump(dumped), "again.yaml"), env)
    assert again == cfg


# --- system time zone -------------------------------------------------------------------------------


def test_system_timezone_from_etc_timezone(tmp_path: Path) -> None:
    (tmp_path / "timezone").write_text("Europe/Paris\n", encoding="utf-8")
    assert system_timezone(tmp_path) == "Europe/Paris"


def test_system_timezone_from_localtime_link(tmp_path: Path) -> None:
    (tmp_path / "localtime").symlink_to("/usr/share/zoneinfo/America/Montreal")
    assert system_timezone(tmp_path) == "America/Montreal"


def test_system_timezone_skips_bad_names_and_falls_back_to_utc(tmp_path: Path) -> None:
    (tmp_path / "timezone").write_text("Nowhere/Atlantis\n", encoding="utf-8")
    (tmp_path / "localtime").symlink_to("/somewhere/else")
    assert system_timezone(tmp_path) == "UTC"
    assert system_timezone(tmp_path / "missing") == "UTC"


# --- the shipped example and the reference ----------------------------------------------------------


def test_example_file_validates() -> None:
    cfg = load_config(EXAMPLE, env={})
    assert cfg.devices["68:db:f5:90:19:64"].name == "Kitchen Echo"


def test_example_file_sets_every_key() -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    label = next(iter(data["devices"].values()))
    for path in yaml_key_paths(Config):
        node = data
        for part in path.split("."):
            node = label if part == "<mac>" else node
            if part != "<mac>":
                assert part in node, f"{EXAMPLE.name} does not set {path}"
                node = node[part]


def test_docs_describe_every_key() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [path for path in yaml_key_paths(Config) if f"`{path}`" not in text]
    assert not missing, f"{DOCS.name} does not describe {missing}"


def test_every_field_has_help_text() -> None:
    models: list[type[pydantic.BaseModel]] = [Config, DeviceLabel]
    models += [
        f.annotation
        for f in Config.model_fields.values()
        if isinstance(f.annotation, type) and issubclass(f.annotation, pydantic.BaseModel)
    ]
    undocumented = [
        f"{m.__name__}.{n}" for m in models for n, f in m.model_fields.items() if not f.description
    ]
    assert not undocumented
