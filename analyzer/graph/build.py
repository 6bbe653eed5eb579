"""Build the graph of one snapshot: documents linked by the references between them.

It is built from the units' outlines (``UnitOutline``: names, references, ids and types read at load),
never from whole elements. Between documents: ``document_edges`` from a unit to every other unit it
refers to (``kind`` ``name``: a by-name reference; ``text``: a name inside an expression, XPath or
template), and the same as a networkx graph with the unit containment tree (``contains``), made on
first use. The element level is kept beside it as plain lookups: ``references`` gives each element's
resolved outgoing references (pointers inside a unit resolved when asked for), ``named`` every named
element, ``element_units`` the unit of every named or referring element. A networkx node per element
(hundreds of thousands in a large app) cost more than everything else in a check and no query walked it.

By-name references that resolve to nothing in the project (``System.*``, excluded or deleted
documents) are tolerated and recorded in ``dangling``, never fatal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from analyzer.graph.index import SnapshotIndex, UnitChanges, index_snapshot, unit_changes
from analyzer.model.snapshot import NamedElement, Reference, ReferenceKind, Snapshot, UnitModel

if TYPE_CHECKING:
    import networkx as nx  # imported when the graph is first asked for: a check never asks


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
    document_edges: Mapping[tuple[str, str], str]
    """(Referring unit, referred unit) → kind of the first link between them (``name`` or ``text``)."""
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
    pieces: Mapping[str, _UnitLinks] = field(default_factory=lambda: MappingProxyType({}), compare=False, repr=False)
    """Unit id → what the unit contributed (see ``like`` in :func:`build_graph`)."""
    names_found: _Names | None = field(default=None, compare=False, repr=False)
    """The named elements as found (see ``like`` in :func:`build_graph`)."""
    sound: bool = field(default=False, compare=False, repr=False)
    """Whether every unit's linked elements are its own in :attr:`element_units` (no element id held by
    two units, as in any model Studio Pro saved): the document links can then be read unit by unit,
    and the other side of a check can take the gathered lookups over."""
    _networkx: list[nx.DiGraph[str]] = field(default_factory=list, compare=False, repr=False)

    @property
    def graph(self) -> nx.DiGraph[str]:
        """The document graph as networkx: units as nodes with their ``type``, ``contains`` edges down
        the unit tree and reference edges between units. Made on first use: the rules' questions are
        answered from the plain lookups, and adding a hundred thousand edges cost a third of a check."""
        if not self._networkx:
            import networkx as nx  # here, not at the top: a fifth of the start-up time, for few callers

            idx = self.index
            graph: nx.DiGraph[str] = nx.DiGraph()
            graph.add_nodes_from((unit_id, {"type": root_type}) for unit_id, root_type in idx.unit_types.items())
            graph.add_edges_from(
                (unit.container, unit.id, {"kind": "contains"})
                for unit in idx.snapshot.units
                if unit.container is not None and unit.container in idx.unit_types and unit.id in idx.unit_types
            )
            graph.add_edges_from(
                (source, target, {"kind": kind})
                for (source, target), kind in self.document_edges.items()
                if not graph.has_edge(source, target)
            )
            self._networkx.append(graph)
        return self._networkx[0]

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

    __slots__ = ("_index", "_later", "_resolve", "_stored", "gathered")

    def __init__(
        self,
        gathered: dict[str, tuple[ElementLink, ...]],
        stored: Mapping[str, tuple[Reference, ...]],
        resolve: Callable[[str, tuple[Reference, ...], bool], tuple[ElementLink, ...]],
        index: SnapshotIndex,
    ) -> None:
        self.gathered = gathered  # resolved up front, never changed after: the other side copies them
        self._later: dict[str, tuple[ElementLink, ...]] = {}
        self._stored = stored
        self._resolve = resolve
        self._index = index

    def __getitem__(self, element_id: str) -> tuple[ElementLink, ...]:
        found = self.gathered.get(element_id) or self._later.get(element_id)
        if found is None:
            stored = self._stored.get(element_id)
            outlined = stored is not None
            if stored is None:  # not in an outline: an element that only points inside its unit
                element = self._index.elements.get(element_id)
                stored = element.references if element is not None else ()
            found = self._resolve(element_id, stored, outlined) if stored else ()
            if not found:
                raise KeyError(element_id)
            self._later[element_id] = found
        return found

    def __iter__(self) -> Iterator[str]:
        for unit_id in self._index.unit_elements:
            for element in self._index.unit_elements[unit_id]:
                if element.references and element.id in self:
                    yield element.id

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _UnitLinks(NamedTuple):
    """What one unit contributes to the graph: kept per unit so that the other snapshot of a check
    can take it over for a unit it shares, when no name the unit refers to resolves differently."""

    model: UnitModel
    references: dict[str, tuple[ElementLink, ...]]
    name_references: list[tuple[str, str]]
    referring: list[tuple[str, str, str]]
    edges: dict[tuple[str, str], str]
    """(This unit, target unit) → kind of the unit's first link into it."""
    dangling: list[tuple[str, str]]
    """(Unresolved name, referring element id), in order."""
    names_used: frozenset[str]
    sources: dict[str, str]
    """Id of every element with links → this unit."""
    targets: frozenset[str]
    """Targets of the unit's by-name and in-text links (what the document refers to)."""
    links_to: frozenset[str]
    """The other units it links into (the second halves of :attr:`edges`)."""


