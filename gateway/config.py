"""Mouchard's configuration: one YAML file, validated before any I/O, every error reported at once.

`load_config` reads the file, resolves secrets (environment first, then the `*_file` keys) and
returns a frozen `Config`; anything wrong raises one `ConfigError` listing every problem as
`FILE:LINE: key.path: message — fix hint`.
"""

import difflib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import time
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    SecretStr,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError

__all__ = [
    "AggregationConfig",
    "CaptureConfig",
    "CaptureSource",
    "Config",
    "ConfigError",
    "DetectorsConfig",
    "DeviceLabel",
    "InfluxApi",
    "InfluxConfig",
    "LanConfig",
    "MqttConfig",
    "QuietWindow",
    "default_config",
    "load_config",
    "normalise_mac",
    "redacted_dump",
    "resolve_config_path",
    "system_timezone",
]

ENV_CONFIG = "MOUCHARD_CONFIG"
DOCS = "docs/configuration.md"

# ---------------------------------------------------------------------------------------------------
# Value types
# ---------------------------------------------------------------------------------------------------

_MAC_RE = re.compile(r"[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}")
_WINDOW_RE = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")
_GATEWAY_ID_RE = re.compile(r"[a-z0-9_-]+")
_GATEWAY_ID_MAX = 64  # one MQTT topic level; long ids only make topics and tags unwieldy
_IFNAMSIZ = 15  # Linux interface names are at most 15 bytes


def _fail(kind: str, message: str) -> PydanticCustomError:
    """A pydantic error whose text is exactly `message` (braces in user input stay literal)."""
    return PydanticCustomError(kind, "{message}", {"message": message})


def normalise_mac(text: str) -> str:
    """Return `text` as a lowercase `aa:bb:cc:dd:ee:ff` unicast MAC, or raise ValueError."""
    mac = text.strip().lower()
    if not _MAC_RE.fullmatch(mac):
        raise ValueError(f"'{text}' is not a MAC address — write it as aa:bb:cc:dd:ee:ff")
    mac = mac.replace("-", ":")
    if int(mac[:2], 16) & 1:
        raise ValueError(f"'{text}' is a multicast address — devices and routers have unicast MACs")
    return mac


def _mac(value: str) -> str:
    try:
        return normalise_mac(value)
    except ValueError as exc:
        raise _fail("mac", str(exc)) from None


def _network(value: object) -> IPv4Network | IPv6Network:
    if isinstance(value, IPv4Network | IPv6Network):
        return value
    if not isinstance(value, str):
        raise _fail("network", f"expected a network such as 192.168.1.0/24, got {_show(value)}")
    try:
        return ip_network(value.strip(), strict=False)
    except ValueError:
        raise _fail(
            "network", f"'{value}' is not an IP network — write it as 192.168.1.0/24 or fd00::/8"
        ) from None


MacAddress = Annotated[str, AfterValidator(_mac)]
IpNetwork = Annotated[
    IPv4Network | IPv6Network, PlainValidator(_network), PlainSerializer(str, return_type=str)
]


@dataclass(frozen=True, slots=True)
class QuietWindow:
    """A daily window of local time; `end` before `start` means it wraps past midnight."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> "QuietWindow":
        """Parse `HH:MM-HH:MM`, or raise ValueError saying what is wrong."""
        match = _WINDOW_RE.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"'{text}' is not a time window — write it as HH:MM-HH:MM, e.g. 22:30-07:00")
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        if max(h1, h2) > 23 or max(m1, m2) > 59:
            raise ValueError(f"'{text}' has an impossible time — hours go 00..23 and minutes 00..59")
        if (h1, m1) == (h2, m2):
            raise ValueError(f"'{text}' starts and ends at the same time — give two different times")
        return cls(time(h1, m1), time(h2, m2))

    def contains(self, moment: time) -> bool:
        """True when the local time `moment` falls in the window (start included, end excluded)."""
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def _window(value: str) -> str:
    try:
        return str(QuietWindow.parse(value))
    except ValueError as exc:
        raise _fail("quiet_hours", str(exc)) from None


QuietWindowText = Annotated[str, AfterValidator(_window)]


def _zone_exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def system_timezone(etc: Path = Path("/etc")) -> str:
    """The system's IANA zone: /etc/timezone, else the /etc/localtime symlink, else UTC."""
    try:
        name = (etc / "timezone").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        name = ""
    if name and _zone_exists(name):
        return name
    try:
        target = str((etc / "localtime").readlink())
    except OSError:
        target = ""
    name = target.partition("zoneinfo/")[2]
    return name if name and _zone_exists(name) else "UTC"


