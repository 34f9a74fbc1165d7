"""The files `mouchard dashboards build` writes: dashboard JSON per language, and provisioning YAML.

Output is stable: sorted keys, two-space indent, fixed uids and panel ids, one trailing newline; the
same code and configuration always give the same bytes, so the committed files can be checked.

    <out>/en/overview.json ...            one folder per language (copy ONE into Grafana)
    <out>/fr/overview.json ...
    <out>/provisioning/datasources/mouchard.yaml
    <out>/provisioning/dashboards/mouchard.yaml
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gateway.config import Config
from gateway.grafana import BOARDS
from gateway.grafana.board import to_json
from gateway.grafana.language import Lang, Tr
from gateway.grafana.provisioning import datasource_yaml, provider_yaml

DATASOURCE_FILE = Path("provisioning/datasources/mouchard.yaml")
PROVIDER_FILE = Path("provisioning/dashboards/mouchard.yaml")


def dashboards(lang: Lang) -> dict[str, dict[str, Any]]:
    """Every dashboard of one language, by file stem, as Grafana's JSON model."""
    tr = Tr(lang)
    return {name: to_json(build(tr)) for name, build in BOARDS.items()}


def dashboard_text(model: dict[str, Any]) -> str:
    """A dashboard as its committed text."""
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render(cfg: Config, langs: Iterable[Lang] = tuple(Lang)) -> dict[Path, str]:
    """Every file of the output, by path relative to the output folder."""
    files = {DATASOURCE_FILE: datasource_yaml(cfg), PROVIDER_FILE: provider_yaml()}
    for lang in langs:
        for name, model in dashboards(lang).items():
            files[Path(lang.value) / f"{name}.json"] = dashboard_text(model)
    return files


def write(out: Path, files: dict[Path, str]) -> list[Path]:
    """Write the files under `out`; return those whose content changed (created or rewritten)."""
    changed = []
    for relative, text in sorted(files.items()):
        path = out / relative
        data = text.encode("utf-8")
        if path.is_file() and path.read_bytes() == data:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        changed.append(path)
    return changed
