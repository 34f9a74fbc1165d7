"""Active mDNS / DNS-SD discovery (RFC 6762, RFC 6763) on python-zeroconf's asyncio API.

`MdnsBrowser` asks the LAN for every service type (``_services._dns-sd._udp.local.``) and for
`KNOWN_TYPES` (types IoT devices announce), browses each type it learns of, resolves every instance
(SRV host and port, TXT properties, A/AAAA addresses) and follows updates and goodbyes. Each change
is handed to a callback as a frozen `MdnsSighting`; ``removed=True`` is a goodbye (or an expired
record). Everything the network can grow is bounded (instances, types, TXT bytes, addresses), and a
record that zeroconf or this module cannot make sense of is counted in `BrowserStats`, never raised.

The second half turns sightings into one `MdnsDevice` per device: sightings that share a host name,
an address or a MAC (from the kernel's neighbour table) are one device, identified by its MAC, else
``ip:<address>``. What the device *is* comes from ``identify(evidence)``: by default a small built-in
heuristic over service types and TXT keys (`heuristic_identity`); the declarative device profiles
plug in there with the same signature.

`MdnsBrowser` needs a running event loop; `BrowserThread` runs one for synchronous callers (the live
gateway), and `discover` is the one-shot scan behind ``mouchard discover``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import ifaddr
from zeroconf import BadTypeInNameException, InterfaceChoice, IPVersion, ServiceStateChange, Zeroconf
from zeroconf._utils.name import service_type_name
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from gateway.parsers.mdns import SERVICES_ENUMERATION, clean, txt_properties, unescape_instance

log = logging.getLogger(__name__)

# Service types IoT devices announce, asked for by name from the start: some devices answer a
# direct question faster than the service enumeration, and a few never answer the enumeration.
KNOWN_TYPES = tuple(
    f"{short}.local."
    for short in (
        "_googlecast._tcp", "_airplay._tcp", "_raop._tcp", "_homekit._tcp", "_hap._tcp", "_hap._udp",
        "_sonos._tcp", "_spotify-connect._tcp", "_amzn-wplay._tcp", "_amzn-alexa._tcp", "_ipp._tcp",
        "_ipps._tcp", "_printer._tcp", "_pdl-datastream._tcp", "_scanner._tcp", "_uscan._tcp",
        "_hue._tcp", "_matter._tcp", "_matterc._udp", "_meshcop._udp", "_trel._udp",
        "_esphomelib._tcp", "_home-assistant._tcp", "_companion-link._tcp", "_device-info._tcp",
        "_androidtvremote2._tcp", "_androidtvremote._tcp", "_roku-rcp._tcp", "_viziocast._tcp",
        "_shelly._tcp", "_elg._tcp", "_nanoleafapi._tcp", "_miio._udp", "_axis-video._tcp",
        "_workstation._tcp", "_smb._tcp", "_ssh._tcp", "_http._tcp",
    )
)  # fmt: skip

# A lab has tens of devices with up to ~10 services each; 1024 instances leaves a wide margin while
# a flood of fake announcements costs at most a few MB. New instances beyond it are dropped.
MAX_INSTANCES = 1024
# Distinct service types browsed (each is one more browser and query schedule). Real networks show
# a few tens; further types announced in the enumeration are ignored.
MAX_TYPES = 256
# Resolutions in flight at once; the others wait. Each is a query and a wait of RESOLVE_TIMEOUT_MS.
MAX_RESOLVING = 32
RESOLVE_TIMEOUT_MS = 3000
# TXT bytes kept per instance: RFC 6763 section 6.2 advises under 1300 and real devices send at most
# ~700 (AirPlay). The parser also keeps at most 64 keys of at most 255 bytes each.
MAX_TXT_BYTES = 2048
# Addresses kept per instance: a host has one IPv4 and a few IPv6 addresses; more is noise.
MAX_ADDRESSES = 16
# Host and instance names: a DNS name is at most 255 bytes (RFC 1035); longer text is cut.
MAX_NAME = 255
# Messages logged at WARNING once each, then at DEBUG (python-zeroconf's QuietLogger idea).
MAX_WARNED = 256


class BrowserError(Exception):
    """The browser cannot start: an unknown interface, or no socket could be opened."""


@dataclass(frozen=True, slots=True)
class MdnsSighting:
    """One service instance as last resolved, or its goodbye (``removed``)."""

    name: str  # full instance name, "Kitchen._googlecast._tcp.local."
    instance: str  # "Kitchen", DNS-SD escapes decoded, control characters replaced
    service_type: str  # "_googlecast._tcp.local."
    host: str  # SRV target, "Google-Home-Mini-1a2b.local."; "" when unresolved
    addresses: tuple[str, ...]  # IPv4 first, then IPv6, without scope
    port: int  # 0 when unresolved
    # TXT keys lowercased, first occurrence wins. Left out of the hash: a dict has none.
    properties: dict[str, str] = field(hash=False)
    first_seen: float  # Unix time
    last_seen: float
    removed: bool = False


@dataclass(slots=True)
class BrowserStats:
    resolved: int = 0  # resolutions that got SRV, TXT and at least one address
    unresolved: int = 0  # resolutions that timed out (the partial record is still emitted)
    malformed: int = 0  # names or records that could not be used
    dropped_instances: int = 0  # new instances refused because MAX_INSTANCES were tracked
    dropped_types: int = 0  # service types not browsed because MAX_TYPES were browsed
    removed: int = 0  # goodbyes and expiries


SightingCallback = Callable[[MdnsSighting], None]
_Key = tuple[str, str]  # (instance name, service type), lowercased


class MdnsBrowser:
    """Browse and resolve mDNS services; ``on_sighting`` gets every addition, update and removal.

    ``interfaces`` holds interface names (``eth0``) or addresses (IPv4 or IPv6); empty means every
    interface, IPv4 and IPv6. ``on_sighting`` runs in the event loop: it must not block.
    """

    def __init__(
        self,
        on_sighting: SightingCallback | None = None,
        *,
        interfaces: Sequence[str] = (),
        types: Sequence[str] = KNOWN_TYPES,
        max_instances: int = MAX_INSTANCES,
        resolve_timeout_ms: int = RESOLVE_TIMEOUT_MS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.stats = BrowserStats()
        self._on_sighting = on_sighting
        self._interfaces = tuple(interfaces)
        self._types = tuple(dict.fromkeys(t.lower() for t in types))
        self._max_instances = max_instances
        self._timeout_ms = resolve_timeout_ms
        self._clock = clock
        self._zc: AsyncZeroconf | None = None
        self._browsers: list[AsyncServiceBrowser] = []
        self._browsed: set[str] = set()
        self._live: dict[_Key, MdnsSighting] = {}
        self._wanted: set[_Key] = set()  # announced and not said goodbye to
        self._pending: dict[_Key, asyncio.Task[None]] = {}
        self._again: set[_Key] = set()  # changed while being resolved: resolve once more
        self._slots = asyncio.Semaphore(MAX_RESOLVING)
        self._warned: set[str] = set()

    async def __aenter__(self) -> MdnsBrowser:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Open the sockets and start browsing; `BrowserError` when that is impossible."""
        if self._zc is not None:
            return
        choice, version = zeroconf_interfaces(self._interfaces)
        try:
            self._zc = AsyncZeroconf(interfaces=choice, ip_version=version)
        except (OSError, RuntimeError, ValueError) as exc:
            where = ", ".join(self._interfaces) or "all interfaces"
            raise BrowserError(f"cannot listen for mDNS on {where}: {exc}") from exc
        self._browse([SERVICES_ENUMERATION, *self._types])

    async def stop(self) -> None:
        """Stop browsing, cancel resolutions and close the sockets. Safe to call twice."""
        zc, self._zc = self._zc, None
        if zc is None:
            return
        for task in list(self._pending.values()):
            task.cancel()
        await asyncio.gather(*self._pending.values(), return_exceptions=True)
        for browser in self._browsers:
            await browser.async_cancel()
        self._browsers.clear()
        await zc.async_close()

    def sightings(self) -> list[MdnsSighting]:
        """The instances currently announced, in order of first resolution."""
        return list(self._live.values())

    @property
    def types(self) -> list[str]:
        """Service types browsed, known and learnt."""
        return sorted(self._browsed)

    def _browse(self, types: Sequence[str]) -> None:
        fresh = [t for t in types if t not in self._browsed]
        if not fresh or self._zc is None:
            return
        self._browsed.update(fresh)
        browser = AsyncServiceBrowser(self._zc.zeroconf, fresh, handlers=[self._on_change])
        self._browsers.append(browser)

    # zeroconf calls handlers with these keyword names.
    def _on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        try:
            if service_type == SERVICES_ENUMERATION:
                self._learn_type(name)
            elif state_change is ServiceStateChange.Removed:
                self._remove(service_type, name)
            else:
                self._want(service_type, name)
        except Exception:  # a bug here must not stop zeroconf's record processing
            self.stats.malformed += 1
            self._quiet_warning("handler", "mDNS change not handled: %r %r", service_type, name)

    def _learn_type(self, name: str) -> None:
        service_type = name.lower()
        if service_type in self._browsed or self._zc is None:
            return
        if not valid_service_type(service_type):
            self.stats.malformed += 1
            self._quiet_warning(service_type, "ignoring malformed service type %r", name)
            return
        if len(self._browsed) >= MAX_TYPES:
            self.stats.dropped_types += 1
            self._quiet_warning("types", "more than %d service types; %r not browsed", MAX_TYPES, name)
            return
        self._browse([service_type])

    def _want(self, service_type: str, name: str) -> None:
        key = (name.lower(), service_type.lower())
        if key not in self._wanted and len(self._wanted) >= self._max_instances:
            self.stats.dropped_instances += 1
            self._quiet_warning("instances", "over %d mDNS instances; %r ignored", self._max_instances, name)
            return
        self._wanted.add(key)
        if key in self._pending:
            self._again.add(key)
            return
        task = asyncio.get_running_loop().create_task(self._resolve(key, service_type, name))
        self._pending[key] = task

    def _remove(self, service_type: str, name: str) -> None:
        key = (name.lower(), service_type.lower())
        self._wanted.discard(key)
        self._again.discard(key)
        last = self._live.pop(key, None)
        if last is None:
            return
        self.stats.removed += 1
        self._emit(replace(last, last_seen=self._clock(), removed=True))

    async def _resolve(self, key: _Key, service_type: str, name: str) -> None:
        try:
            while True:
                self._again.discard(key)
                async with self._slots:
                    sighting = await self._resolve_once(key, service_type, name)
                if sighting is not None and key in self._wanted:
                    self._live[key] = sighting
                    self._emit(sighting)
                if key not in self._again:
                    return
        finally:
            self._pending.pop(key, None)

    async def _resolve_once(self, key: _Key, service_type: str, name: str) -> MdnsSighting | None:
        zc = self._zc
        if zc is None or key not in self._wanted:
            return None
        try:
            info = AsyncServiceInfo(service_type, name)
            complete = await info.async_request(zc.zeroconf, self._timeout_ms)
            sighting = self._sighting(key, info, service_type, name)
        except (BadTypeInNameException, ValueError, UnicodeError):
            self.stats.malformed += 1
            self._quiet_warning(f"name:{name[:64]}", "malformed mDNS instance %r", name)
            return None
        if complete and sighting.addresses:
            self.stats.resolved += 1
        else:
            self.stats.unresolved += 1
        return sighting

    def _sighting(self, key: _Key, info: AsyncServiceInfo, service_type: str, name: str) -> MdnsSighting:
        now = self._clock()
        previous = self._live.get(key)
        return MdnsSighting(
            name=_cut(clean(name)),
            instance=instance_label(name, service_type),
            service_type=clean(service_type.lower()),
            host=_cut(clean(info.server or "")),
            addresses=_sorted_addresses(info.parsed_addresses())[:MAX_ADDRESSES],
            port=info.port or 0,
            properties=txt_properties((info.text or b"")[:MAX_TXT_BYTES]),
            first_seen=previous.first_seen if previous else now,
            last_seen=now,
        )

    def _emit(self, sighting: MdnsSighting) -> None:
        if self._on_sighting is None:
            return
        try:
            self._on_sighting(sighting)
        except Exception:
            self._quiet_warning("callback", "mDNS sighting callback failed")

    def _quiet_warning(self, key: str, message: str, *args: object) -> None:
        """WARNING the first time for ``key``, DEBUG afterwards; the traceback only at DEBUG."""
        trace = sys.exc_info()[1] is not None and log.isEnabledFor(logging.DEBUG)
        if key in self._warned or len(self._warned) >= MAX_WARNED:
            log.debug(message, *args, exc_info=trace)
            return
        self._warned.add(key)
        log.warning(message, *args, exc_info=trace)