class _Names(NamedTuple):
    """The named elements of a snapshot, as the graph looks them up."""

    names: dict[str, str]
    """Qualified name → element id, the first of that name in canonical order."""
    named: dict[str, NamedElement]
    """Element id → the named element (the last of that id)."""
    units: dict[str, str]
    """Element id → unit, for the named elements (the last of that id)."""
    holders: dict[str, tuple[tuple[str, int, str], ...]] | None
    """Qualified name held more than once (real apps have some) → (unit, position in its outline,
    element id) of each holder; None when an element id is held twice (a damaged model), which a
    patch does not follow."""


def _names_of(models: tuple[UnitModel, ...]) -> _Names:
    """Every named element of the snapshot, walked in canonical order."""
    names: dict[str, str] = {}
    named: dict[str, NamedElement] = {}
    units: dict[str, str] = {}
    twice: set[str] = set()
    total = 0
    for model in models:
        unit_id = model.unit_id
        entries = model.outline.named
        total += len(entries)
        for entry in entries:
            element_id = entry.id
            if names.setdefault(entry.qualified_name, element_id) != element_id:
                twice.add(entry.qualified_name)  # held before (or an id held twice: see below)
            named[element_id] = entry
            units[element_id] = unit_id
    holders: dict[str, tuple[tuple[str, int, str], ...]] = {}
    if len(named) != total:
        return _Names(names, named, units, None)
    if twice:  # every id held once: a name held before is held twice, by two elements
        for model in models:
            for position, entry in enumerate(model.outline.named):
                if entry.qualified_name in twice:
                    found = holders.get(entry.qualified_name, ())
                    holders[entry.qualified_name] = (*found, (model.unit_id, position, entry.id))
    return _Names(names, named, units, holders)


