"""Build the graph of one snapshot: documents linked by the references between them.

The networkx graph has one node per unit (document, module, folder, domain model) with its ``type``,
and an edge from a unit to every other unit it refers to (``kind`` ``name``: a by-name reference;
``text``: a name inside an expression, XPath or template; ``pointer``) plus the unit containment tree
(``contains``). It is the graph the rules' questions walk (what a native profile reaches, who refers to
a document), a few thousand nodes even for a large app. The element level is kept beside it as plain
lookups, resolved once: ``references`` gives each element's outgoing references to elements, and
containment is the elements' own ``parent``. A networkx node per element (hundreds of thousands in a
large app) cost more than everything else in a check and no query walked it.

By-name references that resolve to nothing in the project (``System.*``, excluded or deleted
documents) are tolerated and recorded in ``dangling``, never fatal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

import networkx as nx

from analyzer.graph.index import SnapshotIndex, index_snapshot
from analyzer.model.snapshot import NamedElement, Reference, ReferenceKind, Snapshot, UnitModel


class ElementLink(NamedTuple):
    """One resolved outgoing reference of an element: to which element, how, and from which property.

    A named tuple, not a dataclass: a large app has a million of them and a tuple builds five times
    faster.
    """

    target: str
    kind: str
    """``name``, ``text`` or ``pointer``."""
    property: str


@dataclass(frozen=True, slots=True)
class ModelGraph:
    """One snapshot's document graph with its index, element links and the names it could not resolve."""

    index: SnapshotIndex
    graph: nx.DiGraph[str]
    """Units as nodes; ``contains`` edges down the unit tree and reference edges between units."""
    names: Mapping[str, str]
    """Qualified name → element id (the first element of that name, in canonical order)."""
    dangling: Mapping[str, tuple[str, ...]]
    """Unresolved qualified name → ids of the elements that refer to it."""
    references: Mapping[str, tuple[ElementLink, ...]]
    """Element id → its resolved outgoing references (one per target, the first in canonical order)."""
    name_references: tuple[tuple[str, str], ...] = ()
    """(source, target) element ids of every resolved by-name and in-text reference."""
    named: Mapping[str, NamedElement] = field(default_factory=lambda: MappingProxyType({}))
    """Element id → id, type, qualified name and parent of every element with a qualified name."""
    element_units: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Element id → unit, for every named element and every element with links."""
    referring: tuple[tuple[str, str, str], ...] = ()
    """(element id, type, unit) of every element with a link by name or in text, in canonical order."""
    stored_references: Mapping[str, tuple[Reference, ...]] = field(default_factory=lambda: MappingProxyType({}))
    """Element id → its references as stored (unresolved, every property), for elements that have any."""

    def links(self, element_id: str) -> tuple[ElementLink, ...]:
        """The resolved outgoing references of one element (none for an unknown id)."""
        return self.references.get(element_id, ())

    def unit_of(self, element_id: str) -> str | None:
        """The unit that holds an element, without building its elements."""
        found = self.element_units.get(element_id)
        return found if found is not None else self.index.elements.unit_of(element_id)


class _StoredReferences(Mapping[str, tuple[Reference, ...]]):
    """Element id → its references as stored, read from its unit's outline on first use."""

    __slots__ = ("_by_unit", "_locate", "_models")

    def __init__(self, models: Mapping[str, UnitModel], locate: Callable[[str], str | None]) -> None:
        self._models = models
        self._locate = locate
        self._by_unit: dict[str, dict[str, tuple[Reference, ...]]] = {}

    def _unit(self, unit_id: str) -> dict[str, tuple[Reference, ...]]:
        found = self._by_unit.get(unit_id)
        if found is None:
            model = self._models.get(unit_id)
            found = {entry.id: entry.references for entry in model.outline.referring} if model else {}
            self._by_unit[unit_id] = found
        return found

    def __getitem__(self, element_id: str) -> tuple[Reference, ...]:
        unit_id = self._locate(element_id)
        if unit_id is None:
            raise KeyError(element_id)
        return self._unit(unit_id)[element_id]

    def __iter__(self) -> Iterator[str]:
        return (element_id for unit_id in self._models for element_id in self._unit(unit_id))

    def __len__(self) -> int:
        return sum(len(self._unit(unit_id)) for unit_id in self._models)


