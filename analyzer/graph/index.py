"""Lookups over one snapshot that every layer above needs: elements by id, documents, modules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import groupby
from operator import attrgetter
from types import MappingProxyType

from analyzer.model.snapshot import ModelElement, Snapshot, Unit

MODULE_TYPE = "Projects$ModuleImpl"


def short_type(type_name: str) -> str:
    """``Forms$Page`` → ``Page``: how a Mendix developer names an element type."""
    return type_name.rsplit("$", 1)[-1].removesuffix("Impl")


@dataclass(frozen=True, slots=True)
class SnapshotIndex:
    """Elements by id, the unit root of every unit, and a readable label for every document."""

    snapshot: Snapshot
    elements: Mapping[str, ModelElement]
    units: Mapping[str, Unit]
    unit_roots: Mapping[str, ModelElement]
    document_labels: Mapping[str, str]
    """Unit id → how a person names the document (``Module.Page``, ``Module/DomainModel``)."""
    modules: Mapping[str, str]
    """Unit id → name of the module the unit sits in (absent for project-level units)."""
    unit_elements: Mapping[str, tuple[ModelElement, ...]]
    """Unit id → its elements, root first, depth-first."""

    def label(self, element: ModelElement) -> str:
        """How a person finds the element: its qualified name, else its nearest named owner and its type.

        ``FieldService.WorkOrder.Status`` for an attribute, ``FieldService.WorkOrder › AccessRule`` for an
        unnamed member, ``FieldService/DomainModel`` for a module's domain model.
        """
        if element.qualified_name:
            return element.qualified_name
        current = element
        while current.parent is not None:
            parent = self.elements.get(current.parent)
            if parent is None or parent.unit != current.unit:
                break
            if parent.qualified_name or parent.name:
                return f"{parent.qualified_name or parent.name} › {short_type(element.type)}"
            current = parent
        document = self.document_labels.get(element.unit, short_type(element.type))
        root = self.unit_roots.get(element.unit)
        if root is not None and root.id != element.id:
            return f"{document} › {short_type(element.type)}"
        return document

    def document_of(self, element: ModelElement) -> ModelElement:
        """The unit root (document, module, folder, domain model) that holds ``element``."""
        return self.unit_roots[element.unit]


def index_snapshot(snapshot: Snapshot) -> SnapshotIndex:
    """Build the lookups once per snapshot; every query reuses them."""
    elements = {element.id: element for element in snapshot.elements}
    units = {unit.id: unit for unit in snapshot.units}
    # Canonical order keeps each unit's elements together, root first (depth-first).
    grouped: dict[str, tuple[ModelElement, ...]] = {}
    for unit_id, members in groupby(snapshot.elements, key=attrgetter("unit")):
        run = tuple(members)
        grouped[unit_id] = grouped[unit_id] + run if unit_id in grouped else run
    roots = {unit_id: members[0] for unit_id, members in grouped.items()}
    modules: dict[str, str] = {}
    for unit_id in units:
        current: str | None = unit_id
        seen: set[str] = set()
        while current is not None and current in units and current not in seen:
            seen.add(current)
            root = roots.get(current)
            if root is not None and root.type == MODULE_TYPE and root.name:
                modules[unit_id] = root.name
                break
            current = units[current].container
    labels: dict[str, str] = {}
    for unit_id, root in roots.items():
        if root.qualified_name:
            labels[unit_id] = root.qualified_name
        elif unit_id in modules and root.name:
            labels[unit_id] = f"{modules[unit_id]}/{root.name}"
        elif unit_id in modules:
            labels[unit_id] = f"{modules[unit_id]}/{short_type(root.type)}"
        else:
            labels[unit_id] = short_type(root.type)
    return SnapshotIndex(
        snapshot=snapshot,
        elements=MappingProxyType(elements),
        units=MappingProxyType(units),
        unit_roots=MappingProxyType(roots),
        document_labels=MappingProxyType(labels),
        modules=MappingProxyType(modules),
        unit_elements=MappingProxyType(grouped),
    )
