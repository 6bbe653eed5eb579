"""Build a networkx graph of one snapshot: containment, references by name and by pointer, and files.

Nodes are element ids (the element itself is in the index, not copied onto the node) and
``file:<path>`` for side files. By-name references that resolve to nothing in the project
(``System.*``, excluded or deleted documents) are tolerated and recorded in ``dangling``, never fatal.
Between two nodes the graph keeps one edge, the first reference found in canonical order. Edge
attribute ``kind`` is ``contains``, ``name`` (a by-name reference), ``text`` (a name found inside an
expression, XPath or template) or ``pointer`` (an in-unit ``...Pointer``); ``property`` is the property
path that holds the reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import networkx as nx

from analyzer.graph.index import SnapshotIndex, index_snapshot
from analyzer.model.snapshot import NAME_TOKEN, ReferenceKind, Snapshot

TEXT_FIELDS = frozenset(
    {
        "XPathConstraint",
        "XpathConstraint",
        "Constraint",
        "Expression",
        "Value",
        "InitialValue",
        "DynamicClasses",
        "ReturnValue",
        "DefaultValue",
        "Template",
        "EntityPath",
        "AttributePath",
    }
)
"""Text properties that can mention qualified names inside a larger expression."""



@dataclass(frozen=True, slots=True)
class ModelGraph:
    """One snapshot's graph with its index and the names it could not resolve."""

    index: SnapshotIndex
    graph: nx.DiGraph[str]
    names: Mapping[str, str]
    """Qualified name → element id (the first element of that name, in canonical order)."""
    dangling: Mapping[str, tuple[str, ...]]
    """Unresolved qualified name → ids of the elements that refer to it."""
    name_references: tuple[tuple[str, str], ...] = ()
    """(source, target) of every resolved by-name and in-text reference: what reachability walks, kept
    beside the graph so queries need not iterate networkx's edge views."""


def build_graph(snapshot: Snapshot, index: SnapshotIndex | None = None) -> ModelGraph:
    """The graph of one snapshot; pure: the same snapshot always gives the same graph."""
    idx = index if index is not None else index_snapshot(snapshot)
    graph: nx.DiGraph[str] = nx.DiGraph()
    names: dict[str, str] = {}
    for element in snapshot.elements:
        if element.qualified_name and element.qualified_name not in names:
            names[element.qualified_name] = element.id
    graph.add_nodes_from(element.id for element in snapshot.elements)
    graph.add_nodes_from(f"file:{side_file.path}" for side_file in snapshot.files)
    dangling: dict[str, list[str]] = {}
    edges: list[tuple[str, str, dict[str, str]]] = []
    text_paths: dict[str, bool] = {}  # property paths repeat thousands of times: decide each once
    for element in snapshot.elements:
        if element.parent is not None and element.parent in idx.elements:
            edges.append((element.parent, element.id, {"kind": "contains", "property": element.slot}))
        seen: set[tuple[str, str]] = set()
        for reference in element.references:
            if reference.kind is ReferenceKind.POINTER:
                if reference.target in idx.elements:
                    edges.append((element.id, reference.target, {"kind": "pointer", "property": reference.property}))
                continue
            target = names.get(reference.target)
            if target is None:
                dangling.setdefault(reference.target, []).append(element.id)
                continue
            seen.add((reference.target, reference.property))
            edges.append((element.id, target, {"kind": "name", "property": reference.property}))
        for path, value in element.properties.items():
            is_text = text_paths.get(path)
            if is_text is None:
                is_text = text_paths[path] = path.rsplit(".", 1)[-1] in TEXT_FIELDS
            if not is_text or not isinstance(value, str) or not value:
                continue
            for token in NAME_TOKEN.findall(value):
                if (token, path) in seen:
                    continue
                target = names.get(token)
                if target is None:
                    # Expressions also hold member access such as ``$obj.Attr``; only whole names count.
                    continue
                seen.add((token, path))
                edges.append((element.id, target, {"kind": "text", "property": path}))
    unique: dict[tuple[str, str], dict[str, str]] = {}
    for source, target, data in edges:
        unique.setdefault((source, target), data)
    graph.add_edges_from((source, target, data) for (source, target), data in unique.items())
    return ModelGraph(
        index=idx,
        graph=graph,
        names=MappingProxyType(names),
        dangling=MappingProxyType({name: tuple(ids) for name, ids in sorted(dangling.items())}),
        name_references=tuple(
            (source, target) for (source, target), data in unique.items() if data["kind"] in ("name", "text")
        ),
    )
