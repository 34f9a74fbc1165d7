"""The Grafana objects around the dashboards: the InfluxDB data source and the dashboard provider.

One description of the data source serves both installs: Grafana's file provisioning (YAML, secrets
as ``$MOUCHARD_...`` references Grafana expands from its own environment) and the HTTP API
(`mouchard dashboards push`, secrets sent as ``secureJsonData``).
"""

from __future__ import annotations

from typing import Any

import yaml

from gateway.config import Config, InfluxApi
from gateway.grafana.influxql import INFLUXDB_TYPE
from gateway.grafana.panels import DATASOURCE_UID

DATASOURCE_NAME = "Mouchard InfluxDB"
FOLDER_UID = "mouchard"
FOLDER_TITLE = "Mouchard"
PROVIDER_NAME = "mouchard"
# Where Grafana's file provider reads the JSON of one language (copy dashboards/<lang>/*.json there).
PROVIDER_PATH = "/var/lib/grafana/dashboards/mouchard"
GENERATED = "# Written by `mouchard dashboards build`: edit the code in gateway/grafana/, not this file.\n"

PASSWORD_ENV = "MOUCHARD_INFLUXDB_PASSWORD"  # noqa: S105 - the variable's name, not a password
TOKEN_ENV = "MOUCHARD_INFLUXDB_TOKEN"  # noqa: S105 - ditto


def datasource(cfg: Config) -> dict[str, Any]:
    """The data source as Grafana's API takes it, without secrets (InfluxQL on the configured server).

    With ``influxdb.api: v2`` the database is the bucket (InfluxDB 2.x needs a DBRP mapping for
    InfluxQL) and the token goes in an ``Authorization`` header; with v1 a user logs in with a password.
    """
    influx = cfg.influxdb
    json_data: dict[str, Any] = {
        "dbName": influx.database,
        "httpMode": "POST",  # long InfluxQL (the hour-of-day heatmap) stays out of URLs
        "timeInterval": f"{cfg.aggregation.interval_s}s",  # $__interval never below one time bin
        "version": "InfluxQL",
    }
    if influx.api is InfluxApi.V2:
        json_data["httpHeaderName1"] = "Authorization"
    if not influx.verify_tls:
        json_data["tlsSkipVerify"] = True
    return {
        "uid": DATASOURCE_UID,
        "name": DATASOURCE_NAME,
        "type": INFLUXDB_TYPE,
        "access": "proxy",
        "url": influx.url,
        "user": influx.username if influx.api is InfluxApi.V1 else "",
        "basicAuth": False,
        "isDefault": False,
        "jsonData": json_data,
    }


def secure_fields(cfg: Config, *, resolved: bool) -> dict[str, str]:
    """The data source's secrets: the values themselves (`resolved`, for the API) or references to
    the environment variables Grafana expands in provisioning files. Empty when InfluxDB needs none."""
    influx = cfg.influxdb
    if influx.api is InfluxApi.V2:
        if resolved:
            return {"httpHeaderValue1": f"Token {influx.token.get_secret_value()}"} if influx.token else {}
        return {"httpHeaderValue1": f"Token ${TOKEN_ENV}"}
    if not influx.username:
        return {}
    if resolved:
        return {"password": influx.password.get_secret_value()} if influx.password else {}
    return {"password": f"${PASSWORD_ENV}"}


def datasource_yaml(cfg: Config) -> str:
    """Grafana's data source provisioning file."""
    entry = {**datasource(cfg), "editable": False}
    secrets = secure_fields(cfg, resolved=False)
    if secrets:
        entry["secureJsonData"] = secrets
    return GENERATED + _dump({"apiVersion": 1, "datasources": [entry]})


def provider_yaml() -> str:
    """Grafana's dashboard provider file: the JSON files under PROVIDER_PATH, in the Mouchard folder."""
    provider = {
        "name": PROVIDER_NAME,
        "orgId": 1,
        "type": "file",
        "folder": FOLDER_TITLE,
        "folderUid": FOLDER_UID,
        "disableDeletion": False,
        "allowUiUpdates": False,
        "updateIntervalSeconds": 60,
        "options": {"path": PROVIDER_PATH, "foldersFromFilesStructure": False},
    }
    return GENERATED + _dump({"apiVersion": 1, "providers": [provider]})


def _dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=True, allow_unicode=True, default_flow_style=False)
