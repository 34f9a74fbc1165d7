"""`mouchard run`: the live gateway, one process and one asyncio loop.

The capture handle's file descriptor wakes the loop when packets are ready; a one-second tick writes
bins that the clock has completed (an idle lab still gets its points), and every minute the device
inventory and the gateway's own metrics (packets, kernel drops) are written. SIGTERM and SIGINT
flush the open bins and the sinks, then exit; SIGHUP reloads the lab's device labels (``devices:``
of the configuration) and the device profiles (the compiled index); a broken file keeps the running
ones, with one log line.

A stage that fails is restarted after a delay (`Retry`): the capture when its interface goes down or
away (it is re-opened once the interface is back, even re-created), the active mDNS browser when it
cannot start (an interface with no address yet) and whenever the capture had to be re-opened (its
sockets belonged to the old interface). The first failure is logged as a warning, the attempts that
follow at DEBUG, the recovery once.

In router mode (``capture.source: conntrack``) bytes come from the kernel's flow counters: the
conntrack event socket wakes the loop as flows end, the table is dumped about a second before each
bin closes and once more on exit. The capture names (`observe_names`), and counts only what
connection tracking cannot (multicast, broadcast, ICMP errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path

from gateway.app import Gateway
from gateway.config import Config, ConfigError, load_config
from gateway.enrichers.identity import profile_matcher
from gateway.profiles import Matcher, ProfileIndex, ProfileIndexError
from gateway.profiles.index import DEFAULT_INDEX
from gateway.sources.capfile import PacketBatch
from gateway.sources.conntrack import ConntrackError, ConntrackSource, FlowBatch, split_untracked
from gateway.sources.live import CaptureError, CaptureStats, LiveCapture
from gateway.sources.mdns_browser import BrowserError, MdnsBrowser, MdnsSighting, SightingCallback

log = logging.getLogger(__name__)

TICK_S = 1.0
INVENTORY_EVERY_S = 60.0
METRICS_EVERY_S = 10.0
DUMP_BEFORE_BIN_END_S = 1.0  # router mode: read the flow table this long before each bin closes
# Live packets come in order, so a bin need not wait for a merged file's stragglers as in replay:
# it is written once the clock is this far past its end (one interval, and at least these seconds
# for a name that completes just after the bin, a ClientHello over several segments or a QUIC
# Initial), so Grafana shows a bin 10-20 s after it ends instead of 30-40 s.
LIVE_NAME_WAIT_S = 5


def live_hold_s(interval_s: int) -> int:
    """How long the live gateway holds a bin past its end: the rest of the next bin, and a little."""
    return interval_s + LIVE_NAME_WAIT_S


# A capture that failed is tried again this often: short, since every second without it loses counts;
# an attempt costs one ioctl while the interface is down or missing.
CAPTURE_RETRY_S = 2.0
# The active mDNS browser only adds names (passive mDNS from the capture goes on): no hurry.
BROWSER_RETRY_S = 5.0

BrowserFactory = Callable[[SightingCallback], MdnsBrowser]


class Retry:
    """A stage that failed and is tried again every ``delay`` seconds.

    Its first failure is a warning, the failed attempts after it are DEBUG lines, and the recovery
    is one INFO line: a stage that stays broken for days writes one line, not one every attempt.
    """

    __slots__ = ("delay", "failures", "next_at", "what")

    def __init__(self, what: str, delay: float) -> None:
        self.what = what
        self.delay = delay
        self.failures = 0
        self.next_at = 0.0

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def failed(self, exc: BaseException, now: float) -> None:
        self.failures += 1
        self.next_at = now + self.delay
        (log.warning if self.failures == 1 else log.debug)(
            "%s is not running (%s); trying again every %g s", self.what, exc, self.delay
        )

    def succeeded(self) -> None:
        if self.failures:
            log.info("%s is running again", self.what)
        self.failures = 0
        self.next_at = 0.0


class LiveGateway:
    def __init__(
        self,
        cfg: Config,
        gateway: Gateway,
        capture: LiveCapture | None,
        config_path: Path | None,
        flows: ConntrackSource | None = None,
        *,
        open_capture: Callable[[], LiveCapture] | None = None,
        new_browser: BrowserFactory | None = None,
        profile_index: Path = DEFAULT_INDEX,
    ) -> None:
        """``capture`` None: the interface is down, the capture opens when it is up (``open_capture``,
        by default a capture like ``capture``, on ``capture.interface``)."""
        self.cfg = cfg
        self.gateway = gateway
        self.capture = capture
        self.config_path = config_path
        self.flows = flows
        self.profile_index = profile_index
        self.browser: MdnsBrowser | None = None
        self._stopping_browser: asyncio.Task[None] | None = None  # a browser stopped with its capture
        self.stopping = asyncio.Event()
        iface = cfg.capture.interface
        self._open_capture = open_capture or _same_capture(capture, iface)
        self._new_browser = new_browser
        self._capture_retry = Retry(f"capture on {iface}", CAPTURE_RETRY_S)
        self._browser_retry = Retry(f"active mDNS discovery on {iface}", BROWSER_RETRY_S)
        self._stats_base = CaptureStats(0, 0, 0)  # counters of the captures closed so far
        self._last_inventory = 0.0
        self._last_metrics = 0.0
        self._next_dump = 0.0
        self._flow_errors = 0

    # -- the capture ---------------------------------------------------------------------------------

    def _readable(self) -> None:
        capture = self.capture
        if capture is None:
            return
        try:
            while (batch := capture.read()) is not None:
                self._process(batch)
        except CaptureError as exc:
            self._capture_lost(capture, exc)

    def _process(self, batch: PacketBatch) -> None:
        if self.flows is None:
            self.gateway.process(batch)
            return
        # router mode: conntrack counts the flows; the capture names them, and counts only
        # what conntrack does not (multicast, broadcast, ICMP errors)
        counted, names = split_untracked(batch)
        if counted is not None:
            self.gateway.process(counted)
        if names is not None:
            self.gateway.observe_names(names)

    def _capture_lost(self, capture: LiveCapture, exc: CaptureError) -> None:
        """The handle is dead (interface down or deleted): close it, and open a new one later."""
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(capture.fileno())
        self._stats_base += self._stats_of(capture)
        capture.close()
        self.capture = None
        self._capture_retry.failed(exc, time.monotonic())
        browser, self.browser = self.browser, None
        if browser is not None:  # at once: its sockets belong to the interface that went away
            self._browser_retry.next_at = 0.0  # it starts again with the capture
            self._stopping_browser = asyncio.get_running_loop().create_task(browser.stop())

    def _try_capture(self) -> None:
        try:
            capture = self._open_capture()
        except CaptureError as exc:
            self._capture_retry.failed(exc, time.monotonic())
            return
        self.capture = capture
        asyncio.get_running_loop().add_reader(capture.fileno(), self._readable)
        self._capture_retry.succeeded()

    def _capture_stats(self) -> CaptureStats:
        if self.capture is None:
            return self._stats_base
        return self._stats_base + self._stats_of(self.capture)

    @staticmethod
    def _stats_of(capture: LiveCapture) -> CaptureStats:
        try:
            return capture.stats()
        except CaptureError:
            return CaptureStats(0, 0, 0)

    # -- router mode ---------------------------------------------------------------------------------

    def _flows_readable(self) -> None:
        if self.flows is not None:
            self._flow_step(self.flows.read_events)

    def _dump(self, flows: ConntrackSource, final: bool = False) -> None:
        self._flow_step(lambda: flows.dump(final=final))
        self._schedule_dump()

    def _schedule_dump(self) -> None:
        interval = self.cfg.aggregation.interval_s
        self._next_dump = (time.time() // interval + 1) * interval - DUMP_BEFORE_BIN_END_S

    def _flow_step(self, read: Callable[[], FlowBatch | None]) -> None:
        """A conntrack reading into the bins; a failure is logged once and retried next time."""
        try:
            batch = read()
        except ConntrackError as exc:
            self._flow_errors += 1
            (log.error if self._flow_errors == 1 else log.debug)(
                "conntrack reading failed, retrying: %s", exc
            )
            return
        if batch is not None:
            self.gateway.process_flows(batch.ts_ns, batch.flows)

    # -- SIGHUP --------------------------------------------------------------------------------------

    def _reload(self) -> None:
        """Device labels from the configuration file, device profiles from the index; each kept as it
        is when its file is broken (one error line), every other change waits for a restart."""
        labels = self._reload_labels()
        profiles = self._reload_profiles()
        if labels or profiles:
            self.gateway.reload_labels(self.cfg)  # identities are rebuilt on the next write

    def _reload_labels(self) -> bool:
        try:
            new = load_config(self.config_path)
        except (ConfigError, OSError) as exc:  # a reload never stops the gateway
            text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            log.error("configuration not reloaded, the running one stays: %s", text)  # noqa: TRY400
            return False
        if new.model_copy(update={"devices": self.cfg.devices}) != self.cfg:
            log.warning("only device labels are reloaded: restart mouchard for the other changes")
        self.cfg = self.cfg.model_copy(update={"devices": new.devices})
        where = self.config_path or "defaults"
        log.info("device labels reloaded from %s (%d devices labelled)", where, len(new.devices))
        return True

    def _reload_profiles(self) -> bool:
        try:
            matcher = Matcher(ProfileIndex.load(self.profile_index))
        except ProfileIndexError as exc:
            log.error("device profiles not reloaded, the running ones stay: %s", exc)  # noqa: TRY400
            return False
        self.gateway.profiles = profile_matcher(matcher)
        self.gateway.thresholds = matcher.activation_threshold
        log.info("device profiles reloaded from %s (%d profiles)", self.profile_index, len(matcher.index))
        return True

    # -- the loop ------------------------------------------------------------------------------------

    def _periodic(self) -> None:
        now = time.time()
        self.gateway.tick(time.time_ns())
        if self.flows is not None and now >= self._next_dump:
            self._dump(self.flows)
        if now - self._last_metrics >= METRICS_EVERY_S:
            self._metrics()
            self._last_metrics = now
        if now - self._last_inventory >= INVENTORY_EVERY_S:
            self.gateway.update_inventory()
            self._last_inventory = now

    def _metrics(self) -> None:
        st = self._capture_stats()
        extra = {"kernel_received": st.received, "kernel_drops": st.dropped, "if_drops": st.if_dropped}
        if self.flows is not None:
            fs = self.flows.stats
            extra |= {
                "conntrack_events": fs.events,
                "conntrack_events_lost": fs.events_lost,
                "conntrack_entries": fs.dump_entries,
                "conntrack_dump_ms": fs.dump_ms,
                "conntrack_uncounted": fs.uncounted,
                "conntrack_untracked": fs.untracked,
                "conntrack_swept": fs.swept,
            }
        self.gateway.self_metrics(time.time_ns(), extra)

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        loop = asyncio.get_running_loop()
        if self.capture is not None:
            loop.add_reader(self.capture.fileno(), self._readable)
        flows = self.flows
        if flows is not None:
            self._flow_step(flows.start)  # the counters so far are a baseline: nothing is reported
            self._schedule_dump()
            loop.add_reader(flows.fileno(), self._flows_readable)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload)
        await self._supervise()
        if ready is not None:
            ready()
        try:
            while not self.stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), TICK_S)
                self._readable()  # also catch what a busy read left behind
                self._periodic()
                await self._supervise()
        finally:
            if self.capture is not None:
                loop.remove_reader(self.capture.fileno())
                self._readable()
            if flows is not None:
                loop.remove_reader(flows.fileno())
                self._dump(flows, final=True)
            if self._stopping_browser is not None:
                await self._stopping_browser
            await self._stop_browser()
            self._metrics()
            self.gateway.finish()

    async def _supervise(self) -> None:
        """Restart what failed, when its delay is over: the capture first, then the browser on it."""
        now = time.monotonic()
        if self._stopping_browser is not None:
            await self._stopping_browser
            self._stopping_browser = None
        if self.capture is None and self._capture_retry.due(now):
            self._try_capture()
        factory = self._new_browser
        if self.capture is not None and self.browser is None and factory and self._browser_retry.due(now):
            await self._start_browser(factory)

    # -- the active mDNS browser ---------------------------------------------------------------------

    async def _start_browser(self, new_browser: BrowserFactory) -> None:
        """The active browser runs in the same loop; without it, passive mDNS from the capture goes on."""
        browser = new_browser(self.sighting)
        try:
            await browser.start()
        except (BrowserError, OSError) as exc:
            self._browser_retry.failed(exc, time.monotonic())
            return
        self.browser = browser
        self._browser_retry.succeeded()
        log.info("active mDNS discovery on %s: browsing", self.cfg.capture.interface)

    async def _stop_browser(self) -> None:
        browser, self.browser = self.browser, None
        if browser is not None:
            await browser.stop()

    def sighting(self, s: MdnsSighting) -> None:
        """A service instance the browser resolved (or said goodbye to): evidence for its device."""
        if not s.removed:
            self.gateway.evidence.add_sighting(s.addresses, s.service_type, s.instance, s.host, s.properties)


def _same_capture(capture: LiveCapture | None, interface: str) -> Callable[[], LiveCapture]:
    if capture is None:
        return lambda: LiveCapture(interface)
    return lambda: LiveCapture(capture.interface, capture.snaplen, capture.bpf)