class _LinkTable(Mapping[str, tuple[ElementLink, ...]]):
    """Element id → resolved links: resolved up front for elements with by-name or in-text references,
    on first use for the many that only point inside their own unit (nothing on a check's path asks)."""

    __slots__ = ("_resolve", "_resolved", "_stored")

    def __init__(
        self,
        resolved: dict[str, tuple[ElementLink, ...]],
        stored: Mapping[str, tuple[Reference, ...]],
        resolve: Callable[[str, tuple[Reference, ...]], tuple[ElementLink, ...]],
    ) -> None:
        self._resolved = resolved
        self._stored = stored
        self._resolve = resolve

    def __getitem__(self, element_id: str) -> tuple[ElementLink, ...]:
        found = self._resolved.get(element_id)
        if found is None:
            stored = self._stored.get(element_id)
            found = self._resolve(element_id, stored) if stored is not None else ()
            if not found:
                raise KeyError(element_id)
            self._resolved[element_id] = found
        return found

    def __iter__(self) -> Iterator[str]:
        return (element_id for element_id in self._stored if element_id in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def build_graph(snapshot: Snapshot, index: SnapshotIndex | None = None) -> ModelGraph:
    """The graph of one snapshot, from its units' outlines; pure: the same snapshot always gives the same
    graph. No unit's elements are built for it."""
    idx = index if index is not None else index_snapshot(snapshot)
    elements = idx.elements
    models = snapshot.elements.models
    names: dict[str, str] = {}
    named: dict[str, NamedElement] = {}
    units_of: dict[str, str] = {}
    foreign: dict[str, frozenset[str]] = {}
    for model in models:
        unit_id = model.unit_id
        outline = model.outline
        for entry in outline.named:
            names.setdefault(entry.qualified_name, entry.id)
            named[entry.id] = entry
            units_of[entry.id] = unit_id
        if outline.foreign_pointers:
            foreign.update(dict.fromkeys((entry.id for entry in outline.referring), outline.foreign_pointers))
    dangling: dict[str, list[str]] = {}

    def resolve(source_id: str, element_references: tuple[Reference, ...]) -> tuple[ElementLink, ...]:
        links: dict[str, ElementLink] = {}
        texts: list[Reference] = []
        outside = foreign.get(source_id, frozenset())
        for reference in element_references:
            kind = reference.kind
            target = reference.target
            if kind is ReferenceKind.POINTER:
                # A pointer's target is in its own unit unless the outline says otherwise.
                if target not in links and (target not in outside or target in elements):
                    links[target] = ElementLink(target, "pointer", reference.property)
            elif kind is ReferenceKind.TEXT:
                texts.append(reference)  # after the stored references, as a weaker kind of link
            else:
                resolved = names.get(target)
                if resolved is None:
                    dangling.setdefault(target, []).append(source_id)
                elif resolved not in links:
                    links[resolved] = ElementLink(resolved, "name", reference.property)
        for reference in texts:
            # Expressions also hold member access such as ``$obj.Attr``; only names of the model count.
            resolved = names.get(reference.target)
            if resolved is not None and resolved not in links:
                links[resolved] = ElementLink(resolved, "text", reference.property)
        return tuple(links.values())

    references: dict[str, tuple[ElementLink, ...]] = {}
    name_references: list[tuple[str, str]] = []
    referring: list[tuple[str, str, str]] = []
    document_edges: dict[tuple[str, str], str] = {}
    for model in models:
        unit_id = model.unit_id
        outline = model.outline
        for position in outline.naming:
            source_id, source_type, element_references = outline.referring[position]
            links = resolve(source_id, element_references)
            if not links:
                continue
            references[source_id] = links
            referring.append((source_id, source_type, unit_id))
            units_of.setdefault(source_id, unit_id)
            for link in links:
                if link.kind == "pointer":
                    continue
                name_references.append((source_id, link.target))
                target_unit = units_of[link.target]
                if target_unit != unit_id:
                    document_edges.setdefault((unit_id, target_unit), link.kind)
    stored = _StoredReferences(
        idx.unit_models, lambda element_id: units_of.get(element_id) or elements.unit_of(element_id)
    )
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from((unit_id, {"type": root_type}) for unit_id, root_type in idx.unit_types.items())
    graph.add_edges_from(
        (unit.container, unit.id, {"kind": "contains"})
        for unit in snapshot.units
        if unit.container is not None and unit.container in idx.unit_types and unit.id in idx.unit_types
    )
    graph.add_edges_from(
        (source, target, {"kind": kind})
        for (source, target), kind in document_edges.items()
        if not graph.has_edge(source, target)
    )
    return ModelGraph(
        index=idx,
        graph=graph,
        names=MappingProxyType(names),
        dangling=MappingProxyType({name: tuple(ids) for name, ids in sorted(dangling.items())}),
        references=_LinkTable(references, stored, resolve),
        name_references=tuple(name_references),
        named=named,  # plain dicts, never changed after this: the queries' hottest lookups
        element_units=units_of,
        referring=tuple(referring),
        stored_references=stored,
    )
