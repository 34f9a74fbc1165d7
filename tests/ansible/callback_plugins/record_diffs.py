"""Ansible callback for the tests: write every task result's --diff to a JSON-lines file.

Enabled by the tests with ANSIBLE_CALLBACKS_ENABLED=record_diffs and ANSIBLE_CALLBACK_PLUGINS pointing
here; the file is MOUCHARD_DIFF_FILE. In check mode this is how a test reads what the templates render.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: record_diffs
type: aggregate
short_description: write task diffs to the file named by MOUCHARD_DIFF_FILE
description: Test helper of Mouchard.
"""


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "record_diffs"
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, result: Any) -> None:
        data = result._result
        diffs = data.get("diff")
        if not diffs:
            return
        args = data.get("invocation", {}).get("module_args", {})
        line = {
            "task": result._task.get_name(),
            # Where the content would go: the diff headers name the source, not the destination.
            "dest": data.get("dest") or args.get("dest") or data.get("path"),
            "diff": diffs if isinstance(diffs, list) else [diffs],
        }
        with open(os.environ["MOUCHARD_DIFF_FILE"], "a", encoding="utf-8") as out:  # noqa: PTH123
            out.write(json.dumps(line, default=str) + "\n")

    def v2_runner_on_ok(self, result: Any) -> None:
        if "results" not in result._result:
            self._record(result)

    def v2_runner_item_on_ok(self, result: Any) -> None:
        self._record(result)
