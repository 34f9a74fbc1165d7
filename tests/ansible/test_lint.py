"""ansible-lint at the production profile, the playbook's syntax, and the shape every role keeps."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ansible.playbook import ANSIBLE, ROOT, environment, tail, tool

pytestmark = pytest.mark.ansible
ROLES = sorted(p.name for p in (ANSIBLE / "roles").iterdir() if p.is_dir())
PHASES = ["preflight", "install", "configure", "service"]


def _load(path: Path) -> object:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_ansible_lint_production_profile() -> None:
    done = subprocess.run(
        [tool("ansible-lint"), "--nocolor", "-c", str(ANSIBLE / ".ansible-lint"), str(ANSIBLE)],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, tail(output)
    assert "Profile 'production' was required, and it passed" in output, tail(output)


def test_playbook_syntax() -> None:
    done = subprocess.run(
        [tool("ansible-playbook"), "--syntax-check", "site.yml"],
        cwd=ANSIBLE,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, tail(done.stdout + done.stderr)


def test_the_five_roles_are_there() -> None:
    assert ROLES == ["access_point", "grafana", "influxdb", "mosquitto", "mouchard"]


@pytest.mark.parametrize("role", ROLES)
def test_main_only_imports_tagged_phases(role: str) -> None:
    tasks = _load(ANSIBLE / "roles" / role / "tasks" / "main.yml")
    assert isinstance(tasks, list)
    phases = []
    for task in tasks:
        assert set(task) == {"name", "ansible.builtin.import_tasks", "tags"}, task
        phase = task["ansible.builtin.import_tasks"].removesuffix(".yml")
        assert task["tags"] == [phase, f"{role}_{phase}"]
        phases.append(phase)
    assert phases[: len(PHASES)] == PHASES


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_documented_in_the_argument_specs(role: str) -> None:
    folder = ANSIBLE / "roles" / role
    defaults = _load(folder / "defaults" / "main.yml")
    specs = _load(folder / "meta" / "argument_specs.yml")
    assert isinstance(defaults, dict)
    assert isinstance(specs, dict)
    options = specs["argument_specs"]["main"]["options"]
    assert sorted(defaults) == sorted(options)
    assert all(opt.get("description") for opt in options.values())


@pytest.mark.parametrize("role", ROLES)
def test_handlers_listen(role: str) -> None:
    handlers = _load(ANSIBLE / "roles" / role / "handlers" / "main.yml")
    assert isinstance(handlers, list)
    assert all("listen" in handler for handler in handlers)


def test_no_collection_is_needed() -> None:
    """Galaxy is out of reach of the build machines: only ansible.builtin modules, and the roles' own."""
    used: set[str] = set()
    for path in (ANSIBLE / "roles").glob("*/*/*.yml"):
        if path.parent.name not in {"tasks", "handlers"}:
            continue
        for task in _load(path) or []:
            for block in [task, *task.get("block", [])]:
                used |= {key for key in block if "." in key and key.count(".") == 2}
    assert used
    assert {name.rsplit(".", 1)[0] for name in used} == {"ansible.builtin"}
