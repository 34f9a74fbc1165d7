"""Where and how `mouchard dashboards push` reaches Grafana, from the configuration's `grafana:` section.

The section (see docs/dashboards.md) holds ``url``, ``folder``, ``language``, ``home_country``,
``verify_tls``, ``timeout_s`` and ``token_file``; the configuration resolves the service-account token
from ``MOUCHARD_GRAFANA_TOKEN`` or that file into ``grafana.token``. Until a configuration carries the
section, the defaults below apply and the token is read from the environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from gateway.config import Config
from gateway.grafana.language import Lang

TOKEN_ENV = "MOUCHARD_GRAFANA_TOKEN"  # noqa: S105 - the variable's name, not a token
DEFAULT_URL = "http://127.0.0.1:3000"
DEFAULT_FOLDER = "Mouchard"
DEFAULT_COUNTRY = "FR"
DEFAULT_TIMEOUT_S = 10.0
_COUNTRY_RE = re.compile(r"[A-Z]{2}")


class SettingsError(ValueError):
    """A push that cannot start: the message says what to set."""


@dataclass(frozen=True, slots=True)
class GrafanaSettings:
    """Everything a push needs; the token never appears in `repr`."""

    url: str = DEFAULT_URL
    folder: str = DEFAULT_FOLDER
    language: Lang = Lang.EN
    home_country: str = DEFAULT_COUNTRY
    timezone: str = "Europe/Paris"
    verify_tls: bool = True
    timeout_s: float = DEFAULT_TIMEOUT_S
    token: str = field(default="", repr=False)


def settings_from(
    cfg: Config, env: Mapping[str, str] | None = None, *, url: str | None = None, lang: str | None = None
) -> GrafanaSettings:
    """The push settings: the `grafana:` section, the lab's time zone, and command-line overrides."""
    env = os.environ if env is None else env
    section: Any = getattr(cfg, "grafana", None)
    secret: Any = getattr(section, "token", None)
    token = secret.get_secret_value() if secret is not None else env.get(TOKEN_ENV, "")
    settings = GrafanaSettings(
        url=str(url or getattr(section, "url", DEFAULT_URL)).rstrip("/"),
        folder=str(getattr(section, "folder", DEFAULT_FOLDER)),
        language=Lang(lang or str(getattr(section, "language", Lang.EN.value))),
        home_country=str(getattr(section, "home_country", DEFAULT_COUNTRY)).upper(),
        timezone=cfg.detectors.timezone,
        verify_tls=bool(getattr(section, "verify_tls", True)),
        timeout_s=float(getattr(section, "timeout_s", DEFAULT_TIMEOUT_S)),
        token=token,
    )
    _check(settings)
    return settings


def _check(settings: GrafanaSettings) -> None:
    problems = []
    parts = urlsplit(settings.url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        problems.append(f"'{settings.url}' is not an http(s) URL — write it as http://127.0.0.1:3000")
    if not settings.token:
        problems.append(
            "no Grafana token — in Grafana, add a service account with the Admin role (it creates the "
            f"data source) and a token for it, then set {TOKEN_ENV} or grafana.token_file"
        )
    if not _COUNTRY_RE.fullmatch(settings.home_country):
        problems.append(f"'{settings.home_country}' is not a country code — write two letters such as FR")
    if problems:
        raise SettingsError("\n".join(problems))


def with_lab_settings(model: dict[str, Any], settings: GrafanaSettings) -> dict[str, Any]:
    """The dashboard with its text boxes set to the lab's country and time zone (a copy)."""
    values = {"country": settings.home_country, "timezone": settings.timezone}
    variables = []
    for variable in model.get("templating", {}).get("list", []):
        value = values.get(variable.get("name")) if variable.get("type") == "textbox" else None
        if value is None:
            variables.append(variable)
        else:
            current = {"selected": True, "text": value, "value": value}
            variables.append({**variable, "query": value, "current": current})
    if not variables:
        return dict(model)
    return {**model, "templating": {**model["templating"], "list": variables}}
