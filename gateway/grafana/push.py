"""`mouchard dashboards push`: the folder, the data source and the dashboards, through Grafana's HTTP API.

Each object is read first and written only when it differs from what Mouchard would write, so a
second push makes no change (and no new dashboard version). Endpoints, all documented in Grafana's
HTTP API reference and called through grafana-client:

- folder: ``GET /api/folders/:uid``, ``POST /api/folders``, ``PUT /api/folders/:uid``
- data source: ``GET /api/datasources/uid/:uid``, ``POST /api/datasources``,
  ``PUT /api/datasources/uid/:uid``
- dashboards: ``GET /api/dashboards/uid/:uid``, ``POST /api/dashboards/db``
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from gateway.grafana.provisioning import FOLDER_UID
from gateway.grafana.settings import GrafanaSettings

# Keys Grafana adds to a saved dashboard; they are not part of what Mouchard writes.
_SERVER_KEYS = frozenset({"id", "version"})
NOT_FOUND = 404
AUTH_STATUSES = frozenset({401, 403})


class Change(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


class PushError(Exception):
    """Grafana could not be reached or refused a request; `retryable` says whether trying later helps."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(slots=True)
class PushReport:
    """What a push did to each object, in order: ("folder Mouchard", Change.CREATED)..."""

    changes: list[tuple[str, Change]] = field(default_factory=list)

    def add(self, what: str, change: Change) -> None:
        self.changes.append((what, change))

    @property
    def changed(self) -> int:
        return sum(1 for _, change in self.changes if change is not Change.UNCHANGED)


def connect(settings: GrafanaSettings) -> Any:
    """A grafana-client API object for the settings' URL and token (no request is made yet)."""
    parts = urlsplit(settings.url)
    prefix = parts.path.strip("/")
    return GrafanaApi(
        auth=settings.token,  # a string: grafana-client sends it as "Authorization: Bearer <token>"
        host=parts.hostname or "",
        port=parts.port,
        url_path_prefix=f"{prefix}/" if prefix else "",
        protocol=parts.scheme,
        verify=settings.verify_tls,
        timeout=settings.timeout_s,
    )


class Pusher:
    """Brings one Grafana organisation to the wanted folder, data source and dashboards."""

    def __init__(self, api: Any, settings: GrafanaSettings) -> None:
        self.api = api
        self.settings = settings
        self.report = PushReport()

    def push(
        self, datasource: Mapping[str, Any], secrets: Mapping[str, str], boards: Mapping[str, dict[str, Any]]
    ) -> PushReport:
        self._folder()
        self._datasource(datasource, secrets)
        for model in boards.values():
            self._dashboard(model)
        return self.report

    def _folder(self) -> None:
        title = self.settings.folder
        current = self._get(lambda: self.api.folder.get_folder(FOLDER_UID))
        if current is None:
            self._call(lambda: self.api.folder.create_folder(title, uid=FOLDER_UID))
            self.report.add(f"folder {title}", Change.CREATED)
        elif current.get("title") != title:
            self._call(lambda: self.api.folder.update_folder(FOLDER_UID, title=title, overwrite=True))
            self.report.add(f"folder {title}", Change.UPDATED)
        else:
            self.report.add(f"folder {title}", Change.UNCHANGED)

    def _datasource(self, wanted: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
        uid, name = wanted["uid"], f"data source {wanted['name']}"
        current = self._get(lambda: self.api.datasource.get_datasource_by_uid(uid))
        body = {**wanted, "secureJsonData": dict(secrets)} if secrets else dict(wanted)
        if current is None:
            self._call(lambda: self.api.datasource.create_datasource(body))
            self.report.add(name, Change.CREATED)
            return
        stored_secrets = current.get("secureJsonFields") or {}
        missing_secret = any(not stored_secrets.get(key) for key in secrets)
        if missing_secret or _differs(current, wanted):
            self._call(lambda: self.api.datasource.update_datasource_by_uid(uid, body))
            self.report.add(name, Change.UPDATED)
        else:
            self.report.add(name, Change.UNCHANGED)

    def _dashboard(self, model: dict[str, Any]) -> None:
        uid, name = model["uid"], f"dashboard {model['title']}"
        current = self._get(lambda: self.api.dashboard.get_dashboard(uid))
        if current is not None:
            saved = {k: v for k, v in (current.get("dashboard") or {}).items() if k not in _SERVER_KEYS}
            folder = (current.get("meta") or {}).get("folderUid")
            if saved == model and folder == FOLDER_UID:
                self.report.add(name, Change.UNCHANGED)
                return
        body = {
            "dashboard": {**model, "id": None},
            "folderUid": FOLDER_UID,
            "overwrite": True,
            "message": "mouchard dashboards push",
        }
        self._call(lambda: self.api.dashboard.update_dashboard(body))
        self.report.add(name, Change.CREATED if current is None else Change.UPDATED)

    def _get(self, request: Callable[[], Any]) -> dict[str, Any] | None:
        """The object Grafana returns, or None when it answers 404 (not there yet)."""
        try:
            answer = request()
        except GrafanaClientError as exc:
            if exc.status_code == NOT_FOUND:
                return None
            raise self._error(exc) from None
        except (GrafanaException, OSError) as exc:
            raise self._error(exc) from None
        if not isinstance(answer, dict):
            raise PushError(
                f"{self.settings.url} answered {answer!r:.80}, not a JSON object: is it Grafana?",
                retryable=False,
            )
        return answer

    def _call(self, request: Callable[[], Any]) -> None:
        try:
            request()
        except (GrafanaException, OSError) as exc:
            raise self._error(exc) from None

    def _error(self, exc: Exception) -> PushError:
        url = self.settings.url
        status = getattr(exc, "status_code", 0) or 0
        if status in AUTH_STATUSES:
            return PushError(
                f"Grafana at {url} refused the token (HTTP {status}) — use a token of a service account "
                "with the Admin role (it creates the data source), in MOUCHARD_GRAFANA_TOKEN or "
                "grafana.token_file",
                retryable=False,
            )
        if isinstance(exc, GrafanaClientError):
            return PushError(f"Grafana at {url} rejected a request: {exc}", retryable=False)
        return PushError(
            f"cannot reach Grafana at {url}: {exc} — check grafana.url and that Grafana is running",
            retryable=True,
        )


def _differs(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """True when a key Mouchard sets has another value in Grafana (jsonData compared key by key)."""
    for key, value in wanted.items():
        if key == "jsonData":
            stored = current.get("jsonData") or {}
            if any(stored.get(k) != v for k, v in value.items()):
                return True
        elif current.get(key) != value:
            return True
    return False