def _resolve(path: Path, info: ValidationInfo) -> Path:
    """Relative paths are relative to the config file's folder."""
    path = path.expanduser()
    base = info.context.get("base_dir") if isinstance(info.context, dict) else None
    return Path(base) / path if base is not None and not path.is_absolute() else path


# ---------------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------------


class CaptureSource(StrEnum):
    """Where `mouchard run` gets traffic from."""

    PCAP = "pcap"
    CONNTRACK = "conntrack"


class InfluxApi(StrEnum):
    """Which InfluxDB write API the sink uses."""

    V1 = "v1"
    V2 = "v2"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class LanConfig(_Section):
    """What counts as the lab's own network."""

    networks: tuple[IpNetwork, ...] = Field(
        default=tuple(
            ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fe80::/10")
        ),
        description="Address ranges of the LAN; traffic to anything else is 'outside'.",
    )
    router_macs: tuple[MacAddress, ...] = Field(
        default=(),
        description="MACs of the routers, never reported as devices; found automatically when empty.",
    )

    @field_validator("router_macs")
    @classmethod
    def _dedupe(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))


class CaptureConfig(_Section):
    """Live capture for `mouchard run`."""

    interface: str = Field(default="wlan0", description="Interface to capture on (the lab's access point).")
    source: CaptureSource = Field(
        default=CaptureSource.PCAP, description="pcap: packets (names and bytes); conntrack: flow counters."
    )
    bpf_filter: str = Field(default="", description="Extra BPF filter ANDed with Mouchard's own, optional.")
    snaplen: int = Field(default=65535, ge=64, le=262144, description="Bytes kept of each captured packet.")

    @field_validator("interface")
    @classmethod
    def _interface(cls, value: str) -> str:
        if not value or len(value) > _IFNAMSIZ or any(c.isspace() or c == "/" for c in value):
            raise _fail("interface", f"'{value}' is not an interface name — see `ip link` for the names")
        return value