def _cut(text: str) -> str:
    return text[:MAX_NAME]


def _sorted_addresses(addresses: Iterable[str]) -> tuple[str, ...]:
    unique = dict.fromkeys(a.split("%", 1)[0] for a in addresses)
    return tuple(sorted(unique, key=lambda a: (":" in a, a)))


def valid_service_type(name: str) -> bool:
    """``_sn._tcp.local.`` or ``_sn._udp.local.`` (RFC 6763 section 7), as zeroconf checks it."""
    try:
        return service_type_name(name, strict=False) == name and name.count(".") == 3
    except BadTypeInNameException:
        return False


def instance_label(name: str, service_type: str) -> str:
    """``"Kitchen\\032Speaker._googlecast._tcp.local."`` -> ``"Kitchen Speaker"``."""
    suffix = "." + service_type
    label = name[: -len(suffix)] if name.lower().endswith(suffix.lower()) else name
    return _cut(clean(unescape_instance(label)))


def zeroconf_interfaces(choices: Sequence[str]) -> tuple[InterfaceChoice | list[str | int], IPVersion | None]:
    """What zeroconf wants for ``choices``: IPv4 addresses and IPv6 interface indexes.

    An empty ``choices`` is every interface, IPv4 and IPv6. A name stands for its IPv4 addresses
    and, when it has an IPv6 address, its index. `BrowserError` names an unknown interface.
    """
    if not choices:
        return InterfaceChoice.All, IPVersion.All
    adapters = {a.name: a for a in ifaddr.get_adapters()}
    result: list[str | int] = []
    for choice in choices:
        result.extend(_interface_addresses(choice, adapters))
    return list(dict.fromkeys(result)), None


