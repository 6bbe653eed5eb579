"""How property values read in reports."""

from __future__ import annotations

from analyzer.model.changes import Absent, PropertyChange
from analyzer.model.snapshot import PropertyValue


def show(value: PropertyValue | Absent, limit: int = 60) -> str:
    """A short, one-line rendering of a property value."""
    if isinstance(value, Absent):
        return "(absent)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        text = "[" + ", ".join(show(item, limit) for item in value) + "]"
    elif isinstance(value, str):
        text = repr(value) if value == "" or value != value.strip() or "\n" in value else value
    else:
        text = repr(value)
    text = text.replace("\r", "").replace("\n", "⏎")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(change: PropertyChange, limit: int = 60) -> str:
    """``path: before → after``."""
    return f"{change.path}: {show(change.before, limit)} → {show(change.after, limit)}"


def json_value(value: PropertyValue | Absent) -> object:
    """A property value for JSON; an absent property becomes ``null`` with ``present: false`` beside it."""
    if isinstance(value, Absent):
        return None
    if isinstance(value, tuple):
        return list(value)
    return value
