"""The languages the dashboards are built in, and the one way a text is chosen.

Every visible text is written once, in both languages, where it is used:
``tr("Upload", "Envoi")``. A missing translation is then a type error, not a silent English word in a
French dashboard. French texts use French typography: a no-break space (U+00A0) before ``? ! : ;``
and typographic apostrophes (U+2019).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Lang(StrEnum):
    """A language the dashboards are built in (`--lang`)."""

    EN = "en"
    FR = "fr"


@dataclass(frozen=True, slots=True)
class Tr:
    """Picks the text of one language: ``tr = Tr(Lang.FR); tr("Upload", "Envoi") == "Envoi"``."""

    lang: Lang

    def __call__(self, en: str, fr: str) -> str:
        return fr if self.lang is Lang.FR else en
