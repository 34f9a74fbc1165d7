"""The detectors on the project's labelled night capture (gateway/samples/scenarios.py), through the
Gateway's real pipeline: activations at the right time and none in idle traffic, heartbeat periods
within 10 %, quiet-hours bytes equal to what the frames hold, and the one new destination."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.aggregators.detectors import Event, EventType
from gateway.aggregators.detectors.heartbeat import MIN_CONTACTS
from gateway.aggregators.detectors.quiet_hours import occurrences
from gateway.config import Config
from gateway.samples.scenarios import ScenarioLabels, write_scenario
from tests.aggregators.harness import DetectingGateway, run

LEARNING_S = 300


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> tuple[ScenarioLabels, DetectingGateway]:
    folder = tmp_path_factory.mktemp("night")
    labels = write_scenario(folder / "night.pcap")
    devices = {
        d.mac: {"name": d.label, "kind": d.kind, "vendor": d.vendor, "model": d.model} for d in labels.devices
    }
    cfg = Config.model_validate(
        {"detectors": {"quiet_hours": [labels.quiet_window], "timezone": labels.zone}, "devices": devices}
    )
    return labels, run(cfg, labels.path, learning_s=LEARNING_S, state_dir=folder / "state")


def of_type(gw: DetectingGateway, kind: EventType) -> list[Event]:
    return sorted((e for e in gw.events if e.type == kind), key=lambda e: e.ts_ns)


def test_activations_are_found_at_the_right_time_and_nowhere_else(
    night: tuple[ScenarioLabels, DetectingGateway],
) -> None:
    labels, gw = night
    found = of_type(gw, EventType.ACTIVATION)
    assert len(found) == len(labels.activations) == 2, [e.text for e in found]
    for event, label in zip(found, labels.activations, strict=True):
        assert event.device == label.mac
        assert abs(event.ts_ns / 1e9 - (labels.start_s + label.start_s)) <= 1.0
        assert abs(event.duration_s - label.duration_s) <= 1.0
        assert event.bytes == pytest.approx(label.bytes_sent, rel=0.15)
        assert event.host == label.host
        assert "Kitchen Echo" in event.text


def test_the_speaker_shows_as_activated_in_its_state(night: tuple[ScenarioLabels, DetectingGateway]) -> None:
    labels, gw = night
    echo = labels.activations[0].mac
    flags = [s.activation for s in gw.states if s.device == echo]
    assert True in flags
    assert flags[-1] is False
    assert not any(s.activation for s in gw.states if s.device != echo)
    last = [s for s in gw.states if s.device == echo][-1]
    assert last.upload_last_hour == labels_sent(labels, echo)


def labels_sent(labels: ScenarioLabels, mac: str) -> int:
    """What the device sent to the internet over the whole capture (under an hour)."""
    sel = (labels._mac == int(mac.replace(":", ""), 16)) & labels._sent
    return int(labels._len[sel].sum())


def test_heartbeat_periods_within_ten_percent(night: tuple[ScenarioLabels, DetectingGateway]) -> None:
    labels, gw = night
    found = {(e.device, e.host): e for e in of_type(gw, EventType.HEARTBEAT)}
    detectable = [h for h in labels.heartbeats if h.period_s * MIN_CONTACTS < labels.seconds - 60]
    assert len(detectable) == 4
    for beat in detectable:
        event = found.get((beat.mac, beat.host))
        assert event is not None, f"no heartbeat found for {beat}"
        assert event.period_s == pytest.approx(beat.period_s, rel=0.10)
    labelled = {(h.mac, h.host) for h in labels.heartbeats}
    assert set(found) <= labelled, "a heartbeat reported where there is none"
    assert "Desk Plug calls n-devs.tplinkcloud.com every 60 s" in {e.text for e in found.values()}


def test_quiet_hours_count_what_each_device_exchanged_with_the_internet(
    night: tuple[ScenarioLabels, DetectingGateway],
) -> None:
    labels, gw = night
    found = {e.device: e for e in of_type(gw, EventType.QUIET_HOURS)}
    window = occurrences(gw.cfg.detectors.windows, gw.cfg.detectors.zone, labels.start_s + 400)[0]
    assert window.start_s == labels.start_s + 300
    assert set(found) == {d.mac for d in labels.devices}
    for device in labels.devices:
        event = found[device.mac]
        assert event.ts_ns == window.start_s * 1_000_000_000
        assert event.duration_s == 600.0
        assert event.bytes == labels.bytes_outside(device.mac, window.start_s, window.end_s)
    assert "fw-cn.tplinkcloud.com" in found[labels.new_destinations[0].mac].host


def test_new_destination_and_country_after_learning(night: tuple[ScenarioLabels, DetectingGateway]) -> None:
    labels, gw = night
    new = [(e.device, e.host) for e in of_type(gw, EventType.NEW_DESTINATION)]
    assert new == [(n.mac, n.host) for n in labels.new_destinations]
    countries = of_type(gw, EventType.NEW_COUNTRY)
    assert [(e.device, e.host) for e in countries] == [(n.mac, n.host) for n in labels.new_destinations]
    assert all(n.country in e.text for e, n in zip(countries, labels.new_destinations, strict=True))
    first = of_type(gw, EventType.NEW_DESTINATION)[0]
    assert abs(first.ts_ns / 1e9 - (labels.start_s + labels.new_destinations[0].at_s)) <= 10


def test_events_are_written_as_event_points(night: tuple[ScenarioLabels, DetectingGateway]) -> None:
    _, gw = night
    lines = [line for line in gw.keep.lines if line.startswith("event,")]
    assert len(lines) == len(gw.events)
    series = [line.split(" ")[0] + " " + line.rsplit(" ", 1)[1] for line in lines]
    assert len(set(series)) == len(series), "two events would be one point in InfluxDB"
    heartbeat = next(line for line in lines if "type=heartbeat" in line)
    assert ",period_s=" in heartbeat
    assert "duration_s=0.0" in heartbeat


def test_learned_state_is_kept_for_the_next_run(
    night: tuple[ScenarioLabels, DetectingGateway], tmp_path: Path
) -> None:
    labels, gw = night
    saved = gw.detectors.novelty.state_file
    assert saved is not None
    assert saved.exists()
    again = run(gw.cfg, labels.path, learning_s=LEARNING_S, state_dir=saved.parent)
    assert not of_type(again, EventType.NEW_DESTINATION), "a restart reported known destinations again"
