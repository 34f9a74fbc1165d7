"""`mouchard run`: the live gateway, one process and one asyncio loop.

The capture handle's file descriptor wakes the loop when packets are ready; a one-second tick writes
bins that the clock has completed (an idle lab still gets its points), and every minute the device
inventory and the gateway's own metrics (packets, kernel drops) are written. SIGTERM and SIGINT
flush the open bins and the sinks, then exit; SIGHUP reloads the lab's device labels.
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
from gateway.sources.live import LiveCapture

log = logging.getLogger(__name__)

TICK_S = 1.0
INVENTORY_EVERY_S = 60.0
METRICS_EVERY_S = 10.0


class LiveGateway:
    def __init__(self, cfg: Config, gateway: Gateway, capture: LiveCapture, config_path: Path | None) -> None:
        self.cfg = cfg
        self.gateway = gateway
        self.capture = capture
        self.config_path = config_path
        self.stopping = asyncio.Event()
        self._last_inventory = 0.0
        self._last_metrics = 0.0

    def _readable(self) -> None:
        while (batch := self.capture.read()) is not None:
            self.gateway.process(batch)

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
        if now - self._last_metrics >= METRICS_EVERY_S:
            self._metrics()
            self._last_metrics = now
        if now - self._last_inventory >= INVENTORY_EVERY_S:
            self.gateway.update_inventory()
            self._last_inventory = now

    def _metrics(self) -> None:
        st = self.capture.stats()
        self.gateway.self_metrics(
            time.time_ns(),
            {"kernel_received": st.received, "kernel_drops": st.dropped, "if_drops": st.if_dropped},
        )

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self.capture.fileno(), self._readable)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload)
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
            self._metrics()
            self.gateway.finish()