def _interface_addresses(choice: str, adapters: Mapping[str, ifaddr.Adapter]) -> list[str | int]:
    with contextlib.suppress(ValueError):
        address = ipaddress.ip_address(choice.split("%", 1)[0])
        return [str(address)] if address.version == 4 else [_v6_index(choice, adapters)]
    adapter = adapters.get(choice)
    if adapter is None:
        known = ", ".join(sorted(adapters)) or "none"
        raise BrowserError(f"no network interface {choice!r} (interfaces here: {known})")
    found: list[str | int] = [ip.ip for ip in adapter.ips if isinstance(ip.ip, str)]
    if adapter.index is not None and any(isinstance(ip.ip, tuple) for ip in adapter.ips):
        found.append(adapter.index)
    if not found:
        raise BrowserError(f"interface {choice!r} has no IP address: give it one, or choose another")
    return found


def _v6_index(choice: str, adapters: Mapping[str, ifaddr.Adapter]) -> int:
    address = ipaddress.ip_address(choice.split("%", 1)[0])
    for adapter in adapters.values():
        for ip in adapter.ips:
            same = isinstance(ip.ip, tuple) and ipaddress.ip_address(ip.ip[0]) == address
            if same and adapter.index is not None:
                return int(adapter.index)
    raise BrowserError(f"no interface has the address {choice}")


