"""InfluxDB 1.x HTTP API (``/write`` and ``/query``), line protocol in batches.

Errors say whether a retry makes sense (``retryable``): connection failures, 5xx and 429 do;
400 (a bad point) and 401/403/404 (a set-up problem) do not.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import urllib3

from gateway.config import InfluxConfig


class InfluxError(Exception):
    """A failed request to InfluxDB; ``retryable`` tells whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class InfluxV1Sink:
    """Posts line protocol to ``/write`` in batches of ``batch_size`` lines."""

    def __init__(self, cfg: InfluxConfig) -> None:
        self.cfg = cfg
        self.url = cfg.url.rstrip("/")
        self.points = 0
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(total=cfg.timeout_s),
            retries=False,
            cert_reqs="CERT_REQUIRED" if cfg.verify_tls else "CERT_NONE",
        )
        self._headers: dict[str, str] = {}
        if cfg.username:
            password = cfg.password.get_secret_value() if cfg.password else ""
            self._headers = urllib3.make_headers(basic_auth=f"{cfg.username}:{password}")

    def describe(self) -> str:
        return f"InfluxDB {self.url} database {self.cfg.database}"

    def _request(self, method: str, path: str, params: dict[str, str], body: bytes | None = None) -> bytes:
        url = f"{self.url}{path}?{urlencode(params)}"
        try:
            resp = self._http.request(method, url, body=body, headers=self._headers)
        except urllib3.exceptions.HTTPError as exc:
            raise InfluxError(
                f"cannot reach InfluxDB at {self.url}: {type(exc).__name__}", retryable=True
            ) from None
        if resp.status >= 300:
            text = resp.data.decode("utf-8", "replace")[:300].strip()
            retryable = resp.status >= 500 or resp.status == 429
            raise InfluxError(
                f"InfluxDB at {self.url} answered {resp.status}: {text}",
                retryable=retryable,
                status=resp.status,
            )
        return bytes(resp.data)

    def query(self, q: str, database: str | None = None) -> list[dict[str, object]]:
        """Run an InfluxQL statement; returns the result list (used for set-up and by tests)."""
        params = {"q": q}
        if database:
            params["db"] = database
        data = json.loads(self._request("POST", "/query", params) or b"{}")
        results: list[dict[str, object]] = data.get("results", [])
        for res in results:
            if "error" in res:
                verb = q.split(maxsplit=1)[0]
                raise InfluxError(f"InfluxDB refused {verb}: {res['error']}", retryable=False)
        return results

    def ensure_database(self) -> None:
        """Create the database if permitted (CREATE DATABASE is idempotent)."""
        try:
            self.query(f'CREATE DATABASE "{self.cfg.database}"')
        except InfluxError as exc:
            if exc.retryable:
                raise
            raise InfluxError(
                f"{exc}. Create the database yourself (influx -execute 'CREATE DATABASE {self.cfg.database}')"
                " or give the user the right to",
                retryable=False,
            ) from None

    def write(self, lines: list[str]) -> None:
        size = self.cfg.batch_size
        for i in range(0, len(lines), size):
            chunk = lines[i : i + size]
            params = {"db": self.cfg.database}
            if self.cfg.retention_policy:
                params["rp"] = self.cfg.retention_policy
            self._request("POST", "/write", params, ("\n".join(chunk) + "\n").encode("utf-8"))
            self.points += len(chunk)

    def close(self) -> None:
        self._http.clear()