def _names_like(
    models: tuple[UnitModel, ...], like: ModelGraph, index: SnapshotIndex | None = None
) -> tuple[_Names, set[str], UnitChanges] | None:
    """The other side's named elements with the units that differ taken out and put in, the names
    they touch and how the units differ (as ``index`` found them, when it was taken over from the same
    snapshot); None when that would not give what :func:`_names_of` gives or would not be cheaper."""
    theirs = like.index.snapshot.elements.models
    found = like.names_found
    if found is None or found.holders is None or len(like.pieces) != len(theirs):
        return None
    lent = index.lent if index is not None and index.snapshot.elements.models is models else None
    if lent is not None and lent[0] is like.index.snapshot:
        changes: UnitChanges | None = lent[1]
    else:
        changes = unit_changes(models, theirs)
    if changes is None:
        return None
    gone, new = changes.gone, changes.new
    mine = {model.unit_id: model for model in models}
    names, named, units = dict(found.names), dict(found.named), dict(found.units)
    holders = dict(found.holders)
    touched: set[str] = set()
    for model in gone:
        for position, entry in enumerate(model.outline.named):
            qualified_name = entry.qualified_name
            touched.add(qualified_name)
            del named[entry.id], units[entry.id]
            if qualified_name in holders:
                holder = (model.unit_id, position, entry.id)
                holders[qualified_name] = tuple(h for h in holders[qualified_name] if h != holder)
            else:
                del names[qualified_name]
    for model in new:
        unit_id = model.unit_id
        for position, entry in enumerate(model.outline.named):
            qualified_name = entry.qualified_name
            if entry.id in named:
                return None  # an id held twice
            touched.add(qualified_name)
            named[entry.id] = entry
            units[entry.id] = unit_id
            if qualified_name in holders:
                holders[qualified_name] = (*holders[qualified_name], (unit_id, position, entry.id))
            elif qualified_name in names:  # now held twice: where is the one held so far?
                other = names[qualified_name]
                other_unit = units[other]
                place = next(i for i, e in enumerate(mine[other_unit].outline.named) if e.id == other)
                holders[qualified_name] = ((other_unit, place, other), (unit_id, position, entry.id))
            else:
                names[qualified_name] = entry.id
    for qualified_name in touched:
        held = holders.get(qualified_name)
        if held is None:
            continue
        if held:
            names[qualified_name] = min(held)[2]  # the first in canonical order
        else:
            names.pop(qualified_name, None)
            del holders[qualified_name]
    return _Names(names, named, units, holders), touched, changes


_Gathered = tuple[dict[str, tuple[ElementLink, ...]], dict[tuple[str, str], str], dict[str, str]]
"""Resolved links by element, document edges, and the unit of every named or linked element."""


def _gathered(ordered: list[_UnitLinks], distinct: bool, named_units: dict[str, str]) -> _Gathered:
    """Links, document edges and element units gathered unit by unit (dict operations that run in C,
    not a step per element); a named element's unit wins over a referring one's, and among referring
    ones the first in order."""
    references: dict[str, tuple[ElementLink, ...]] = {}
    document_edges: dict[tuple[str, str], str] = {}
    element_units: dict[str, str] = {}
    for piece in reversed(ordered):
        if piece.sources:
            element_units.update(piece.sources)
    for piece in ordered:
        if not piece.references:
            continue  # a unit without links has no edges either (a folder, a module)
        references.update(piece.references)
        if not distinct:
            for edge, kind in piece.edges.items():
                document_edges.setdefault(edge, kind)
        elif piece.edges:
            document_edges.update(piece.edges)  # keys start with the piece's own unit: none is seen twice
    element_units.update(named_units)
    return references, document_edges, element_units


def _gathered_like(
    like: ModelGraph, pieces: dict[str, _UnitLinks], found: _Names, changes: UnitChanges
) -> _Gathered | None:
    """What :func:`_gathered` gives, taken over from the other side's graph: the pieces that differ
    taken out and put in (0.3 s -> 0.05 s at scale). None unless both sides are sound: an element id
    held by two units would make which one wins depend on the order of every unit."""
    theirs = like.pieces
    if not like.sound or not isinstance(like.references, _LinkTable):
        return None
    removed = [piece for unit_id, piece in theirs.items() if pieces.get(unit_id) is not piece]
    fresh = [piece for unit_id, piece in pieces.items() if theirs.get(unit_id) is not piece]
    references = dict(like.references.gathered)
    document_edges = dict(like.document_edges)
    element_units = dict(like.element_units)
    touched: set[str] = set()
    for piece in removed:
        for element_id in piece.sources:
            references.pop(element_id, None)
            element_units.pop(element_id, None)
        touched.update(piece.sources)
        for edge in piece.edges:
            document_edges.pop(edge, None)
    for model in changes.gone:
        for entry in model.outline.named:
            element_units.pop(entry.id, None)
            touched.add(entry.id)
    for piece in fresh:
        if not element_units.keys().isdisjoint(piece.sources):
            return None  # an element id held by two units
        references.update(piece.references)
        element_units.update(piece.sources)
        document_edges.update(piece.edges)
    named_units = found.units
    for model in changes.new:
        touched.update(entry.id for entry in model.outline.named)
    for element_id in touched:  # named elements put (back) in: a named element's unit wins
        unit_id = named_units.get(element_id)
        if unit_id is None:
            continue
        held = element_units.setdefault(element_id, unit_id)
        if held != unit_id:
            return None
    return references, document_edges, element_units