async def discover(
    duration: float,
    *,
    interfaces: Sequence[str] = (),
    on_sighting: SightingCallback | None = None,
    tick: Callable[[MdnsBrowser], None] | None = None,
) -> list[MdnsSighting]:
    """Browse for ``duration`` seconds and return the instances announced at the end.

    ``tick`` is called about ten times a second (for a progress display).
    """
    async with MdnsBrowser(on_sighting, interfaces=interfaces) as browser:
        deadline = time.monotonic() + duration
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(0.1, left))
            if tick is not None:
                tick(browser)
        return browser.sightings()


class BrowserThread:
    """An `MdnsBrowser` in a thread of its own with its own event loop, for synchronous callers.

    The browser's callback runs in that thread: hand sightings over with a thread-safe queue.
    """

    def __init__(self, browser: MdnsBrowser) -> None:
        self.browser = browser
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mdns-browser", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        """Start the thread and the browser; raises what `MdnsBrowser.start` raises."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.browser.start(), self._loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if not self._thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self.browser.stop(), self._loop).result(timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._loop.close()

    def sightings(self) -> list[MdnsSighting]:
        """The instances currently announced (a copy taken in the browser's thread)."""
        future = asyncio.run_coroutine_threadsafe(_call(self.browser.sightings), self._loop)
        return future.result(10.0)


