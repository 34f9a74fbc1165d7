"""Running Ansible from the tests: the tools of the test's virtual environment, on this machine."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
BIN = Path(sys.executable).parent
RECAP = re.compile(r"^localhost\s*:\s*(?P<counts>(?:\w+=\d+\s*)+)$", re.MULTILINE)


def tool(name: str) -> str:
    """Path of an Ansible command installed beside this Python (the project's .venv)."""
    path = BIN / name
    if not path.is_file():
        pytest.fail(
            f"{name} is not installed in {BIN}: run `make venv` "
            "(pyproject's dev extra pins ansible-core<2.20 and ansible-lint)"
        )
    return str(path)


def environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(ANSIBLE / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    env.update(extra)
    return env


@dataclass(frozen=True)
class Run:
    rc: int
    output: str

    @property
    def recap(self) -> dict[str, int]:
        """The PLAY RECAP counts of localhost (ok, changed, failed, ...)."""
        found = RECAP.findall(self.output)
        if not found:
            return {}
        return {k: int(v) for k, v in (pair.split("=") for pair in found[-1].split())}

    def changed_tasks(self) -> list[str]:
        """Names of the tasks that reported a change, for failure messages."""
        names, current = [], ""
        for line in self.output.splitlines():
            if line.startswith(("TASK [", "RUNNING HANDLER [")):
                current = line.split("[", 1)[1].rsplit("]", 1)[0]
            elif line.startswith("changed:"):
                names.append(current)
        return names


def playbook(vars_file: Path, *args: str, timeout: float = 600, env: dict[str, str] | None = None) -> Run:
    """`ansible-playbook site.yml` on this machine (-i localhost, -c local) with the test's variables."""
    cmd = [
        tool("ansible-playbook"),
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"@{vars_file}",
        str(ANSIBLE / "site.yml"),
        *args,
    ]
    done = subprocess.run(
        cmd,
        cwd=ANSIBLE,
        env=env or environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout + done.stderr)


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


def documented_config_keys() -> set[str]:
    """The keys of docs/configuration.md's tables (devices.<mac>.* left out)."""
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    keys = set(re.findall(r"^\| `([a-z_.]+)` \|", text, re.MULTILINE))
    return {key for key in keys if not key.startswith("devices")}


def config_keys(data: dict[str, Any], prefix: str = "") -> set[str]:
    """The dotted keys of a Mouchard configuration; mappings keyed by MAC count as one key."""
    keys: set[str] = set()
    for key, value in data.items():
        if key == "devices" and not prefix:
            continue
        if isinstance(value, dict) and key != "activation_thresholds":
            keys |= config_keys(value, f"{prefix}{key}.")
        else:
            keys.add(f"{prefix}{key}")
    return keys


def config_key_problems(data: dict[str, Any]) -> list[str]:
    """Differences between a templated mouchard.yaml and docs/configuration.md, as messages."""
    keys, documented = config_keys(data), documented_config_keys()
    problems = []
    if documented - keys:
        problems.append(
            "docs/configuration.md documents keys the mouchard role does not template: "
            f"{sorted(documented - keys)}; add them to ansible/roles/mouchard (defaults, "
            "meta/argument_specs.yml, templates/mouchard.yaml.j2)"
        )
    if keys - documented:
        problems.append(
            f"the mouchard role templates keys that are not documented: {sorted(keys - documented)}"
        )
    return problems
