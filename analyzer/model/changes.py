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

NATIVE_TYPES = {
    "dependency": "NativeDependency",
    "npm-dependency": "NpmDependency",
    "widget": "WidgetPackage",
    "widget-content": "WidgetContent",
    "config": "NativeConfig",
    "template": "NativeTemplate",
    "problem": "NativeProblem",
}
"""Element type of a change to a native setting, by the setting's kind."""

NATIVE_DOCUMENTS = {
    "dependency": "native dependencies",
    "npm-dependency": "vendored npm packages",
    "widget": "widget packages",
    "widget-content": "widget packages",
    "config": "nativemobile/.config",
    "template": "native template",
    "problem": "native problems",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class NoEffectSpec:
    """What cannot reach an app, as listed in ``rules/no-effect.toml`` (data, reviewed like rules).

    Each field is a tuple of glob patterns over property paths, element types or document types.
    """

    diagram_properties: tuple[str, ...] = ()
    documentation_properties: tuple[str, ...] = ()
    bookkeeping_properties: tuple[str, ...] = ()
    diagram_elements: tuple[str, ...] = ()
    design_time_documents: tuple[str, ...] = ()
    bookkeeping_documents: tuple[str, ...] = ()
    follower_elements: tuple[str, ...] = ()
    """Elements Studio Pro adds or removes together with the member they name (access rights of a new
    attribute): such an addition or removal is reported by the member's own change."""


class NoEffect(enum.Enum):
    """Why the diff judged that a change cannot reach the app."""

    DIAGRAM = "diagram"
    DOCUMENTATION = "documentation"
    BOOKKEEPING = "bookkeeping"
    RENAME_FOLLOW_UP = "rename-follow-up"
    METAMODEL_REWRITE = "metamodel-rewrite"
    DESIGN_TIME_DOCUMENT = "design-time-document"
    EXCLUDED_DOCUMENT = "excluded-document"
    COSMETIC = "cosmetic"
    """Several of the above together."""
    FOLLOWS_MEMBER = "follows-member"
    """Added or removed with the member it names, whose own change is reported."""


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
    no_effect: NoEffect | None = None
    """Set when the change cannot reach the app; only ``none`` rules classify such changes."""

    @property
    def changed_paths(self) -> tuple[str, ...]:
        """The property paths this change touches."""
        return tuple(change.path for change in self.properties)
