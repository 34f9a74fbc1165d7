"""The Gateway with its detectors, as replay and run build it, recording what it publishes.

The recorder stands where MQTT would be: it receives every event and every device-state update.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gateway.aggregators.detectors import Detectors, DeviceState, Event
from gateway.app import Gateway
from gateway.config import Config
from gateway.replay import replay_files
from gateway.sinks.lineproto import MemorySink


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.states: list[DeviceState] = []

    def publish_events(self, events: Sequence[Event]) -> None:
        self.events += events

    def publish_states(self, states: Sequence[DeviceState]) -> None:
        self.states += states


class DetectingGateway(Gateway):
    def __init__(self, cfg: Config, *, learning_s: int, state_dir: Path | None = None) -> None:
        self.keep, self.recorder = MemorySink(), Recorder()
        detectors = cfg.detectors.model_copy(update={"learning_s": learning_s})
        super().__init__(cfg.model_copy(update={"detectors": detectors}), self.keep, mqtt=self.recorder)
        if state_dir is not None:  # novelty remembers across runs, as with an inventory
            self.detectors = Detectors(
                self.cfg.detectors, self.lan, self.namer.table, self._subject, learning_s=learning_s,
                state_dir=state_dir,
            )  # fmt: skip

    @property
    def events(self) -> list[Event]:
        return self.recorder.events

    @property
    def states(self) -> list[DeviceState]:
        return self.recorder.states


def run(cfg: Config, capture: Path, *, learning_s: int, state_dir: Path | None = None) -> DetectingGateway:
    gw = DetectingGateway(cfg, learning_s=learning_s, state_dir=state_dir)
    replay_files(gw, [capture])
    return gw
