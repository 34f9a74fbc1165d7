"""Tags of a destination: its name, registrable domain, company, countries and party.

A named destination is attributed from the project's data (gateway/data/organisations.yaml), relative
to the device's maker; an unnamed one keeps its address as ``host``. ``country`` is where the server's
address is registered (offline, iptocc). LAN and link-scope destinations are ``party=local``.
"""

from __future__ import annotations

from gateway.enrichers.lan import address_text
from gateway.enrichers.names import SOURCE_NONE, SOURCES, NameTable
from gateway.enrichers.orgs import OrgDB, Party, server_country
from gateway.sinks.lineproto import tag_set

# Distinct destinations whose tags are cached; a device scanning the internet must not grow it
# without end (when full, the cache is cleared and rebuilt from what comes next).
MAX_CACHED = 200_000


class DestinationTagger:
    def __init__(self, names: NameTable, orgs: OrgDB) -> None:
        self.names = names
        self.orgs = orgs
        self._cache: dict[tuple[int, int, bool, int, int, str | None], str] = {}
        self._generation = names.generation

    def tags(
        self, hi: int, lo: int, local: bool, name_id: int, source: int, maker: str | None
    ) -> dict[str, str]:
        address = address_text(hi, lo)
        named = source != SOURCE_NONE and name_id != 0
        host = self.names.names[name_id] if named else address
        tags = {"host": host, "name_source": SOURCES[source] if named else "none"}
        if local:
            tags["party"] = Party.LOCAL
            return tags
        tags["country"] = server_country(address) or ""
        if named:
            attr = self.orgs.attribute(host, maker)
            tags.update(
                domain=attr.domain or "",
                org=attr.org or "",
                org_country=attr.org_country or "",
                party=attr.party,
            )
        else:
            tags["party"] = Party.THIRD  # an unnamed server: nothing shows it works for the maker
        return tags

    def tag_text(self, hi: int, lo: int, local: bool, name_id: int, source: int, maker: str | None) -> str:
        """The destination part of a line's tag set (``,host=...``), cached."""
        if self._generation != self.names.generation:
            self._cache.clear()
            self._generation = self.names.generation
        key = (hi, lo, local, name_id, source, maker)
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            found = self._cache[key] = tag_set(self.tags(hi, lo, local, name_id, source, maker))
        return found