async def _call(function: Callable[[], list[MdnsSighting]]) -> list[MdnsSighting]:
    return function()


# --- Devices: sightings grouped by host, address and MAC ------------------------------------------

KINDS = (
    "voice_assistant", "speaker", "tv", "streaming_player", "camera", "doorbell", "plug", "light",
    "hub", "sensor", "thermostat", "appliance", "printer", "phone", "computer", "network", "unknown",
)  # fmt: skip


class Identity(NamedTuple):
    kind: str  # one of KINDS
    vendor: str | None
    model: str | None


@dataclass(frozen=True, slots=True)
class DeviceEvidence:
    """What is known of one device, for ``identify``."""

    sightings: tuple[MdnsSighting, ...]  # its live service instances
    mac: str | None  # lowercase aa:bb:cc:dd:ee:ff, from the neighbour table
    mac_vendor: str | None  # from the IEEE registry, when a lookup was given

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.service_type for s in self.sightings))

    def properties(self) -> dict[str, str]:
        """TXT properties of all instances merged, the first instance's value winning."""
        merged: dict[str, str] = {}
        for sighting in self.sightings:
            for key, value in sighting.properties.items():
                merged.setdefault(key, value)
        return merged


# The seam for device profiles: evidence -> (kind, vendor, model), or None when nothing matches.
Identify = Callable[[DeviceEvidence], tuple[str, str | None, str | None] | None]


@dataclass(frozen=True, slots=True)
class MdnsDevice:
    id: str  # the MAC when known, else "ip:<address>"
    name: str
    kind: str
    vendor: str | None
    model: str | None
    ip: str  # IPv4 when there is one
    mac: str | None
    addresses: tuple[str, ...]
    hosts: tuple[str, ...]  # SRV targets without the root dot, "Sonos-542A1BC9220E.local"
    services: tuple[str, ...]  # short service types, "_sonos._tcp"
    first_seen: float
    last_seen: float

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "vendor": self.vendor,
            "model": self.model,
            "ip": self.ip,
            "mac": self.mac,
            "addresses": list(self.addresses),
            "hosts": list(self.hosts),
            "services": list(self.services),
            "first_seen": round(self.first_seen, 3),
            "last_seen": round(self.last_seen, 3),
        }


def short_type(service_type: str) -> str:
    """``"_sonos._tcp.local."`` -> ``"_sonos._tcp"``."""
    return service_type.removesuffix(".").removesuffix(".local")


def devices_from_sightings(
    sightings: Iterable[MdnsSighting],
    *,
    identify: Identify | None = None,
    neighbours: Mapping[str, str] | None = None,
    mac_vendor: Callable[[str], str | None] | None = None,
) -> list[MdnsDevice]:
    """One device per group of live sightings sharing a host name, an address or a MAC.

    Sightings without any address cannot be told apart or keyed, and are left out.
    """
    table = dict(neighbours or {})
    live = [s for s in sightings if not s.removed and s.addresses]
    devices = []
    for group in _groups(live, table):
        mac = _mac_of(group, table)
        vendor = mac_vendor(mac) if mac and mac_vendor else None
        evidence = DeviceEvidence(tuple(group), mac, vendor)
        devices.append(_device(evidence, identify or heuristic_identity))
    return sorted(devices, key=lambda d: (d.name.lower(), d.id))


