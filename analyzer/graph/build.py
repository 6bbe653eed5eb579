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

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

import networkx as nx

from analyzer.graph.index import SnapshotIndex, index_snapshot
from analyzer.model.snapshot import Reference, ReferenceKind, Snapshot


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

    def links(self, element_id: str) -> tuple[ElementLink, ...]:
        """The resolved outgoing references of one element (none for an unknown id)."""
        return self.references.get(element_id, ())


def build_graph(snapshot: Snapshot, index: SnapshotIndex | None = None) -> ModelGraph:
    """The graph of one snapshot; pure: the same snapshot always gives the same graph."""
    idx = index if index is not None else index_snapshot(snapshot)
    elements = idx.elements
    names: dict[str, str] = {}
    for element in snapshot.elements:
        if element.qualified_name and element.qualified_name not in names:
            names[element.qualified_name] = element.id
    dangling: dict[str, list[str]] = {}
    references: dict[str, tuple[ElementLink, ...]] = {}
    name_references: list[tuple[str, str]] = []
    document_edges: dict[tuple[str, str], str] = {}
    for element in snapshot.elements:
        if not element.references:
            continue
        links: dict[str, ElementLink] = {}
        texts: list[Reference] = []
        for reference in element.references:
            kind = reference.kind
            if kind is ReferenceKind.TEXT:
                texts.append(reference)  # after the stored references, as a weaker kind of link
            elif kind is ReferenceKind.POINTER:
                if reference.target in elements and reference.target not in links:
                    links[reference.target] = ElementLink(reference.target, "pointer", reference.property)
            else:
                target = names.get(reference.target)
                if target is None:
                    dangling.setdefault(reference.target, []).append(element.id)
                elif target not in links:
                    links[target] = ElementLink(target, "name", reference.property)
        for reference in texts:
            # Expressions also hold member access such as ``$obj.Attr``; only names of the model count.
            target = names.get(reference.target)
            if target is not None and target not in links:
                links[target] = ElementLink(target, "text", reference.property)
        if not links:
            continue
        references[element.id] = tuple(links.values())
        for link in links.values():
            if link.kind == "pointer":
                continue
            name_references.append((element.id, link.target))
            target_unit = elements[link.target].unit
            if target_unit != element.unit:
                document_edges.setdefault((element.unit, target_unit), link.kind)
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from((unit_id, {"type": root.type}) for unit_id, root in idx.unit_roots.items())
    graph.add_edges_from(
        (unit.container, unit.id, {"kind": "contains"})
        for unit in snapshot.units
        if unit.container is not None and unit.container in idx.unit_roots and unit.id in idx.unit_roots
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
        references=MappingProxyType(references),
        name_references=tuple(name_references),
    )
