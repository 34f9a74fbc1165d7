"""InfluxDB 1.x HTTP API (``/write`` and ``/query``): typed errors, set-up, and one write of a batch.

Errors are told apart by type, never by message: `InfluxUnavailable` (connection refused or reset,
timeouts, 5xx, 429 with its Retry-After) is worth retrying; `InfluxSetupError` (401, 403, a database
that does not exist and cannot be created, a TLS failure) needs the user. A 400 is neither: InfluxDB
wrote the good points of the batch and refused the bad ones, so `send` returns how many it refused
(`Delivered.dropped`) and the batch must not be sent again.

Retries, batching and the spool live in `gateway.sinks.reliable`; this module makes single requests.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlencode, urlsplit, urlunsplit

import urllib3

from gateway.config import InfluxConfig
from gateway.sinks.batch import Batch, Delivered, parse_retry_after

log = logging.getLogger(__name__)

# Name of the policy created when a database has no default one (the same as Ansible's influxdb role).
DEFAULT_POLICY = "mouchard"
_HOUR_S, _DAY_S = 3600, 86_400
_GO_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)(?:\.\d*)?s)?")
# Characters of a server's error message quoted in ours (enough for a field type conflict).
_QUOTE_MAX = 300
_BAD_POINTS = frozenset({400, 422})  # 422: InfluxDB 2.x's answer to a field type conflict
_TOO_LARGE = 413
_DROPPED = re.compile(rb"dropped=(\d+)")
_UNPARSABLE = b"unable to parse '"


class InfluxError(Exception):
    """A failed request to InfluxDB; ``retryable`` tells whether trying again can help."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class InfluxUnavailable(InfluxError):  # noqa: N818 - the name says what it means to the caller
    """InfluxDB cannot take writes now (down, restarting, overloaded); retry later, spool meanwhile."""

    retryable = True

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class InfluxSetupError(InfluxError):
    """Credentials, permissions, database, URL or certificate: the user must change something."""


class RetentionSetup(StrEnum):
    """Whether set-up applies ``influxdb.retention_days`` to the database's default policy."""

    APPLY = "apply"  # mouchard run: the lab's live record expires after retention_days
    LEAVE = "leave"  # replay, spool flush: they write old points; policies stay as they are


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """One row of SHOW RETENTION POLICIES; durations in seconds, 0 for infinite."""

    name: str
    duration_s: int
    shard_s: int
    default: bool


def safe_url(url: str) -> str:
    """``url`` without any ``user:password@`` part, for messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def quote_answer(body: bytes) -> str:
    """A server's answer as a short single line for a message."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        text = str(data.get("error") or data.get("message") or text)
    return " ".join(text.split())[:_QUOTE_MAX]


def rejected_points(body: bytes, points: int) -> int:
    """How many points of a batch a 400 answer says were refused.

    InfluxDB 1.x and 2.x end a partial write with ``dropped=N`` (field type conflicts) and list each
    unparsable line as ``unable to parse '...'``; the good points were written. The text is read only
    to count, never to decide what to do. When the answer says neither, the whole batch counts.
    """
    m = _DROPPED.search(body)
    counted = (int(m.group(1)) if m else 0) + body.count(_UNPARSABLE)
    return min(points, counted) if counted else points


