"""A stand-in for Grafana's HTTP API on 127.0.0.1: the endpoints `mouchard dashboards push` calls.

Grafana cannot run here. This server keeps folders, data sources and dashboards in memory and
answers as Grafana's HTTP API reference documents (docs/sources/developers/http_api/folder.md,
data_source.md, dashboard.md: status codes, response bodies). Each request body is checked against
the JSON body the reference documents for that endpoint; a body that differs is answered 400, as
Grafana would, and recorded in `violations` so the test can name it. Dashboards are also checked
against Grafana's own dashboard JSON schema.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from jsonschema import Draft7Validator

from tests.grafana.grafana_rules import validator

_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
_UID = {"type": "string", "minLength": 1, "maxLength": 40}

# POST /api/folders -- "JSON Body schema: uid - Optional unique identifier; title - The title".
FOLDER_CREATE = {
    "type": "object",
    "required": ["title"],
    "additionalProperties": False,
    "properties": {"uid": _UID, "title": {"type": "string", "minLength": 1}, "parentUid": {"type": "string"}},
}
# PUT /api/folders/:uid -- uid, title, version ("Not needed if overwrite=true"), overwrite.
FOLDER_UPDATE = {
    "type": "object",
    "required": ["title"],
    "additionalProperties": False,
    "properties": {
        "uid": _UID,
        "title": {"type": "string", "minLength": 1},
        "version": {"type": "integer"},
        "overwrite": {"type": "boolean"},
    },
    "anyOf": [
        {"required": ["version"]},
        {"properties": {"overwrite": {"const": True}}, "required": ["overwrite"]},
    ],
}
# POST /api/datasources and PUT /api/datasources/uid/:uid -- the fields of the documented examples;
# secrets only under secureJsonData ("Grafana encrypts them securely").
_DATASOURCE_FIELDS: dict[str, Any] = {
    "uid": _UID,
    "name": {"type": "string", "minLength": 1},
    "type": {"type": "string", "minLength": 1},
    "access": {"enum": ["proxy", "direct"]},
    "url": {"type": "string"},
    "user": {"type": "string"},
    "database": {"type": "string"},
    "basicAuth": {"type": "boolean"},
    "basicAuthUser": {"type": "string"},
    "withCredentials": {"type": "boolean"},
    "isDefault": {"type": "boolean"},
    "jsonData": {"type": ["object", "null"]},
    "secureJsonData": _STRINGS,
}
DATASOURCE_CREATE = {
    "type": "object",
    "required": ["name", "type", "access"],
    "additionalProperties": False,
    "properties": _DATASOURCE_FIELDS,
}
DATASOURCE_UPDATE = {
    "type": "object",
    "required": ["name", "type", "access"],
    "additionalProperties": False,
    "properties": {
        **_DATASOURCE_FIELDS,
        "id": {"type": "integer"},
        "orgId": {"type": "integer"},
        "version": {"type": "integer"},
    },
}
# POST /api/dashboards/db -- dashboard, folderId, folderUid, overwrite, message.
DASHBOARD_SAVE = {
    "type": "object",
    "required": ["dashboard"],
    "additionalProperties": False,
    "properties": {
        "dashboard": {"type": "object"},
        "folderId": {"type": "integer"},
        "folderUid": {"type": "string"},
        "overwrite": {"type": "boolean"},
        "message": {"type": "string"},
    },
}


@dataclass
class Call:
    method: str
    path: str
    body: Any = None


@dataclass
class GrafanaState:
    token: str
    prefix: str = ""  # a sub-path deployment: /grafana/api/...
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid -> {"dashboard", "folderUid"}
    calls: list[Call] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    next_id: int = 1

    @property
    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method != "GET"]

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


Answer = tuple[int, Any]


def _not_found(message: str) -> Answer:
    return HTTPStatus.NOT_FOUND, {"message": message}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads `calls`."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        state = self.server.state
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        with self.server.lock:
            state.calls.append(Call(method, path, copy.deepcopy(body)))
            if self.headers.get("Authorization") != f"Bearer {state.token}":
                status, answer = HTTPStatus.UNAUTHORIZED, {"message": "invalid API key"}
            elif method != "GET" and not self.headers.get("Content-Type", "").startswith("application/json"):
                status, answer = HTTPStatus.BAD_REQUEST, {"message": "bad request data"}
            else:
                status, answer = _route(state, method, path.removeprefix(state.prefix), body)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _invalid(state: GrafanaState, schema: dict[str, Any], body: Any, what: str) -> Answer | None:
    errors = [
        f"{what}: {'/'.join(map(str, e.absolute_path))} {e.message}"
        for e in Draft7Validator(schema).iter_errors(body)
    ]
    if not errors:
        return None
    state.violations += errors
    return HTTPStatus.BAD_REQUEST, {"message": "bad request data"}


def _route(state: GrafanaState, method: str, path: str, body: Any) -> Answer:
    if m := re.fullmatch(r"/api/folders/([^/]+)", path):
        return _folder(state, method, m.group(1), body)
    if path == "/api/folders" and method == "POST":
        return _create_folder(state, body)
    if m := re.fullmatch(r"/api/datasources/uid/([^/]+)", path):
        return _datasource(state, method, m.group(1), body)
    if path == "/api/datasources" and method == "POST":
        return _create_datasource(state, body)
    if (m := re.fullmatch(r"/api/dashboards/uid/([^/]+)", path)) and method == "GET":
        return _get_dashboard(state, m.group(1))
    if path == "/api/dashboards/db" and method == "POST":
        return _save_dashboard(state, body)
    state.violations.append(f"{method} {path} is not an endpoint push should call")
    return _not_found("Not found")


def _folder(state: GrafanaState, method: str, uid: str, body: Any) -> Answer:
    folder = state.folders.get(uid)
    if folder is None:
        return _not_found("folder not found")
    if method == "GET":
        return HTTPStatus.OK, folder
    if method != "PUT":
        return HTTPStatus.METHOD_NOT_ALLOWED, {"message": "method not allowed"}
    if bad := _invalid(state, FOLDER_UPDATE, body, "PUT /api/folders/:uid"):
        return bad
    if not body.get("overwrite") and body.get("version") != folder["version"]:
        return HTTPStatus.PRECONDITION_FAILED, {
            "message": "The folder has been changed by someone else",
            "status": "version-mismatch",
        }
    folder.update(title=body["title"], version=folder["version"] + 1)
    return HTTPStatus.OK, folder


def _create_folder(state: GrafanaState, body: Any) -> Answer:
    if bad := _invalid(state, FOLDER_CREATE, body, "POST /api/folders"):
        return bad
    uid = body.get("uid") or f"f{state.new_id()}"
    if uid in state.folders:
        return HTTPStatus.CONFLICT, {"message": "a folder with the same uid already exists"}
    folder = {
        "id": state.new_id(),
        "uid": uid,
        "title": body["title"],
        "url": f"/dashboards/f/{uid}/",
        "version": 1,
    }
    state.folders[uid] = folder
    return HTTPStatus.OK, folder


def _datasource(state: GrafanaState, method: str, uid: str, body: Any) -> Answer:
    stored = state.datasources.get(uid)
    if stored is None:
        return _not_found("Data source not found")
    if method == "GET":
        return HTTPStatus.OK, {**stored, "secureJsonFields": dict.fromkeys(state.secrets.get(uid, {}), True)}
    if bad := _invalid(state, DATASOURCE_UPDATE, body, "PUT /api/datasources/uid/:uid"):
        return bad
    return HTTPStatus.OK, {
        "datasource": _store_datasource(state, uid, body, stored),
        "message": "Datasource updated",
    }


def _create_datasource(state: GrafanaState, body: Any) -> Answer:
    if bad := _invalid(state, DATASOURCE_CREATE, body, "POST /api/datasources"):
        return bad
    uid = body.get("uid") or f"d{state.new_id()}"
    if uid in state.datasources or any(d["name"] == body["name"] for d in state.datasources.values()):
        return HTTPStatus.CONFLICT, {"message": "data source with the same name already exists"}
    stored = _store_datasource(state, uid, body, None)
    return HTTPStatus.OK, {
        "datasource": stored,
        "id": stored["id"],
        "message": "Datasource added",
        "name": stored["name"],
    }


def _store_datasource(
    state: GrafanaState, uid: str, body: dict[str, Any], old: dict[str, Any] | None
) -> dict[str, Any]:
    fields = {k: v for k, v in body.items() if k not in {"secureJsonData", "id", "orgId", "version"}}
    stored = {
        "id": old["id"] if old else state.new_id(),
        "orgId": 1,
        "uid": uid,
        "typeLogoUrl": "",
        "password": "",
        "user": "",
        "database": "",
        "basicAuth": False,
        "basicAuthUser": "",
        "withCredentials": False,
        "isDefault": False,
        "jsonData": {},
        "readOnly": False,
        **fields,
        "version": (old["version"] + 1) if old else 1,
    }
    # Grafana keeps the secrets a request does not repeat.
    state.secrets[uid] = {**state.secrets.get(uid, {}), **body.get("secureJsonData", {})}
    state.datasources[uid] = stored
    return stored


def _get_dashboard(state: GrafanaState, uid: str) -> Answer:
    saved = state.dashboards.get(uid)
    if saved is None:
        return _not_found("Dashboard not found")
    meta = {"folderUid": saved["folderUid"], "url": f"/d/{uid}/", "slug": uid, "isStarred": False}
    return HTTPStatus.OK, {"dashboard": copy.deepcopy(saved["dashboard"]), "meta": meta}


def _save_dashboard(state: GrafanaState, body: Any) -> Answer:
    if bad := _invalid(state, DASHBOARD_SAVE, body, "POST /api/dashboards/db"):
        return bad
    model = body["dashboard"]
    schema_errors = [e.message for e in validator("dashboard", "Dashboard").iter_errors(model)]
    if schema_errors:
        state.violations += [f"dashboard {model.get('uid')}: {e}" for e in schema_errors]
        return HTTPStatus.BAD_REQUEST, {"message": "invalid dashboard"}
    folder = body.get("folderUid", "")
    if folder and folder not in state.folders:
        return HTTPStatus.BAD_REQUEST, {"message": "folder not found"}
    uid = model.get("uid") or f"u{state.new_id()}"
    old = state.dashboards.get(uid)
    if old is not None and not body.get("overwrite") and model.get("version") != old["dashboard"]["version"]:
        return HTTPStatus.PRECONDITION_FAILED, {
            "message": "A dashboard with the same uid already exists",
            "status": "name-exists",
        }
    version = old["dashboard"]["version"] + 1 if old else 1
    ident = old["dashboard"]["id"] if old else state.new_id()
    state.dashboards[uid] = {
        "dashboard": {**model, "id": ident, "uid": uid, "version": version},
        "folderUid": folder,
    }
    return HTTPStatus.OK, {
        "id": ident,
        "uid": uid,
        "url": f"/d/{uid}/",
        "status": "success",
        "version": version,
        "slug": uid,
    }


class _Server(ThreadingHTTPServer):
    def __init__(self, state: GrafanaState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.lock = threading.Lock()


@contextmanager
def fake_grafana(token: str, prefix: str = "") -> Iterator[tuple[str, GrafanaState]]:
    """A running fake Grafana: its base URL and its state."""
    state = GrafanaState(token, prefix)
    server = _Server(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{prefix}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
