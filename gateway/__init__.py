"""Mouchard: an IoT privacy lab gateway."""

__version__ = "0.1.0"