def _groups(sightings: Sequence[MdnsSighting], neighbours: Mapping[str, str]) -> list[list[MdnsSighting]]:
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for index, sighting in enumerate(sightings):
        for key in _link_keys(sighting, neighbours):
            parent[root(key)] = root(f"#{index}")
    grouped: dict[str, list[MdnsSighting]] = {}
    for index, sighting in enumerate(sightings):
        grouped.setdefault(root(f"#{index}"), []).append(sighting)
    return list(grouped.values())


def _link_keys(sighting: MdnsSighting, neighbours: Mapping[str, str]) -> list[str]:
    keys = [f"addr:{a}" for a in sighting.addresses]
    keys += [f"mac:{neighbours[a]}" for a in sighting.addresses if a in neighbours]
    if sighting.host:
        keys.append(f"host:{sighting.host.lower()}")
    return keys


def _mac_of(group: Sequence[MdnsSighting], neighbours: Mapping[str, str]) -> str | None:
    for address in _addresses(group):
        if address in neighbours:
            return neighbours[address]
    return None


def _addresses(group: Sequence[MdnsSighting]) -> tuple[str, ...]:
    return _sorted_addresses(a for s in group for a in s.addresses)


def _device(evidence: DeviceEvidence, identify: Identify) -> MdnsDevice:
    group = evidence.sightings
    addresses = _addresses(group)
    found = _safe_identify(identify, evidence)
    kind, vendor, model = found if found is not None else ("unknown", None, None)
    return MdnsDevice(
        id=evidence.mac or f"ip:{addresses[0]}",
        name=friendly_name(group),
        kind=kind if kind in KINDS else "unknown",
        vendor=vendor or evidence.mac_vendor,
        model=model,
        ip=addresses[0],
        mac=evidence.mac,
        addresses=addresses,
        hosts=tuple(dict.fromkeys(s.host.removesuffix(".") for s in group if s.host)),
        services=tuple(sorted({short_type(s.service_type) for s in group})),
        first_seen=min(s.first_seen for s in group),
        last_seen=max(s.last_seen for s in group),
    )


def _safe_identify(identify: Identify, evidence: DeviceEvidence) -> Identity | None:
    try:
        found = identify(evidence)
    except Exception:  # a broken profile must not hide the device
        log.warning("device identification failed for %s", evidence.services, exc_info=True)
        return None
    return Identity(*found) if found is not None else None


# Instance names of some services carry a hardware id before "@": "AABBCCDDEEFF@Living Room" (RAOP).
_AT_PREFIX = re.compile(r"^[0-9A-Fa-f]{6,}@|^RINCON_[0-9A-Fa-f]+@")
# Services whose instance name is least likely to be the name the owner gave.
_WEAK_NAMES = frozenset({"_raop._tcp", "_sonos._tcp", "_companion-link._tcp", "_device-info._tcp"})


def friendly_name(group: Sequence[MdnsSighting]) -> str:
    """The owner's name: TXT ``fn`` (Google Cast), else the best instance name, else the host."""
    for sighting in group:
        if sighting.properties.get("fn", "").strip():
            return sighting.properties["fn"].strip()
    ranked = sorted(group, key=lambda s: short_type(s.service_type) in _WEAK_NAMES)
    for sighting in ranked:
        name = _AT_PREFIX.sub("", sighting.instance).strip()
        if name:
            return name
    hosts = [s.host for s in group if s.host]
    return hosts[0].removesuffix(".").removesuffix(".local") if hosts else group[0].name


# --- The built-in identification heuristic ---------------------------------------------------------