class InfluxConfig(_Section):
    """The InfluxDB that receives traffic, DNS, device and event points."""

    url: str = Field(default="http://127.0.0.1:8086", description="Base URL of InfluxDB.")
    api: InfluxApi = Field(default=InfluxApi.V1, description="v1: POST /write; v2: /api/v2/write.")
    database: str = Field(default="mouchard", min_length=1, description="v1 database, or v2 bucket.")
    retention_policy: str = Field(default="", description="v1 retention policy; empty means the default.")
    retention_days: int = Field(
        default=30,
        ge=0,
        le=36_500,
        description="v1: days the database's default retention policy keeps points; 0 keeps them forever.",
    )
    org: str = Field(default="", description="v2 organisation.")
    username: str = Field(default="", description="v1 user; empty when authentication is off.")
    password_file: Path | None = Field(
        default=None, description="File holding the v1 password (else MOUCHARD_INFLUXDB_PASSWORD)."
    )
    token_file: Path | None = Field(
        default=None, description="File holding the v2 token (else MOUCHARD_INFLUXDB_TOKEN)."
    )
    batch_size: int = Field(default=5000, ge=1, le=100_000, description="Points per write request.")
    flush_interval_s: float = Field(default=5.0, gt=0, le=3600, description="Longest wait before a write.")
    timeout_s: float = Field(default=10.0, gt=0, le=600, description="HTTP timeout of one write.")
    verify_tls: bool = Field(default=True, description="Check the server certificate for https URLs.")
    spool_max_mb: int = Field(
        default=512, ge=1, le=1_000_000, description="Disk kept for points InfluxDB could not take yet."
    )
    password: SecretStr | None = Field(
        default=None, description="Resolved at load time; not a YAML key.", repr=False
    )
    token: SecretStr | None = Field(
        default=None, description="Resolved at load time; not a YAML key.", repr=False
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        try:
            parts = urlsplit(value.strip())
            valid = parts.scheme in {"http", "https"} and bool(parts.hostname)
            _ = parts.port  # raises ValueError when the port is not a number
        except ValueError:
            valid = False
        if not valid:
            raise _fail("url", f"'{value}' is not an http(s) URL — write it as http://127.0.0.1:8086")
        return value.strip().rstrip("/")

    @field_validator("password_file", "token_file")
    @classmethod
    def _relative(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve(value, info)


class MqttDiscovery(StrEnum):
    NONE = "none"
    HOMEASSISTANT = "homeassistant"


class MqttConfig(_Section):
    """The MQTT broker that receives events and device states."""

    enabled: bool = Field(default=False, description="Publish events and device states over MQTT.")
    host: str = Field(default="127.0.0.1", min_length=1, description="Broker host name or address.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker port (8883 is usual with TLS).")
    topic_prefix: str = Field(default="mouchard", description="First level(s) of every topic.")
    username: str = Field(default="", description="Broker user; empty for anonymous.")
    password_file: Path | None = Field(
        default=None, description="File holding the broker password (else MOUCHARD_MQTT_PASSWORD)."
    )
    tls: bool = Field(default=False, description="Connect with TLS, checking the broker's certificate.")
    ca_file: Path | None = Field(default=None, description="CA certificate of a broker with a private CA.")
    discovery: MqttDiscovery = Field(
        default=MqttDiscovery.NONE, description="none, or homeassistant: MQTT discovery of sensors."
    )
    discovery_prefix: str = Field(default="homeassistant", description="Home Assistant's discovery prefix.")
    outbox_max: int = Field(
        default=50_000, ge=100, le=10_000_000, description="Events kept on disk while the broker is away."
    )
    password: SecretStr | None = Field(
        default=None, description="Resolved at load time; not a YAML key.", repr=False
    )

    @field_validator("topic_prefix")
    @classmethod
    def _topic(cls, value: str) -> str:
        levels = value.split("/")
        if not value or "" in levels or any(c in value for c in "+#\0") or value.startswith("$"):
            raise _fail(
                "topic", f"'{value}' is not a topic prefix — use words joined by '/', no + # $ or empty level"
            )
        return value

    @field_validator("password_file", "ca_file")
    @classmethod
    def _relative(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve(value, info)


class GrafanaLanguage(StrEnum):
    EN = "en"
    FR = "fr"


class GrafanaConfig(_Section):
    """The Grafana that `mouchard dashboards push` provisions (file provisioning needs none of this)."""

    url: str = Field(default="http://127.0.0.1:3000", description="Base URL of Grafana.")
    folder: str = Field(default="Mouchard", min_length=1, description="Folder of the dashboards.")
    language: GrafanaLanguage = Field(default=GrafanaLanguage.EN, description="Dashboards in en or fr.")
    home_country: str = Field(
        default="FR",
        pattern=r"^[A-Z]{2}$",
        description="The lab's country (ISO 3166 alpha-2), for 'leaves the country'.",
    )
    token_file: Path | None = Field(
        default=None, description="File holding a service-account token (else MOUCHARD_GRAFANA_TOKEN)."
    )
    verify_tls: bool = Field(default=True, description="Check the server certificate for https URLs.")
    timeout_s: float = Field(default=10.0, gt=0, le=600, description="HTTP timeout of one request.")
    token: SecretStr | None = Field(
        default=None, description="Resolved at load time; not a YAML key.", repr=False
    )

    _url = field_validator("url")(InfluxConfig._url.__func__)  # type: ignore[attr-defined]

    @field_validator("token_file")
    @classmethod
    def _relative(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve(value, info)


class AggregationConfig(_Section):
    """Time bins of the traffic counters."""

    interval_s: int = Field(default=10, ge=1, le=3600, description="Width of one time bin, in seconds.")


class DetectorsConfig(_Section):
    """Settings of the event detectors."""

    quiet_hours: tuple[QuietWindowText, ...] = Field(
        default=("00:00-07:00",), description="Local HH:MM-HH:MM windows when nobody is in the lab."
    )
    timezone: str = Field(
        default_factory=system_timezone, description="IANA time zone of the lab; default: the system's."
    )
    learning_s: int = Field(
        default=86_400, ge=0, le=90 * 86_400, description="Novelty learns this long before new_* events."
    )
    activation_thresholds: dict[MacAddress, int] = Field(
        default_factory=dict,
        description="Per voice assistant (MAC): upload bytes/s that starts an activation (see calibrate).",
    )

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if _zone_exists(value):
            return value
        close = difflib.get_close_matches(value, sorted(available_timezones()), n=1)
        hint = f"did you mean '{close[0]}'?" if close else "use an IANA name such as Europe/Paris"
        raise _fail("timezone", f"unknown time zone '{value}' — {hint}")

    @property
    def zone(self) -> ZoneInfo:
        """The time zone as a tzinfo."""
        return ZoneInfo(self.timezone)

    @property
    def windows(self) -> tuple[QuietWindow, ...]:
        """The quiet hours, parsed."""
        return tuple(QuietWindow.parse(text) for text in self.quiet_hours)


class DeviceLabel(_Section):
    """The lab's own label for a device: the strongest source of a name and kind."""

    name: str | None = Field(default=None, max_length=100, description="Name shown in dashboards.")
    kind: str | None = Field(default=None, max_length=100, description="Kind, e.g. voice_assistant.")
    vendor: str | None = Field(default=None, max_length=100, description="Maker, e.g. Amazon.")
    model: str | None = Field(default=None, max_length=100, description="Model, e.g. Echo Dot.")


_SECTIONS = frozenset(
    {"lan", "capture", "influxdb", "mqtt", "grafana", "aggregation", "detectors", "devices"}
)


class Config(_Section):
    """The whole configuration of one gateway."""

    gateway_id: str = Field(default="lab", description="Name of this gateway in MQTT topics ([a-z0-9_-]+).")
    state_dir: Path = Field(
        default=Path("/var/lib/mouchard"),
        description="Device inventory and write spool; run and replay share it.",
    )
    lan: LanConfig = Field(default_factory=LanConfig, description="The lab's own network.")
    capture: CaptureConfig = Field(default_factory=CaptureConfig, description="Live capture.")
    influxdb: InfluxConfig = Field(default_factory=InfluxConfig, description="InfluxDB sink.")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="MQTT sink.")
    grafana: GrafanaConfig = Field(default_factory=GrafanaConfig, description="Dashboards push.")
    aggregation: AggregationConfig = Field(default_factory=AggregationConfig, description="Time bins.")
    detectors: DetectorsConfig = Field(default_factory=DetectorsConfig, description="Event detectors.")
    devices: dict[MacAddress, DeviceLabel] = Field(
        default_factory=dict,
        description="Labels by MAC address, e.g. {name: Kitchen Echo, kind: voice_assistant}.",
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        """A section left empty (`mqtt:` with everything commented out) means its defaults."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (v is None and k in _SECTIONS)}
        return data

    @field_validator("gateway_id")
    @classmethod
    def _gateway_id(cls, value: str) -> str:
        if not _GATEWAY_ID_RE.fullmatch(value) or len(value) > _GATEWAY_ID_MAX:
            raise _fail(
                "gateway_id",
                f"'{value}' is not a gateway id — use 1 to {_GATEWAY_ID_MAX} of a-z 0-9 _ - "
                "(it becomes an MQTT topic level)",
            )
        return value

    @field_validator("state_dir")
    @classmethod
    def _state_dir(cls, value: Path, info: ValidationInfo) -> Path:
        return _resolve(value, info)

    @field_validator("devices", mode="wrap")
    @classmethod
    def _distinct_devices(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """Two spellings of one MAC would silently merge: refuse them (once the rest is valid)."""
        devices = handler(value)
        if isinstance(value, dict) and len(devices) < len(value):
            seen: dict[str, str] = {}
            for key in value:
                mac = normalise_mac(key)
                if mac in seen:
                    raise _fail("duplicate", f"'{seen[mac]}' and '{key}' are the same device — merge them")
                seen[mac] = key
        return devices


def default_config() -> Config:
    """The defaults: a single machine with InfluxDB 1.x on http://127.0.0.1:8086."""
    return Config()


# ---------------------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Secret:
    section: str
    field: str
    env: str

    @property
    def file_key(self) -> str:
        return f"{self.field}_file"


_SECRETS = (
    _Secret("influxdb", "password", "MOUCHARD_INFLUXDB_PASSWORD"),
    _Secret("influxdb", "token", "MOUCHARD_INFLUXDB_TOKEN"),
    _Secret("mqtt", "password", "MOUCHARD_MQTT_PASSWORD"),
    _Secret("grafana", "token", "MOUCHARD_GRAFANA_TOKEN"),
)

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class _Problem:
    loc: Loc
    message: str
    line: int | None = None


def _inject_secrets(data: dict[str, Any], env: Mapping[str, str], base_dir: Path) -> list[_Problem]:
    """Move secrets from the environment or their files into `data`; refuse them as YAML keys."""
    problems: list[_Problem] = []
    for secret in _SECRETS:
        original = data.get(secret.section)
        if original is not None and not isinstance(original, dict):
            continue  # validation reports the section itself
        section = dict(original or {})
        if secret.field in section:
            del section[secret.field]
            problems.append(_Problem((secret.section, secret.field), _secret_in_yaml(secret)))
        value = env.get(secret.env) or _read_secret(section.get(secret.file_key), secret, base_dir, problems)
        if value:
            section[secret.field] = value
        if original is not None or section:
            data[secret.section] = section
    return problems


def _secret_in_yaml(secret: _Secret) -> str:
    return (
        f"secrets are not read from the config file — set {secret.env} in the environment "
        f"or put it in a file named by {secret.section}.{secret.file_key}"
    )


def _read_secret(raw: object, secret: _Secret, base_dir: Path, problems: list[_Problem]) -> str | None:
    """The secret held in the file `raw` names, or None (with a problem when unreadable)."""
    if not isinstance(raw, str) or not raw.strip():
        return None  # absent, or a type error validation reports
    path = Path(raw).expanduser()
    path = path if path.is_absolute() else base_dir / path
    loc = (secret.section, secret.file_key)
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        problems.append(
            _Problem(
                loc, f"cannot read '{path}': {reason} — fix the path or its permissions, or set {secret.env}"
            )
        )
        return None
    if not value:
        problems.append(
            _Problem(loc, f"'{path}' is empty — put the {secret.field} in it, or set {secret.env}")
        )
    return value or None


# ---------------------------------------------------------------------------------------------------
# Reading YAML with line numbers
# ---------------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1 base-60 integers, so `10:20:30:40:50:59` stays a MAC string."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:int"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)


@dataclass(frozen=True, slots=True)
class _Document:
    """A parsed config file: its data, the line of every key path, and structural problems."""

    file: str | None
    data: Any
    lines: dict[Loc, int]
    problems: list[_Problem]


class ConfigError(Exception):
    """A configuration that cannot be used; `errors` holds one human line per problem."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


def _read_document(path: Path) -> _Document:
    """Read and parse the YAML file at `path`, or raise ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [f"{path}: file not found — check the path given with --config or {ENV_CONFIG}"]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise ConfigError([f"{path}: cannot read the file: {reason}"]) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_error(path, exc)]) from None
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {(): 1 if node is None else node.start_mark.line + 1}
    problems: list[_Problem] = []
    if node is not None:
        _map_lines(node, (), lines, problems, set())
    return _Document(str(path), data, lines, problems)


def _yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    hint = "check the indentation, the colons and the quotes around there"
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = exc.problem or "invalid YAML"
        if exc.context and exc.context_mark:
            problem += f" ({exc.context} started on line {exc.context_mark.line + 1})"
        return f"{where}: YAML syntax error: {problem} — {hint}"
    return f"{path}: YAML error: {exc} — {hint}"


def _map_lines(
    node: yaml.Node, path: Loc, lines: dict[Loc, int], problems: list[_Problem], seen: set[int]
) -> None:
    """Record the line of every key and list item under `node`; note duplicate keys."""
    if id(node) in seen:
        return  # an alias: its keys fall back to the alias's line
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _map_lines(item, (*path, index), lines, problems, seen)
    elif isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                continue
            line = key.start_mark.line + 1
            if key.value in first:
                message = f"duplicate key '{key.value}' (also on line {first[key.value]}) — keep only one"
                problems.append(_Problem((*path, key.value), message, line))
            first.setdefault(key.value, line)
            lines[(*path, key.value)] = line
            _map_lines(value, (*path, key.value), lines, problems, seen)


# ---------------------------------------------------------------------------------------------------
# Turning pydantic's errors into human lines
# ---------------------------------------------------------------------------------------------------

_SHOW_MAX = 40  # characters of an offending value quoted back in a message


def _show(value: object) -> str:
    """A short, safe rendering of an offending value (containers are never expanded)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        text = value if len(value) <= _SHOW_MAX else value[: _SHOW_MAX - 1] + "…"
        return f"'{text}'"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


_EXPECTED = {
    "int_parsing": ("an integer", "write a whole number, without quotes or units"),
    "int_type": ("an integer", "write a whole number, without quotes or units"),
    "int_from_float": ("an integer", "write a whole number, without a decimal part"),
    "float_parsing": ("a number", "write a number such as 5 or 2.5, without units"),
    "float_type": ("a number", "write a number such as 5 or 2.5, without units"),
    "bool_parsing": ("true or false", "write true or false"),
    "bool_type": ("true or false", "write true or false"),
    "string_type": ("a single text value", "write one value, in quotes if it has special characters"),
    "path_type": ("a file path", "write a path such as /etc/mouchard/secret"),
    "list_type": ("a list", "write [a, b] or one '- item' per line"),
    "tuple_type": ("a list", "write [a, b] or one '- item' per line"),
    "dict_type": ("a mapping", "write 'key: value' lines indented under this key"),
    "model_type": ("a mapping", "write 'key: value' lines indented under this key"),
    "model_attributes_type": ("a mapping", "write 'key: value' lines indented under this key"),
}

_BOUNDS = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "more than"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
}


def _describe(error: ErrorDetails) -> str:
    """One friendly `message — hint` for a pydantic error."""
    kind, ctx, loc = error["type"], error.get("ctx") or {}, _clean_loc(error["loc"])
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind in _EXPECTED:
        expected, hint = _EXPECTED[kind]
        return f"expected {expected}, got {_show(error['input'])} — {hint}"
    if kind == "enum":
        options = ", ".join(re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))
        return f"unknown value {_show(error['input'])} — use one of: {options}"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"must be {words} {ctx.get(key):g}, got {_show(error['input'])} — {_range_hint(loc)}"
    if kind in {"string_too_short", "too_short"}:
        return "must not be empty — give a value or remove the key to use the default"
    if kind == "string_too_long":
        return f"is longer than {ctx.get('max_length')} characters — shorten it"
    if "message" in ctx:
        return str(ctx["message"])
    return f"{error['msg']} — see {DOCS}"


def _clean_loc(loc: Iterable[str | int]) -> Loc:
    return tuple(part for part in loc if part != "[key]")


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model class that holds the keys at `loc` (walking dicts of models too)."""
    model: type[BaseModel] = Config
    parts = list(loc)
    while parts:
        field = model.model_fields.get(str(parts.pop(0)))
        annotation = field.annotation if field else None
        if get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
            if parts:
                parts.pop(0)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _yaml_keys(model: type[BaseModel]) -> list[str]:
    """The keys a user may write for `model` (secrets are not among them)."""
    return [name for name, field in model.model_fields.items() if SecretStr not in get_args(field.annotation)]


def _unknown_key(loc: Loc) -> str:
    key = str(loc[-1]) if loc else "?"
    model = _model_at(loc[:-1])
    valid = _yaml_keys(model) if model else []
    close = difflib.get_close_matches(key, valid, n=1)
    if close:
        return f"unknown key '{key}' — did you mean '{close[0]}'?"
    return f"unknown key '{key}' — valid keys here: {', '.join(valid)}" if valid else f"unknown key '{key}'"


def _field_at(loc: Loc) -> FieldInfo | None:
    model = _model_at(loc[:-1]) if loc else None
    return model.model_fields.get(str(loc[-1])) if model else None


def _range_hint(loc: Loc) -> str:
    field = _field_at(loc)
    bounds: dict[str, object] = {}
    for constraint in field.metadata if field else []:
        bounds.update(
            {name: getattr(constraint, name) for name in ("ge", "gt", "le") if hasattr(constraint, name)}
        )
    low = bounds.get("ge", f"just above {bounds['gt']:g}" if "gt" in bounds else None)
    high = bounds.get("le")
    return f"use a value from {low} to {high}" if low is not None and high is not None else "change the value"


# ---------------------------------------------------------------------------------------------------
# Formatting and loading
# ---------------------------------------------------------------------------------------------------

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_:-]+")


def _path_text(loc: Loc) -> str:
    """`lan.networks[2]`, `devices.aa:bb:cc:dd:ee:ff.name`, or `(top level)`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text or "(top level)"


def _line_of(loc: Loc, lines: Mapping[Loc, int]) -> int:
    """The line of `loc`, else of its closest ancestor present in the file."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _format(problems: Iterable[_Problem], doc: _Document) -> list[str]:
    located = sorted(((p.line or _line_of(p.loc, doc.lines), p) for p in problems), key=lambda pair: pair[0])
    if doc.file is None:
        return [f"{_path_text(p.loc)}: {p.message}" for _, p in located]
    return [f"{doc.file}:{line}: {_path_text(p.loc)}: {p.message}" for line, p in located]


def resolve_config_path(
    path: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None
) -> Path | None:
    """The file to load: `path`, else $MOUCHARD_CONFIG, else None (the defaults)."""
    env = os.environ if env is None else env
    if path is not None:
        return Path(path)
    return Path(env[ENV_CONFIG]) if env.get(ENV_CONFIG) else None


def load_config(path: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None) -> Config:
    """Load, validate and return the configuration; raise ConfigError listing every problem."""
    env = os.environ if env is None else env
    source = resolve_config_path(path, env)
    if source is None:
        doc = _Document(None, {}, {(): 1}, [])
        return _build(doc, env, Path.cwd())
    return _build(_read_document(source), env, source.resolve().parent)


def _build(doc: _Document, env: Mapping[str, str], base_dir: Path) -> Config:
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        message = f"expected a mapping of keys such as 'gateway_id:' and 'influxdb:', got {_show(data)}"
        raise ConfigError(_format([_Problem((), f"{message} — see {DOCS}")], doc))
    data = dict(data)
    problems = [*doc.problems, *_inject_secrets(data, env, base_dir)]
    config: Config | None = None
    try:
        config = Config.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        problems += [_Problem(_clean_loc(e["loc"]), _describe(e)) for e in exc.errors(include_url=False)]
    if problems or config is None:
        raise ConfigError(_format(problems, doc))
    return config


def redacted_dump(cfg: Config) -> str:
    """The effective configuration as YAML, with every secret shown as ***."""
    data = cfg.model_dump(mode="json")
    for secret in _SECRETS:
        section = data[secret.section]
        if section.pop(secret.field) is not None:
            section[secret.field] = "***"  # unset secrets are left out, so the dump loads back
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
