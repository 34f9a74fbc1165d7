"""Atheris harness: the whole Gateway (decode, names, evidence, devices, bins, line protocol) on a
fuzzed capture file. The data loaders are cached so each input gets a fresh Gateway quickly."""

from __future__ import annotations

import functools
import os
import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["gateway", "fuzz"]):
    from fuzz.common import MemorySink
    from gateway.app import Gateway
    from gateway.config import default_config
    from gateway.enrichers.macvendor import MacVendorDB
    from gateway.enrichers.orgs import OrgDB
    from gateway.replay import replay_files
    from gateway.sources.capfile import CaptureError

# Loading the organisation and MAC vendor tables takes 0.4 s; they are read-only, so load them once.
OrgDB.load = functools.cache(OrgDB.load)  # type: ignore[method-assign]
MacVendorDB.load = functools.cache(MacVendorDB.load)  # type: ignore[method-assign]
CONFIG = default_config()
PATH = os.path.join(tempfile.mkdtemp(prefix="mouchard-fuzz-"), "input.cap")


def test_one_input(data: bytes) -> None:
    with open(PATH, "wb") as fh:  # noqa: PTH123 - the hot loop of the harness
        fh.write(data)
    sink = MemorySink()
    gateway = Gateway(CONFIG, sink)
    try:
        replay_files(gateway, [PATH])
    except CaptureError:
        return
    for line in sink.lines:
        assert "\n" not in line
        assert line.split(",", 1)[0] in {"traffic", "dns", "device", "event"}, line


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