def build_graph(
    snapshot: Snapshot, index: SnapshotIndex | None = None, like: ModelGraph | None = None
) -> ModelGraph:
    """The graph of one snapshot, from its units' outlines; pure: the same snapshot always gives the same
    graph. No unit's elements are built for it.

    ``like``: the graph of the other snapshot of a check. Its named elements are taken over with the
    units that differ taken out and put in (names held twice follow canonical order), and a unit both
    hold (the very same unit model) whose referred names all resolve to the same elements in the same
    units keeps its links from it, instead of resolving them again: the result is the same, at a
    fraction of the cost. The whole graph is then gathered unit by unit, not element by element.
    """
    idx = index if index is not None else index_snapshot(snapshot)
    elements = idx.elements
    models = snapshot.elements.models
    patched = _names_like(models, like, idx) if like is not None else None
    found = patched[0] if patched is not None else _names_of(models)
    names, named, named_units = found.names, found.named, found.units
    units_of = named_units  # the named elements' units while links are resolved; see the end
    foreign: dict[str, frozenset[str]] = {}
    for model in models:
        outline = model.outline
        if outline.foreign_pointers:
            foreign.update(dict.fromkeys((entry.id for entry in outline.referring), outline.foreign_pointers))

    def resolve(
        source_id: str,
        element_references: tuple[Reference, ...],
        outlined: bool = True,
        dangling: list[tuple[str, str]] | None = None,
        used: set[str] | None = None,
    ) -> tuple[ElementLink, ...]:
        """Links of one element; ``outlined``: its references come from an outline, which says which
        pointer targets are outside the unit (otherwise every target is looked up). Unresolved names
        go to ``dangling``, every name looked up to ``used``."""
        links: dict[str, ElementLink] = {}
        texts: list[Reference] = []
        outside = foreign.get(source_id, frozenset())
        for reference in element_references:
            kind = reference.kind
            target = reference.target
            if kind is ReferenceKind.POINTER:
                # A pointer's target is in its own unit unless the outline says otherwise.
                if target not in links and ((outlined and target not in outside) or target in elements):
                    links[target] = ElementLink(target, "pointer", reference.property)
                continue
            if used is not None:
                used.add(target)
            if kind is ReferenceKind.TEXT:
                texts.append(reference)  # after the stored references, as a weaker kind of link
            else:
                resolved = names.get(target)
                if resolved is None:
                    if dangling is not None:
                        dangling.append((target, source_id))
                elif resolved not in links:
                    links[resolved] = ElementLink(resolved, "name", reference.property)
        for reference in texts:
            # Expressions also hold member access such as ``$obj.Attr``; only names of the model count.
            resolved = names.get(reference.target)
            if resolved is not None and resolved not in links:
                links[resolved] = ElementLink(resolved, "text", reference.property)
        return tuple(links.values())

    name_kind = ReferenceKind.NAME
    new_link = tuple.__new__  # an ElementLink without the Python-level ``__new__`` (130,000 at scale)
    names_get = names.get

    def unit_links(model: UnitModel) -> _UnitLinks:
        unit_id = model.unit_id
        outline = model.outline
        rows = outline.referring
        references: dict[str, tuple[ElementLink, ...]] = {}
        name_references: list[tuple[str, str]] = []
        referring: list[tuple[str, str, str]] = []
        edges: dict[tuple[str, str], str] = {}
        dangling: list[tuple[str, str]] = []
        used: set[str] = set()
        targets: set[str] = set()
        for position in outline.naming:
            source_id, source_type, element_references = rows[position]
            if len(element_references) == 1 and (reference := element_references[0]).kind is name_kind:
                # Nineteen of twenty: one reference by name (what ``resolve`` does, inline).
                target_name = reference.target
                used.add(target_name)
                resolved = names_get(target_name)
                if resolved is None:
                    dangling.append((target_name, source_id))
                    continue
                references[source_id] = (new_link(ElementLink, (resolved, "name", reference.property)),)
                referring.append((source_id, source_type, unit_id))
                name_references.append((source_id, resolved))
                targets.add(resolved)
                target_unit = units_of[resolved]
                if target_unit != unit_id and (unit_id, target_unit) not in edges:
                    edges[(unit_id, target_unit)] = "name"
                continue
            links = resolve(source_id, element_references, True, dangling, used)
            if not links:
                continue
            references[source_id] = links
            referring.append((source_id, source_type, unit_id))
            for link in links:
                if link.kind == "pointer":
                    continue
                name_references.append((source_id, link.target))
                targets.add(link.target)
                target_unit = units_of[link.target]
                if target_unit != unit_id:
                    edges.setdefault((unit_id, target_unit), link.kind)
        return _UnitLinks(
            model,
            references,
            name_references,
            referring,
            edges,
            dangling,
            frozenset(used),
            dict.fromkeys(references, unit_id),  # every element with links (sources) -> this unit
            frozenset(targets),
            frozenset([target for _, target in edges]),
        )

    changed: set[str] = set()
    if like is not None:
        theirs, their_units = like.names, like.element_units
        if patched is not None:
            # Only the names of the units that differ can resolve differently.
            changed = {
                name
                for name in patched[1]
                if theirs.get(name) != names.get(name)
                or (name in names and their_units.get(names[name]) != units_of[names[name]])
            }
        else:
            changed = {
                name
                for name, element_id in names.items()
                if theirs.get(name) != element_id or their_units.get(element_id) != units_of[element_id]
            }
            changed.update(name for name in theirs if name not in names)
    pieces: dict[str, _UnitLinks] = {}
    for model in models:
        unit_id = model.unit_id
        piece = like.pieces.get(unit_id) if like is not None else None
        if (
            piece is None
            or piece.model is not model
            or model.outline.foreign_pointers
            or not changed.isdisjoint(piece.names_used)
        ):
            piece = unit_links(model)
        pieces[unit_id] = piece
    distinct = len(pieces) == len(models)
    ordered = [pieces[model.unit_id] for model in models]
    if not distinct:  # a unit id held twice: each occurrence counts, as in canonical order
        ordered = [
            piece if piece.model is model else unit_links(model)
            for model, piece in zip(models, ordered, strict=True)
        ]
    gathered = _gathered_like(like, pieces, found, patched[2]) if like is not None and patched is not None else None
    if gathered is not None:
        references, document_edges, element_units = gathered
        sound = True
    else:
        references, document_edges, element_units = _gathered(ordered, distinct, named_units)
        sound = distinct and all(piece.sources.items() <= element_units.items() for piece in ordered)
    dangling: dict[str, list[str]] = {}
    for piece in ordered:
        for name, source_id in piece.dangling:
            dangling.setdefault(name, []).append(source_id)
    units_of = element_units
    stored = _StoredReferences(
        idx.unit_models, lambda element_id: units_of.get(element_id) or elements.unit_of(element_id)
    )
    return ModelGraph(
        index=idx,
        document_edges=document_edges,
        names=MappingProxyType(names),
        dangling=MappingProxyType({name: tuple(ids) for name, ids in sorted(dangling.items())}),
        references=_LinkTable(references, stored, resolve, idx),
        name_references=tuple(chain.from_iterable(piece.name_references for piece in ordered)),
        named=named,  # plain dicts, never changed after this: the queries' hottest lookups
        element_units=units_of,
        referring=tuple(chain.from_iterable(piece.referring for piece in ordered)),
        stored_references=stored,
        pieces=pieces,
        names_found=found,
        sound=sound,
    )