class InfluxV1Client:
    """Single requests to an InfluxDB 1.x HTTP API: set-up, writes of whole batches, queries."""

    def __init__(self, cfg: InfluxConfig, retention: RetentionSetup = RetentionSetup.LEAVE) -> None:
        self.cfg = cfg
        self.retention = retention
        self.url = cfg.url.rstrip("/")
        self._where = safe_url(self.url)
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(total=cfg.timeout_s),
            retries=False,
            cert_reqs="CERT_REQUIRED" if cfg.verify_tls else "CERT_NONE",
        )
        self._headers: dict[str, str] = {}
        if cfg.username:
            password = cfg.password.get_secret_value() if cfg.password else ""
            self._headers = urllib3.make_headers(basic_auth=f"{cfg.username}:{password}")
        self._write_params = {"db": cfg.database, "precision": "ns"}
        if cfg.retention_policy:
            self._write_params["rp"] = cfg.retention_policy
        self._prepared = False
        self._prepare_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"InfluxV1Client(url={self._where!r}, database={self.cfg.database!r})"

    def describe(self) -> str:
        rp = f", retention policy {self.cfg.retention_policy}" if self.cfg.retention_policy else ""
        return f"InfluxDB {self._where} database {self.cfg.database}{rp} (/write)"

    def close(self) -> None:
        self._http.clear()

    # ------------------------------------------------------------------ writing

    def send(self, batch: Batch) -> Delivered:
        """Write one batch; returns how many points InfluxDB refused (bad points), raises otherwise."""
        if not self._prepared:
            self.prepare()
        status, body, retry_after = self._post("/write", self._write_params, batch.body)
        if status < 300:
            return Delivered()
        if status in _BAD_POINTS:
            return Delivered(rejected_points(body, batch.points), quote_answer(body))
        if status == _TOO_LARGE and batch.points > 1:
            return _send_halves(self.send, batch)
        if status == 404:
            self._prepared = False  # the database went away: create it again before the next try
            raise InfluxUnavailable(f"InfluxDB at {self._where}: {quote_answer(body)}", status=status)
        raise self._error(status, body, retry_after, "write")

    def probe(self) -> bool:
        """True when InfluxDB answers its ``/ping``."""
        try:
            resp = self._http.request("GET", f"{self.url}/ping", headers=self._headers)
        except urllib3.exceptions.HTTPError:
            return False
        return bool(resp.status < 300)

    # ------------------------------------------------------------------ set-up

    def prepare(self) -> None:
        """Create the database (and the retention policy) if permitted, else say what to create.

        Raises InfluxSetupError when the user must act, InfluxUnavailable when InfluxDB is not there.
        """
        with self._prepare_lock:
            if self._prepared:
                return
            self._ensure_database()
            if self.cfg.retention_policy:
                self._ensure_retention_policy()
            if self.retention == RetentionSetup.APPLY:
                self._apply_retention()
            self._prepared = True

    def _ensure_database(self) -> None:
        db = self.cfg.database
        try:
            self.query(f"CREATE DATABASE {_ident(db)}")
        except InfluxSetupError as exc:
            if exc.status != 403:
                raise
            if db in self._databases():
                return  # not ours to create, and there it is
            raise InfluxSetupError(
                f"InfluxDB at {self._where}: database '{db}' does not exist and user '{self.cfg.username}' "
                f"may not create it. Ask an admin to run: CREATE DATABASE {_ident(db)}; "
                f"GRANT WRITE ON {_ident(db)} TO {_ident(self.cfg.username)}",
                status=exc.status,
            ) from None

    def _ensure_retention_policy(self) -> None:
        db, rp, user = self.cfg.database, self.cfg.retention_policy, self.cfg.username
        statement = self._create_policy(rp)
        try:
            if rp in self._retention_policies():
                return
            self.query(statement)
        except InfluxSetupError as exc:
            raise InfluxSetupError(
                f"InfluxDB at {self._where}: retention policy '{rp}' on '{db}' could not be checked or "
                f"created ({exc}). Ask an admin to run: {statement}; and, if it exists already, to run: "
                f"GRANT READ ON {_ident(db)} TO {_ident(user)} so that Mouchard can see it",
                status=exc.status,
            ) from None

    def _apply_retention(self) -> None:
        """Give the database's default policy ``retention_days`` (creating or altering it), if we may.

        The policy is ``retention_policy`` when set, else the current default one (``autogen`` on a
        database InfluxDB created), else a new ``mouchard``. A user who may not (only an admin may)
        gets one line saying what to run; writing goes on either way.
        """
        db, days = self.cfg.database, self.cfg.retention_days
        try:
            policies = self.retention_policies()
        except InfluxSetupError:
            name = self.cfg.retention_policy or "<its default policy>"
            log.info(
                "InfluxDB at %s: user '%s' may not read the retention policies of '%s', so Mouchard cannot "
                "check that points expire after %s; an admin can run: %s",
                self._where,
                self.cfg.username,
                db,
                _days_text(days),
                f"ALTER RETENTION POLICY {_ident(name)} ON {_ident(db)} DURATION {_duration(days)} DEFAULT",
            )
            return
        current = next((p for p in policies if p.default), None)
        name = self.cfg.retention_policy or (current.name if current else DEFAULT_POLICY)
        found = next((p for p in policies if p.name == name), None)
        if found is not None and found.default and found.duration_s == days * _DAY_S:
            return
        statement = self._alter_policy(found, days) if found else self._create_policy(name)
        try:
            self.query(statement)
        except InfluxSetupError:
            log.warning(
                "InfluxDB at %s: user '%s' may not set the retention of '%s' (only an admin may), so points "
                "do not expire after %s as influxdb.retention_days says; ask an admin to run: %s",
                self._where,
                self.cfg.username,
                db,
                _days_text(days),
                statement,
            )
            return
        log.info("InfluxDB at %s: %s", self._where, statement)

    def _create_policy(self, name: str) -> str:
        days = self.cfg.retention_days
        return (
            f"CREATE RETENTION POLICY {_ident(name)} ON {_ident(self.cfg.database)} "
            f"DURATION {_duration(days)} REPLICATION 1 DEFAULT"
        )

    def _alter_policy(self, policy: RetentionPolicy, days: int) -> str:
        db = _ident(self.cfg.database)
        statement = f"ALTER RETENTION POLICY {_ident(policy.name)} ON {db} DURATION {_duration(days)}"
        if days and policy.shard_s > days * _DAY_S:  # InfluxDB refuses a policy shorter than its shards
            statement += f" SHARD DURATION {_shard_duration(days)}"
        return statement + " DEFAULT"

    def retention_policies(self) -> list[RetentionPolicy]:
        """The database's retention policies (needs READ on it, or admin)."""
        rows: list[RetentionPolicy] = []
        for res in self.query(f"SHOW RETENTION POLICIES ON {_ident(self.cfg.database)}"):
            for series in _as_list(res.get("series")):
                values = _as_list(series.get("values")) if isinstance(series, dict) else []
                for row in values:
                    if isinstance(row, list) and len(row) >= 5:
                        name, duration, shard, default = str(row[0]), str(row[1]), str(row[2]), row[4]
                        rows.append(
                            RetentionPolicy(name, _go_seconds(duration), _go_seconds(shard), default is True)
                        )
        return rows

    def _databases(self) -> set[str]:
        return set(self._first_column(self.query("SHOW DATABASES")))

    def _retention_policies(self) -> set[str]:
        return set(self._first_column(self.query(f"SHOW RETENTION POLICIES ON {_ident(self.cfg.database)}")))

    @staticmethod
    def _first_column(results: list[dict[str, object]]) -> list[str]:
        names: list[str] = []
        for res in results:
            for series in _as_list(res.get("series")):
                if isinstance(series, dict):
                    rows = _as_list(series.get("values"))
                    names.extend(str(row[0]) for row in rows if isinstance(row, list) and row)
        return names

    # ------------------------------------------------------------------ queries

    def query(self, q: str, database: str | None = None) -> list[dict[str, object]]:
        """Run an InfluxQL statement; returns the result list (used for set-up and by tests)."""
        params = {"q": q}
        if database:
            params["db"] = database
        status, body, retry_after = self._post("/query", params, None)
        if status >= 300:
            raise self._error(status, body, retry_after, q.split(maxsplit=1)[0])
        data = json.loads(body or b"{}")
        results: list[dict[str, object]] = data.get("results", [])
        for res in results:
            if "error" in res:
                verb = q.split(maxsplit=1)[0]
                raise InfluxSetupError(f"InfluxDB at {self._where} refused {verb}: {res['error']}")
        return results

    # ------------------------------------------------------------------ HTTP

    def _post(self, path: str, params: dict[str, str], body: bytes | None) -> tuple[int, bytes, float | None]:
        url = f"{self.url}{path}?{urlencode(params)}"
        try:
            resp = self._http.request("POST", url, body=body, headers=self._headers)
        except urllib3.exceptions.SSLError as exc:
            raise InfluxSetupError(
                f"TLS with InfluxDB at {self._where} failed ({type(exc).__name__}): check its certificate, "
                "or set influxdb.verify_tls: false for a self-signed one on a trusted network"
            ) from None
        except urllib3.exceptions.HTTPError as exc:
            raise InfluxUnavailable(f"cannot reach InfluxDB at {self._where}: {type(exc).__name__}") from None
        return resp.status, bytes(resp.data), parse_retry_after(resp.headers.get("Retry-After"))

    def _error(self, status: int, body: bytes, retry_after: float | None, verb: str) -> InfluxError:
        said = quote_answer(body)
        if status == 429 or status >= 500:
            return InfluxUnavailable(
                f"InfluxDB at {self._where} answered {status} to {verb}: {said}",
                status=status,
                retry_after=retry_after,
            )
        return InfluxSetupError(
            f"InfluxDB at {self._where} answered {status} to {verb}: {said}. {_setup_hint(status)}",
            status=status,
        )


