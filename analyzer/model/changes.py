"""What the diff says happened to one element or side file between two snapshots."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from analyzer.model.snapshot import PropertyValue


class ChangeKind(enum.Enum):
    """The kind of a change; a rename or move keeps the element's identity."""

    ADDED = "added"
    REMOVED = "removed"
    MODIFIED = "modified"
    RENAMED = "renamed"
    MOVED = "moved"


class Absent(enum.Enum):
    """Marks a property that one side does not have at all (not the same as ``null``)."""

    ABSENT = "absent"


ABSENT = Absent.ABSENT

FILE_TYPE = "File"
"""The element type of a side file (styles, JS action code, widget packages, native config)."""

PROJECT_TYPE = "Project"
"""The element type of project-wide metadata (Studio Pro version, MPR format)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PropertyChange:
    """One property path whose value differs; ``ABSENT`` when a side does not have it."""

    path: str
    before: PropertyValue | Absent
    after: PropertyValue | Absent


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One change, reported once at the element that carries it and attributed to its document."""

    kind: ChangeKind
    element_id: str
    element_type: str
    qualified_name: str
    before_name: str | None
    after_name: str | None
    document_id: str
    document_type: str
    document_name: str
    properties: tuple[PropertyChange, ...] = ()
    moved_from: str | None = None
    moved_to: str | None = None
    matched_by_name: bool = False
    """True when the element was paired by (type, qualified name) because its unit was re-imported."""
    rename_follow_ups: tuple[str, ...] = ()
    """Property paths whose new value only follows the rename of another element."""

    @property
    def changed_paths(self) -> tuple[str, ...]:
        """The property paths this change touches."""
        return tuple(change.path for change in self.properties)
