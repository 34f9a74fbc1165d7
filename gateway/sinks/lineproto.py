"""InfluxDB line protocol: escaping, and a sink that writes it to a file or standard output."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import IO

_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": " ", "\r": " ", "\\": "\\\\"})
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "\n": " ", "\r": " "})


def escape_tag(value: str) -> str:
    """Escape a tag key or value (commas, equals signs, spaces; newlines become spaces)."""
    return value.translate(_TAG_ESCAPES)


def escape_measurement(value: str) -> str:
    return value.translate(_MEASUREMENT_ESCAPES)


def field_string(value: str) -> str:
    """A quoted string field value."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def tag_set(tags: dict[str, str]) -> str:
    """``,k=v`` pairs sorted by key (InfluxDB's preferred order); empty values are left out."""
    return "".join(f",{escape_tag(k)}={escape_tag(v)}" for k, v in sorted(tags.items()) if v)


_UNESCAPED_SPACE = re.compile(rb"(?<!\\) ")
_UNESCAPED_COMMA = re.compile(rb"(?<!\\),")


def has_tag(line: bytes, key: str, value: str) -> bool:
    """True when the point ``line`` has the tag ``key=value`` (fields and their text are not read)."""
    series = _UNESCAPED_SPACE.split(line, maxsplit=1)[0]
    wanted = f"{escape_tag(key)}={escape_tag(value)}".encode()
    return wanted in _UNESCAPED_COMMA.split(series)[1:]


class LineFileSink:
    """Writes line protocol to a file, or to standard output for ``-``."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.lines = 0
        self._fh: IO[str] = sys.stdout if target == "-" else Path(target).open("w", encoding="utf-8")  # noqa: SIM115

    def write(self, lines: list[str]) -> None:
        if lines:
            self._fh.write("\n".join(lines))
            self._fh.write("\n")
            self.lines += len(lines)

    def close(self) -> None:
        self._fh.flush()
        if self._fh is not sys.stdout:
            self._fh.close()

    def describe(self) -> str:
        return "standard output" if self.target == "-" else self.target


class MemorySink:
    """Keeps the lines in memory: a whole Gateway without InfluxDB (tests, fuzzing)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, lines: list[str]) -> None:
        self.lines.extend(lines)

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return "memory"