def _setup_hint(status: int) -> str:
    if status == 401:
        return (
            "Check influxdb.username and the password (MOUCHARD_INFLUXDB_PASSWORD or influxdb.password_file)"
        )
    if status == 403:
        return "Give the user WRITE on the database (GRANT WRITE ON <db> TO <user>)"
    if status == 404:
        return "Check influxdb.url: it must be the base URL of InfluxDB (e.g. http://127.0.0.1:8086)"
    return "Check influxdb.url and the InfluxDB version (api: v1 needs /write and /query)"


def _send_halves(send: Callable[[Batch], Delivered], batch: Batch) -> Delivered:
    """A batch the server found too large, sent as two halves (recursively, down to one point)."""
    results = [send(half) for half in batch.halves()]
    return Delivered(sum(r.dropped for r in results), "; ".join(r.reason for r in results if r.reason))


def _duration(days: int) -> str:
    """An InfluxQL duration of ``days`` (0: INF, kept forever)."""
    return f"{days}d" if days else "INF"


def _days_text(days: int) -> str:
    return f"{days} days" if days else "never (retention_days: 0)"


def _shard_duration(days: int) -> str:
    """InfluxDB's own choice of shard group duration for a policy of ``days``."""
    if days < 2:  # InfluxDB's thresholds: under 2 days, 1 hour shards; to 6 months, 1 day; then 7 days
        return "1h"
    return "1d" if days <= 180 else "7d"


def _go_seconds(text: str) -> int:
    """Seconds in a Go duration as InfluxDB prints it (``720h0m0s``, ``0s``)."""
    m = _GO_DURATION.fullmatch(text)
    if m is None:
        return -1  # not a duration we understand: never equal to the wanted one
    h, mi, s = (int(g) if g else 0 for g in m.groups())
    return h * _HOUR_S + mi * 60 + s


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _ident(name: str) -> str:
    """An InfluxQL identifier, double-quoted."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
