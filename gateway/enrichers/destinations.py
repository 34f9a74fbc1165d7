"""Tags of a destination: for now the remote address itself, and whether it is the lab's own network.

Naming (DNS answers, TLS/QUIC server names, HTTP Host), company, country and party from data files
come in a later stage; until then ``host`` is the IP address and ``name_source`` is ``none``.
"""

from __future__ import annotations

from gateway.enrichers.lan import address_text
from gateway.sinks.lineproto import tag_set

# Distinct remote addresses whose tags are cached; a device scanning the internet must not grow it
# without end (when full, the cache is cleared and rebuilt from what comes next).
MAX_CACHED = 200_000


class DestinationTagger:
    def __init__(self) -> None:
        self._cache: dict[tuple[int, int, bool], str] = {}

    def tags(self, hi: int, lo: int, local: bool) -> dict[str, str]:
        tags = {"host": address_text(hi, lo), "name_source": "none"}
        if local:
            tags["party"] = "local"
        return tags

    def tag_text(self, hi: int, lo: int, local: bool) -> str:
        """The destination part of a line's tag set (``,host=...``), cached."""
        key = (hi, lo, local)
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            found = self._cache[key] = tag_set(self.tags(hi, lo, local))
        return found
