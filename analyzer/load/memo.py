"""What one run has already read, by content, so the second snapshot of a check reuses the first's work.

Two revisions of an app share almost every unit byte for byte. A unit whose bytes (git blob id) and
place in the model (unit id, container, containment, module) equal one read before gives the same
elements, so it is neither decoded nor walked again, and both snapshots hold the very same element
objects: the diff then passes over it without comparing a property (``diff`` checks identity first).
A unit whose bytes differ is decoded and compared as usual, even when only its hash changed.

Keys are git blob ids: given by ``git ls-tree`` for ``git:`` sources (equal blobs are not even read),
computed from the bytes for everything else. The memo lives for one run and is never written to disk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from analyzer.model.native import WidgetPackage
from analyzer.model.snapshot import ModelElement

Progress = Callable[[int, int, int, int], None]
"""Told ``(units read, units in all, bytes read, bytes in all)`` as a load goes; the CLI draws a bar."""


def git_blob_id(data: bytes) -> str:
    """The id git gives these bytes as a blob (SHA-1 of ``blob <size>\\0`` and the bytes)."""
    digest = hashlib.sha1(b"blob %d\x00" % len(data), usedforsecurity=False)
    digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class UnitPlace:
    """Where a unit sits: with equal bytes, an equal place gives equal elements."""

    unit_id: str
    parent: str | None
    containment: str
    name_prefix: str | None
    qualify: bool
    max_depth: int


@dataclass(slots=True)
class _UnitEntry:
    type: str
    name: object
    walks: dict[UnitPlace, tuple[ModelElement, ...]] = field(default_factory=dict)


@dataclass(slots=True)
class ReadMemo:
    """Units already decoded and walked in this run, by blob id; shared by the loads of one check."""

    _units: dict[tuple[str, str], _UnitEntry] = field(default_factory=dict)
    file_digests: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Git blob id → size and SHA-256 of a side file hashed before."""
    widgets: dict[tuple[str, str], WidgetPackage] = field(default_factory=dict)
    """(Path, SHA-256 of the bytes) → the widget package read from them."""
    hits: int = 0
    """How many units were taken from the memo instead of decoded (benchmarks print it)."""

    def knows(self, blob: str, unit_id: str) -> bool:
        """Whether this unit's bytes were read before (its root type and name are then known)."""
        return (blob, unit_id) in self._units

    def root(self, blob: str, unit_id: str) -> tuple[str, object]:
        """``$Type`` and ``Name`` of a unit read before."""
        entry = self._units[(blob, unit_id)]
        return entry.type, entry.name

    def elements(self, blob: str, place: UnitPlace) -> tuple[ModelElement, ...] | None:
        """The elements of a unit read before at the same place, or None."""
        entry = self._units.get((blob, place.unit_id))
        found = entry.walks.get(place) if entry is not None else None
        if found is not None:
            self.hits += 1
        return found

    def remember(
        self, blob: str, place: UnitPlace, type_name: str, name: object, elements: tuple[ModelElement, ...]
    ) -> None:
        """Keep a unit's walk for the other snapshot of the check."""
        entry = self._units.setdefault((blob, place.unit_id), _UnitEntry(type=type_name, name=name))
        entry.walks[place] = elements
