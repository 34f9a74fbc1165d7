"""The mosquitto role's password-file module against Mosquitto's own `mosquitto_passwd`."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from tests.ansible.playbook import ANSIBLE

MODULE = ANSIBLE / "roles" / "mosquitto" / "library" / "mosquitto_password_file.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mosquitto_password_file", MODULE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(
    shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd: apt-get install mosquitto"
)
def test_hashes_of_mosquitto_passwd_are_recognised(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "alice", "s3cret $x 'y'"], check=True)
    ((_, stored),) = _module().read_lines(passwd)
    assert _module().matches(stored, "s3cret $x 'y'")
    assert not _module().matches(stored, "s3cret")


def test_own_hashes_verify_and_differ_by_salt() -> None:
    module = _module()
    first, second = module.make_hash("pw", 101), module.make_hash("pw", 101)
    assert first != second
    assert first.startswith("$7$101$")
    assert module.matches(first, "pw")
    assert module.matches(second, "pw")
    assert not module.matches(first, "pw2")
    assert not module.matches("$7$garbage", "pw")
