"""Quoting for InfluxQL statements built by the influxdb role: identifiers and string literals."""

from __future__ import annotations

DOCUMENTATION = ""


def influxql_ident(name: str) -> str:
    """``name`` as a double-quoted InfluxQL identifier."""
    return '"' + str(name).replace("\\", "\\\\").replace('"', '\\"') + '"'


def influxql_string(value: str) -> str:
    """``value`` as a single-quoted InfluxQL string literal (passwords)."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


class FilterModule:
    """influxql_ident and influxql_string."""

    def filters(self) -> dict[str, object]:
        return {"influxql_ident": influxql_ident, "influxql_string": influxql_string}
