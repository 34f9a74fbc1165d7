"""Tests of the Ansible deployment (ansible/): lint, syntax, a real converge on this machine, renders."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ansible: runs ansible-playbook against this machine (root; the converge test takes 3-4 minutes)",
    )
