"""How many series each device may open: what untrusted traffic can add to InfluxDB's index.

Every distinct tag set is a series that InfluxDB indexes for as long as its points are kept, and that
the gateway holds in memory while its bin is open. A device scanning the internet, or asking DNS for
random names, would open one per address or name. `SeriesCap` admits the first tag sets of each device
in a window of capture time; the Gateway folds the rest into an overflow series (``host=other``), so
no byte and no query is lost, only its detail.
"""

from __future__ import annotations

from collections.abc import Hashable

# The host tag of what a device sent beyond its cap.
OVERFLOW_HOST = "other"


class SeriesCap:
    """Admits at most ``per_device`` keys per device and ``total`` in all, per window of ``window_s``.

    Keys are hashes of tag sets (two distinct tag sets sharing a 64-bit hash would only let one
    series more through). A new window starts empty, so a device that keeps meeting new destinations
    opens at most ``per_device`` series a window instead of losing every new one for good.
    """

    def __init__(self, per_device: int, total: int, window_s: int) -> None:
        self.per_device = per_device
        self.total = total
        self.window_s = window_s
        self._window: int | None = None
        self._admitted: dict[Hashable, set[int]] = {}
        self._count = 0

    def start(self, at_s: int) -> None:
        """Time goes on: from a new window every device starts again (late rows stay in the old one)."""
        window = at_s // self.window_s
        if self._window is None or window > self._window:
            self._window = window
            self._admitted.clear()
            self._count = 0

    def admit(self, device: Hashable, key: int) -> bool:
        """True when ``key`` is (now) one of ``device``'s series; False when it must overflow."""
        seen = self._admitted.get(device)
        if seen is not None and key in seen:
            return True
        if self._count >= self.total or (seen is not None and len(seen) >= self.per_device):
            return False
        if seen is None:
            seen = self._admitted[device] = set()
        seen.add(key)
        self._count += 1
        return True
