"""Tags of a destination: its name (when one was learned), and whether it is the lab's own network.

Company, country and party from the project's data files are added by the attribution stage.
"""

from __future__ import annotations

from gateway.enrichers.lan import address_text
from gateway.enrichers.names import SOURCE_NONE, SOURCES, NameTable
from gateway.sinks.lineproto import tag_set

# Distinct destinations whose tags are cached; a device scanning the internet must not grow it
# without end (when full, the cache is cleared and rebuilt from what comes next).
MAX_CACHED = 200_000


class DestinationTagger:
    def __init__(self, names: NameTable) -> None:
        self.names = names
        self._cache: dict[tuple[int, int, bool, int, int], str] = {}
        self._generation = names.generation

    def tags(self, hi: int, lo: int, local: bool, name_id: int, source: int) -> dict[str, str]:
        named = source != SOURCE_NONE and name_id != 0
        tags = {
            "host": self.names.names[name_id] if named else address_text(hi, lo),
            "name_source": SOURCES[source] if named else "none",
        }
        if local:
            tags["party"] = "local"
        return tags

    def tag_text(self, hi: int, lo: int, local: bool, name_id: int, source: int) -> str:
        """The destination part of a line's tag set (``,host=...``), cached."""
        if self._generation != self.names.generation:
            self._cache.clear()
            self._generation = self.names.generation
        key = (hi, lo, local, name_id, source)
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            found = self._cache[key] = tag_set(self.tags(hi, lo, local, name_id, source))
        return found
