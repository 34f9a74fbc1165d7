#!/usr/bin/python
"""Keep a Mosquitto password file in step with a list of users, without rewriting it needlessly."""

# Ansible modules put their documentation strings before the imports.
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mosquitto_password_file
short_description: Manage a Mosquitto password file idempotently
description:
  - Writes C(user:hash) lines in the format of C(mosquitto_passwd) (PBKDF2-SHA512, C($7$)).
  - A user whose stored hash already matches its password keeps its line, so a second run changes
    nothing (C(mosquitto_passwd) salts anew each time and cannot tell).
  - Existing C($6$) (SHA512) and C($7$) lines are understood.
options:
  path:
    description: The password file.
    type: path
    required: true
  users:
    description: The users and their passwords.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: User name; no C(:) in it.
        type: str
        required: true
      password:
        description: Password.
        type: str
        required: true
  exclusive:
    description: Remove the users that are not listed.
    type: bool
    default: true
  iterations:
    description: PBKDF2 iterations of new hashes (Mosquitto 2.0 uses 101).
    type: int
    default: 101
extends_documentation_fragment:
  - ansible.builtin.files
author: Mouchard contributors
"""

EXAMPLES = r"""
- name: Mosquitto users
  mosquitto_password_file:
    path: /etc/mosquitto/passwd
    users:
      - name: mouchard
        password: "{{ vault_mouchard_mqtt_password }}"
    owner: root
    group: mosquitto
    mode: "0640"
"""

RETURN = r"""
added:
  description: Users added.
  type: list
  elements: str
  returned: always
updated:
  description: Users whose password changed.
  type: list
  elements: str
  returned: always
removed:
  description: Users removed.
  type: list
  elements: str
  returned: always
"""

import base64
import hashlib
import hmac
import os
import tempfile
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

SALT_BYTES = 12  # as mosquitto_passwd
HASH_BYTES = 64  # SHA-512


def make_hash(password: str, iterations: int) -> str:
    salt = os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, HASH_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def matches(stored: str, password: str) -> bool:
    """Whether ``stored`` (a $6$ or $7$ Mosquitto hash) is the hash of ``password``."""
    parts = stored.split("$")
    try:
        if len(parts) == 5 and parts[1] == "7":
            salt, digest = base64.b64decode(parts[3]), base64.b64decode(parts[4])
            mine = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]), len(digest))
        elif len(parts) == 4 and parts[1] == "6":
            salt, digest = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            mine = hashlib.sha512(password.encode() + salt).digest()
        else:
            return False
    except ValueError:
        return False
    return hmac.compare_digest(mine, digest)


def read_lines(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and ":" in line:
            name, stored = line.split(":", 1)
            entries.append((name, stored))
    return entries


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "users": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "name": {"type": "str", "required": True},
                    "password": {"type": "str", "required": True, "no_log": True},
                },
            },
            "exclusive": {"type": "bool", "default": True},
            "iterations": {"type": "int", "default": 101},
        },
        add_file_common_args=True,
        supports_check_mode=True,
    )
    path = Path(module.params["path"])
    wanted = {u["name"]: u["password"] for u in module.params["users"]}
    bad = [name for name in wanted if not name or ":" in name or "\n" in name]
    if bad:
        module.fail_json(msg=f"user names must be non-empty and without ':' or newlines: {bad}")

    old = read_lines(path)
    old_names = [name for name, _ in old]
    added = [name for name in wanted if name not in old_names]
    updated, removed, lines = [], [], []
    for name, stored in old:
        if name in wanted:
            kept = stored
            if not matches(stored, wanted[name]):
                kept = make_hash(wanted[name], module.params["iterations"])
                updated.append(name)
            lines.append(f"{name}:{kept}")
        elif module.params["exclusive"]:
            removed.append(name)
        else:
            lines.append(f"{name}:{stored}")
    lines += [f"{name}:{make_hash(wanted[name], module.params['iterations'])}" for name in added]

    changed = bool(added or updated or removed) or not path.exists()
    diff = {
        "before": "".join(f"{name}\n" for name in old_names),
        "after": "".join(f"{line.split(':', 1)[0]}\n" for line in lines),
        "before_header": f"{path} (users)",
        "after_header": f"{path} (users)",
    }
    if changed and not module.check_mode:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".passwd.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("".join(f"{line}\n" for line in lines))
        module.atomic_move(tmp, str(path))
    file_args = module.load_file_common_arguments(module.params)
    if path.exists():
        changed = module.set_fs_attributes_if_different(file_args, changed)
    module.exit_json(changed=changed, added=added, updated=updated, removed=removed, diff=diff)


if __name__ == "__main__":
    main()