# Short service type -> (kind, vendor) when nothing more specific is known; the most telling first.
SERVICE_HINTS: dict[str, tuple[str, str | None]] = {
    "_sonos._tcp": ("speaker", "Sonos"),
    "_amzn-alexa._tcp": ("voice_assistant", "Amazon"),
    "_amzn-wplay._tcp": ("streaming_player", "Amazon"),
    "_roku-rcp._tcp": ("streaming_player", "Roku"),
    "_hue._tcp": ("hub", "Philips Hue"),
    "_home-assistant._tcp": ("hub", "Home Assistant"),
    "_esphomelib._tcp": ("unknown", "ESPHome"),
    "_shelly._tcp": ("plug", "Shelly"),
    "_nanoleafapi._tcp": ("light", "Nanoleaf"),
    "_elg._tcp": ("light", "Elgato"),
    "_axis-video._tcp": ("camera", "Axis"),
    "_ipp._tcp": ("printer", None),
    "_ipps._tcp": ("printer", None),
    "_printer._tcp": ("printer", None),
    "_pdl-datastream._tcp": ("printer", None),
    "_uscan._tcp": ("printer", None),
    "_scanner._tcp": ("printer", None),
    "_googlecast._tcp": ("streaming_player", None),
    "_androidtvremote2._tcp": ("tv", None),
    "_androidtvremote._tcp": ("tv", None),
    "_viziocast._tcp": ("tv", "Vizio"),
    "_meshcop._udp": ("network", None),
    "_airplay._tcp": ("speaker", None),
    "_raop._tcp": ("speaker", None),
    "_spotify-connect._tcp": ("speaker", None),
    "_hap._tcp": ("unknown", None),
    "_hap._udp": ("unknown", None),
    "_matter._tcp": ("unknown", None),
    "_matterc._udp": ("unknown", None),
    "_workstation._tcp": ("computer", None),
}
# TXT keys that name the model / the maker, in order of trust.
MODEL_KEYS = ("md", "model", "am", "rpmd", "usb_mdl", "ty", "mn", "product")
VENDOR_KEYS = ("manufacturer", "usb_mfg", "vn", "mfg")
# Apple model identifiers (AirPlay "model", RAOP "am", companion-link "rpMd", "AudioAccessory5,1")
# -> kind, model family. Matched with the "<major>,<minor>" numbers that follow, first match wins.
APPLE_MODELS: tuple[tuple[str, str, str], ...] = (
    ("AudioAccessory5", "voice_assistant", "HomePod mini"),
    ("AudioAccessory", "voice_assistant", "HomePod"),
    ("AppleTV", "streaming_player", "Apple TV"),
    ("iPhone", "phone", "iPhone"),
    ("iPad", "phone", "iPad"),
    ("iPod", "phone", "iPod"),
    ("AirPort", "network", "AirPort"),
    ("MacBook(?:Air|Pro)?", "computer", "MacBook"),
    ("Macmini", "computer", "Mac mini"),
    ("iMac(?:Pro)?", "computer", "iMac"),
    ("MacPro", "computer", "Mac Pro"),
    ("Mac", "computer", "Mac"),
)
_APPLE_CODES = tuple((re.compile(rf"{prefix}\d*,\d+"), kind, family) for prefix, kind, family in APPLE_MODELS)
# Google Cast "md" (model name) patterns -> kind; the vendor is Google when one matches.
GOOGLE_CAST_MODELS = (
    (re.compile(r"google home|nest (mini|audio|hub|wifi point)|google nest", re.I), "voice_assistant"),
    (re.compile(r"chromecast|google tv", re.I), "streaming_player"),
)
# HomeKit accessory category (TXT "ci", HAP specification section 13) -> kind.
HOMEKIT_CATEGORIES = {
    "2": "hub", "3": "appliance", "4": "appliance", "5": "light", "7": "plug", "8": "plug",
    "9": "thermostat", "10": "sensor", "11": "sensor", "12": "sensor", "17": "camera",
    "18": "doorbell", "19": "appliance", "20": "hub", "21": "hub", "26": "speaker", "31": "tv",
    "32": "tv", "33": "streaming_player", "34": "streaming_player", "35": "hub",
}  # fmt: skip


