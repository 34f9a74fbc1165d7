"""Activation thresholds: upload bytes per second above which a voice assistant is sending what it heard.

Strongest first: the lab's own value for the device (from ``mouchard calibrate``), the matched device
profile's ``activation_threshold_bps``, then the values Dubois et al. measured ("When Speakers Are All
Ears", PETS 2020) by maker. A voice assistant none of these covers gets no activation detection; the
calibrate command measures one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gateway.aggregators.detectors.inputs import Subject
from gateway.enrichers.identity import Identity

VOICE_ASSISTANT = "voice_assistant"
# (word in the vendor or model, bytes/s), first match wins: Dubois et al., PETS 2020, Table 2.
PAPER_THRESHOLDS: tuple[tuple[str, int], ...] = (
    ("harman", 13_568),  # Harman Kardon Invoke (Cortana)
    ("invoke", 13_568),
    ("amazon", 12_172),  # Echo Dot
    ("echo", 12_172),
    ("apple", 76_366),  # HomePod
    ("homepod", 76_366),
    ("google", 46_086),  # Google Home Mini
    ("nest", 46_086),
)

ProfileThreshold = Callable[[str], "int | None"]  # profile id -> its activation_threshold_bps


def paper_threshold(vendor: str, model: str) -> int | None:
    """The threshold Dubois et al. measured for this maker or model, if any."""
    text = f"{vendor} {model}".lower()
    return next((value for word, value in PAPER_THRESHOLDS if word in text), None)


def activation_threshold(
    device: str,
    identity: Identity,
    profile_threshold: ProfileThreshold | None = None,
    overrides: Mapping[str, int] | None = None,
) -> int | None:
    """The device's threshold in bytes/s, or None when it is not watched for activations.

    ``overrides`` (the lab's values, by device tag) apply to any device, voice assistant or not.
    """
    if overrides and device in overrides:
        return overrides[device]
    if identity.kind != VOICE_ASSISTANT:
        return None
    if profile_threshold is not None and identity.profile:
        found = profile_threshold(identity.profile)
        if found:
            return found
    return paper_threshold(identity.vendor, identity.model)


def subject_of_identity(
    device: str,
    identity: Identity,
    profile_threshold: ProfileThreshold | None = None,
    overrides: Mapping[str, int] | None = None,
) -> Subject:
    """The detectors' view of a device the Gateway has identified."""
    return Subject(
        device=device,
        name=identity.name,
        kind=identity.kind,
        vendor=identity.vendor,
        model=identity.model,
        ip=identity.ip,
        threshold_bps=activation_threshold(device, identity, profile_threshold, overrides),
    )
