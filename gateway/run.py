"""`mouchard run`: the live gateway, one process and one asyncio loop.

The capture handle's file descriptor wakes the loop when packets are ready; a one-second tick writes
bins that the clock has completed (an idle lab still gets its points), and every minute the device
inventory and the gateway's own metrics (packets, kernel drops) are written. SIGTERM and SIGINT
flush the open bins and the sinks, then exit; SIGHUP reloads the lab's device labels.

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
from gateway.config import Config, load_config
from gateway.sources.conntrack import ConntrackError, ConntrackSource, FlowBatch, split_untracked
from gateway.sources.live import LiveCapture
from gateway.sources.mdns_browser import BrowserError, MdnsBrowser, MdnsSighting

log = logging.getLogger(__name__)

TICK_S = 1.0
INVENTORY_EVERY_S = 60.0
METRICS_EVERY_S = 10.0
DUMP_BEFORE_BIN_END_S = 1.0  # router mode: read the flow table this long before each bin closes


class LiveGateway:
    def __init__(
        self,
        cfg: Config,
        gateway: Gateway,
        capture: LiveCapture,
        config_path: Path | None,
        flows: ConntrackSource | None = None,
        browser: MdnsBrowser | None = None,
    ) -> None:
        self.browser = browser
        self.cfg = cfg
        self.gateway = gateway
        self.capture = capture
        self.config_path = config_path
        self.flows = flows
        self.stopping = asyncio.Event()
        self._last_inventory = 0.0
        self._last_metrics = 0.0
        self._next_dump = 0.0
        self._flow_errors = 0

    def _readable(self) -> None:
        while (batch := self.capture.read()) is not None:
            if self.flows is None:
                self.gateway.process(batch)
                continue
            # router mode: conntrack counts the flows; the capture names them, and counts only
            # what conntrack does not (multicast, broadcast, ICMP errors)
            counted, names = split_untracked(batch)
            if counted is not None:
                self.gateway.process(counted)
            if names is not None:
                self.gateway.observe_names(names)

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

    def _reload(self) -> None:
        try:
            self.cfg = load_config(self.config_path)
        except Exception as exc:
            log.error("configuration not reloaded, the running one stays: %s", exc)  # noqa: TRY400
            return
        self.gateway.reload_labels(self.cfg)
        log.info("device labels reloaded from %s", self.config_path or "defaults")

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
        st = self.capture.stats()
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
        loop.add_reader(self.capture.fileno(), self._readable)
        flows = self.flows
        if flows is not None:
            self._flow_step(flows.start)  # the counters so far are a baseline: nothing is reported
            self._schedule_dump()
            loop.add_reader(flows.fileno(), self._flows_readable)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload)
        await self._start_browser()
        if ready is not None:
            ready()
        try:
            while not self.stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), TICK_S)
                self._readable()  # also catch what a busy read left behind
                self._periodic()
        finally:
            loop.remove_reader(self.capture.fileno())
            self._readable()
            if flows is not None:
                loop.remove_reader(flows.fileno())
                self._dump(flows, final=True)
            if self.browser is not None:
                await self.browser.stop()
            self._metrics()
            self.gateway.finish()

    async def _start_browser(self) -> None:
        """The active mDNS browser runs in the same loop; without it, passive mDNS still works."""
        if self.browser is None:
            return
        try:
            await self.browser.start()
        except (BrowserError, OSError) as exc:
            log.warning("active mDNS discovery is off (%s); passive mDNS from the capture goes on", exc)
            self.browser = None

    def sighting(self, s: MdnsSighting) -> None:
        """A service instance the browser resolved (or said goodbye to): evidence for its device."""
        if not s.removed:
            self.gateway.evidence.add_sighting(s.addresses, s.service_type, s.instance, s.host, s.properties)