def heuristic_identity(evidence: DeviceEvidence) -> Identity | None:
    """Kind, vendor and model from service types and TXT keys; ``None`` when nothing is telling."""
    services = {short_type(s) for s in evidence.services}
    props = evidence.properties()
    model = _first(props, MODEL_KEYS)
    vendor = _first(props, VENDOR_KEYS)
    for refine in (_apple, _google_cast, _homekit):
        found = refine(services, props, model)
        if found is not None:
            return Identity(found.kind, vendor or found.vendor, found.model)
    hint = next((SERVICE_HINTS[s] for s in SERVICE_HINTS if s in services), None)
    if hint is None:
        return None
    return Identity(hint[0], vendor or hint[1] or _printer_vendor(services, props), model)


def _first(props: Mapping[str, str], keys: Sequence[str]) -> str | None:
    return next((props[k].strip() for k in keys if props.get(k, "").strip()), None)


def _apple(services: set[str], props: Mapping[str, str], model: str | None) -> Identity | None:
    for pattern, kind, family in _APPLE_CODES:
        if model and pattern.fullmatch(model):
            return Identity(kind, "Apple", family)
    return None


def _google_cast(services: set[str], props: Mapping[str, str], model: str | None) -> Identity | None:
    if "_googlecast._tcp" not in services or not model:
        return None
    for pattern, kind in GOOGLE_CAST_MODELS:
        if pattern.search(model):
            return Identity(kind, "Google", model)
    return None


def _homekit(services: set[str], props: Mapping[str, str], model: str | None) -> Identity | None:
    if not services & {"_hap._tcp", "_hap._udp"} or services & {"_sonos._tcp", "_googlecast._tcp"}:
        return None
    kind = HOMEKIT_CATEGORIES.get(props.get("ci", "").strip())
    return Identity(kind, None, model) if kind else None


def _printer_vendor(services: set[str], props: Mapping[str, str]) -> str | None:
    """IPP's ``ty`` ("HP LaserJet Pro M404") starts with the maker."""
    if not services & {"_ipp._tcp", "_ipps._tcp", "_printer._tcp", "_pdl-datastream._tcp"}:
        return None
    words = props.get("ty", "").split()
    return words[0] if words else None


# --- The kernel's neighbour table: address -> MAC -------------------------------------------------

_USABLE_STATES = frozenset({"REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT", "NOARP"})
PROC_ARP = Path("/proc/net/arp")


def read_neighbours() -> dict[str, str]:
    """Address -> MAC from ``ip -j neigh`` (IPv4 and IPv6), else ``/proc/net/arp`` (IPv4)."""
    try:
        done = subprocess.run(
            ["ip", "-j", "neigh", "show"], capture_output=True, text=True, timeout=5, check=True
        )
        return parse_ip_neigh(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        log.debug("ip -j neigh failed; reading %s", PROC_ARP, exc_info=True)
    try:
        return parse_proc_arp(PROC_ARP.read_text(encoding="ascii", errors="replace"))
    except OSError:
        return {}


def parse_ip_neigh(text: str) -> dict[str, str]:
    """``ip -j neigh show`` output; entries without a usable MAC are skipped."""
    table: dict[str, str] = {}
    entries = json.loads(text or "[]")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        states = entry.get("state") or []
        mac = _unicast_mac(entry.get("lladdr"))
        address = entry.get("dst")
        if mac and isinstance(address, str) and _USABLE_STATES.intersection(states):
            table[address.split("%", 1)[0]] = mac
    return table


def parse_proc_arp(text: str) -> dict[str, str]:
    """``/proc/net/arp``: ``IP address  HW type  Flags  HW address  Mask  Device``; flag 0x2 is complete."""
    table: dict[str, str] = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or not fields[2].startswith("0x"):
            continue
        mac = _unicast_mac(fields[3])
        if mac and int(fields[2], 16) & 0x2:
            table[fields[0]] = mac
    return table


_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")


def _unicast_mac(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    mac = value.lower()
    if not _MAC.fullmatch(mac) or mac == "00:00:00:00:00:00" or int(mac[:2], 16) & 1:
        return None
    return mac
