"""Build the graph of one snapshot: documents linked by the references between them.

It is built from the units' outlines (``UnitOutline``: names, references, ids and types read at load),
never from whole elements. Each unit's piece says which elements and other units its names lead to
(``names_used`` of its outline resolved), which is what native analysis needs of every unit. Between
documents: ``document_edges`` from a unit to every other unit it refers to (``kind`` ``name``: a
by-name reference; ``text``: a name inside an expression, XPath or template), and the same as a
networkx graph with the unit containment tree (``contains``), made on first use. The element level
is kept beside it as plain lookups: ``references`` gives each element's resolved outgoing references,
``named`` every named element, ``element_units`` the unit of every named or referring element. In a
sound graph (see ``ModelGraph.sound``) an element's links are resolved when first asked for, from its
unit's outline, and the lookups gathered from every element's links (document edges, dangling names)
when first asked for: a check asks for few of them. A networkx node per element (hundreds of
thousands in a large app) cost more than everything else in a check and no query walked it.

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


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelGraph:
    """One snapshot's document graph with its index, element links and the names it could not resolve.

    What native analysis needs of every unit (the elements and other units its names lead to) is worked
    out when the graph is built; each element's resolved links, and everything gathered from them
    (:attr:`document_edges`, :attr:`referring`, :attr:`name_references`, :attr:`dangling`, the
    referring elements in :attr:`element_units`), on first use, unit by unit. A check asks for a few
    percent of them; resolving them all took most of building a large app's graph.
    """

    index: SnapshotIndex
    names: Mapping[str, str]
    """Qualified name → element id (the first element of that name, in canonical order)."""
    references: Mapping[str, tuple[ElementLink, ...]]
    """Element id → its resolved outgoing references (one per target, the first in canonical order)."""
    named: Mapping[str, NamedElement]
    """Element id → id, type, qualified name and parent of every element with a qualified name."""
    element_units: Mapping[str, str]
    """Element id → unit, for every named element and every element with links."""
    stored_references: Mapping[str, tuple[Reference, ...]]
    """Element id → its references as stored (unresolved, every property), for elements that have any."""
    pieces: Mapping[str, _UnitLinks] = field(compare=False, repr=False)
    """Unit id → what the unit contributes (see ``like`` in :func:`build_graph`)."""
    names_found: _Names | None = field(default=None, compare=False, repr=False)
    """The named elements as found (see ``like`` in :func:`build_graph`)."""
    sound: bool = field(default=False, compare=False, repr=False)
    """Whether each unit's links can be told unit by unit: no unit id held twice, and no id of an element
    with a reference by name or in text held by two units or named in another (as in any model Studio
    Pro saved). A sound graph resolves links when asked, and the other side of a check takes its
    pieces over; one that is not gathers everything up front, one reference at a time."""
    whole: _Whole = field(compare=False, repr=False)
    """Everything gathered from every unit's links (on first use for a sound graph)."""
    naming_units: Mapping[str, str] | None = field(default=None, compare=False, repr=False)
    """Element id → unit, for every element with a reference by name or in text (sound graphs only)."""
    _networkx: list[nx.DiGraph[str]] = field(default_factory=list, compare=False, repr=False)

    @property
    def document_edges(self) -> Mapping[tuple[str, str], str]:
        """(Referring unit, referred unit) → kind of the first link between them (``name`` or ``text``)."""
        return self.whole.get().document_edges

    @property
    def dangling(self) -> Mapping[str, tuple[str, ...]]:
        """Unresolved qualified name → ids of the elements that refer to it."""
        return self.whole.get().dangling

    @property
    def name_references(self) -> tuple[tuple[str, str], ...]:
        """(source, target) element ids of every resolved by-name and in-text reference."""
        return self.whole.get().name_references

    @property
    def referring(self) -> tuple[tuple[str, str, str], ...]:
        """(element id, type, unit) of every element with a link by name or in text, in canonical order."""
        return self.whole.get().referring

    def referring_in(self, unit_id: str, element_type: str) -> Iterator[str]:
        """Ids of the elements of one type in one unit that :attr:`referring` lists, in order: for a
        sound graph from the unit's own outline, without gathering every unit's links."""
        naming_units = self.naming_units
        if naming_units is None:
            listed = self.whole.get().referring_by_unit.get(unit_id, ())
            yield from (element_id for element_id, found_type, _ in listed if found_type == element_type)
            return
        model = self.index.unit_models.get(unit_id)
        if model is None or element_type not in model.outline.types:
            return
        outline = model.outline
        rows = outline.referring
        for position in outline.naming:
            element_id, found_type, _ = rows[position]
            if found_type == element_type and self.links(element_id):
                yield element_id

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
        naming_units = self.naming_units
        if naming_units is not None and self.names_found is not None:
            # Sound: a named element's unit, else the one unit whose outline lists it with links.
            found = self.names_found.units.get(element_id) or naming_units.get(element_id)
        else:
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
    """Element id → resolved links, resolved on first use from the element's unit's outline; a graph that
    is not sound resolves the elements with by-name or in-text references up front (``gathered``)."""

    __slots__ = ("_index", "_later", "_resolve", "_stored", "gathered")

    def __init__(
        self,
        gathered: dict[str, tuple[ElementLink, ...]],
        stored: Mapping[str, tuple[Reference, ...]],
        resolve: Callable[[str, tuple[Reference, ...], bool], tuple[ElementLink, ...]],
        index: SnapshotIndex,
    ) -> None:
        self.gathered = gathered  # resolved up front (a graph that is not sound), never changed after
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


class _UnitDetail(NamedTuple):
    """One unit's resolved links and what is gathered from them, worked out when first asked for."""

    references: dict[str, tuple[ElementLink, ...]]
    name_references: list[tuple[str, str]]
    referring: list[tuple[str, str, str]]
    edges: dict[tuple[str, str], str]
    """(This unit, target unit) → kind of the unit's first link into it."""
    dangling: list[tuple[str, str]]
    """(Unresolved name, referring element id), in order."""
    sources: dict[str, str]
    """Id of every element with links → this unit."""


class _UnitLinks:
    """What one unit contributes to the graph: kept per unit so that the other snapshot of a check
    can take it over for a unit it shares, when no name the unit refers to resolves differently.

    The elements and units it leads to are worked out with the graph; its element links
    (:attr:`detail`) when first asked for, by whichever graph holding it asks first: a piece is only
    shared where every name it uses resolves alike on both sides, so both would find the same.
    """

    __slots__ = ("detail", "links_to", "model", "targets")

    def __init__(self, model: UnitModel, targets: frozenset[str], links_to: frozenset[str]) -> None:
        self.model = model
        self.targets = targets
        """The elements the unit's names resolve to (what the document refers to)."""
        self.links_to = links_to
        """The other units those elements are in."""
        self.detail: _UnitDetail | None = None


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
    first = names.setdefault
    for model in models:
        entries = model.outline.named
        if not entries:
            continue
        unit_id = model.unit_id
        total += len(entries)
        for entry in entries:
            element_id, _, qualified_name, _ = entry  # unpacked, not four attribute look-ups (108,857 at scale)
            if first(qualified_name, element_id) != element_id:
                twice.add(qualified_name)  # held before (or an id held twice: see below)
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


class _Gathered(NamedTuple):
    """Everything gathered from every unit's links, in canonical order."""

    references: dict[str, tuple[ElementLink, ...]]
    document_edges: Mapping[tuple[str, str], str]
    element_units: dict[str, str]
    """The unit of every named or linked element: a named element's unit wins over a referring one's,
    and among referring ones the first in order."""
    referring: tuple[tuple[str, str, str], ...]
    referring_by_unit: dict[str, list[tuple[str, str, str]]]
    """:attr:`referring` by the unit that lists each element, in order."""
    name_references: tuple[tuple[str, str], ...]
    dangling: Mapping[str, tuple[str, ...]]


def _gathered(details: list[_UnitDetail], distinct: bool, named_units: dict[str, str]) -> _Gathered:
    """Links, document edges and element units gathered unit by unit (dict operations that run in C,
    not a step per element)."""
    references: dict[str, tuple[ElementLink, ...]] = {}
    document_edges: dict[tuple[str, str], str] = {}
    element_units: dict[str, str] = {}
    for detail in reversed(details):
        if detail.sources:
            element_units.update(detail.sources)
    for detail in details:
        if not detail.references:
            continue  # a unit without links has no edges either (a folder, a module)
        references.update(detail.references)
        if not distinct:
            for edge, kind in detail.edges.items():
                document_edges.setdefault(edge, kind)
        elif detail.edges:
            document_edges.update(detail.edges)  # keys start with the piece's own unit: none is seen twice
    element_units.update(named_units)
    dangling: dict[str, list[str]] = {}
    by_unit: dict[str, list[tuple[str, str, str]]] = {}
    for detail in details:
        for name, source_id in detail.dangling:
            dangling.setdefault(name, []).append(source_id)
        if detail.referring:  # every row of a unit's detail is that unit's
            by_unit.setdefault(detail.referring[0][2], []).extend(detail.referring)
    return _Gathered(
        references,
        MappingProxyType(document_edges),
        element_units,
        tuple(chain.from_iterable(detail.referring for detail in details)),
        by_unit,
        tuple(chain.from_iterable(detail.name_references for detail in details)),
        MappingProxyType({name: tuple(ids) for name, ids in sorted(dangling.items())}),
    )


class _Whole:
    """:func:`_gathered` of a graph, worked out on first use (up front for a graph that is not sound)."""

    __slots__ = ("_gather", "_gathered")

    def __init__(self, gather: Callable[[], _Gathered]) -> None:
        self._gather = gather
        self._gathered: _Gathered | None = None

    @property
    def done(self) -> bool:
        """Whether it has been worked out (tests hold a check to never asking)."""
        return self._gathered is not None

    def get(self) -> _Gathered:
        """Everything gathered, worked out the first time."""
        if self._gathered is None:
            self._gathered = self._gather()
        return self._gathered


class _ElementUnits(Mapping[str, str]):
    """Element id → unit for a sound graph: a named element's from the names, a referring one's from the
    one unit that lists it, if it has links (the same answers :func:`_gathered` gives, without it)."""

    __slots__ = ("_detail", "_named", "_naming", "_pieces", "_whole")

    def __init__(
        self,
        named_units: Mapping[str, str],
        naming_units: Mapping[str, str],
        pieces: Mapping[str, _UnitLinks],
        detail: Callable[[_UnitLinks], _UnitDetail],
        whole: _Whole,
    ) -> None:
        self._named = named_units
        self._naming = naming_units
        self._pieces = pieces
        self._detail = detail
        self._whole = whole

    def __getitem__(self, element_id: str) -> str:
        found = self._named.get(element_id)
        if found is not None:
            return found
        unit_id = self._naming.get(element_id)
        if unit_id is not None and element_id in self._detail(self._pieces[unit_id]).sources:
            return unit_id
        raise KeyError(element_id)

    def __iter__(self) -> Iterator[str]:
        return iter(self._whole.get().element_units)

    def __len__(self) -> int:
        return len(self._whole.get().element_units)


def _naming_units(models: tuple[UnitModel, ...], named_units: Mapping[str, str]) -> dict[str, str] | None:
    """Element id → unit of every element with a reference by name or in text; None when one is held
    twice or is named in another unit (a damaged model: which unit it counts in then follows canonical
    order over every unit, so the graph is gathered up front)."""
    naming_units = {element_id: model.unit_id for model in models for element_id in model.outline.naming_ids}
    if len(naming_units) != sum(len(model.outline.naming_ids) for model in models):
        return None
    both = naming_units.keys() & named_units.keys()
    if any(naming_units[element_id] != named_units[element_id] for element_id in both):
        return None
    return naming_units


def _naming_units_like(
    theirs: Mapping[str, str], changes: UnitChanges, named_units: Mapping[str, str]
) -> dict[str, str] | None:
    """What :func:`_naming_units` gives, taken over from the other side's with the units that differ
    taken out and put in: only their ids, and the named ids they hold, can make it differ."""
    naming_units = dict(theirs)
    for model in changes.gone:
        for element_id in model.outline.naming_ids:
            del naming_units[element_id]  # the other side is sound: held by this unit alone
    for model in changes.new:
        unit_id = model.unit_id
        ids = model.outline.naming_ids
        if len(set(ids)) != len(ids):
            return None  # held twice in one unit
        for element_id in ids:
            if naming_units.setdefault(element_id, unit_id) != unit_id:
                return None
            if named_units.get(element_id, unit_id) != unit_id:
                return None
    for model in changes.new:
        for entry in model.outline.named:
            if naming_units.get(entry.id, model.unit_id) != model.unit_id:
                return None
    return naming_units


def build_graph(
    snapshot: Snapshot, index: SnapshotIndex | None = None, like: ModelGraph | None = None, *, lazy: bool = True
) -> ModelGraph:
    """The graph of one snapshot, from its units' outlines; pure: the same snapshot always gives the same
    graph. No unit's elements are built for it.

    ``like``: the graph of the other snapshot of a check. Its named elements are taken over with the
    units that differ taken out and put in (names held twice follow canonical order), and a unit both
    hold (the very same unit model) whose referred names all resolve to the same elements in the same
    units keeps its piece (what it links to, and its element links once asked for) instead of working
    it out again: the result is the same, at a fraction of the cost.

    ``lazy``: False gathers every element's links up front, as a graph that is not sound always does
    (the tests hold both to the same answers).
    """
    idx = index if index is not None else index_snapshot(snapshot)
    elements = idx.elements
    models = snapshot.elements.models
    patched = _names_like(models, like, idx) if like is not None else None
    found = patched[0] if patched is not None else _names_of(models)
    names, named, named_units = found.names, found.named, found.units
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
    ) -> tuple[ElementLink, ...]:
        """Links of one element; ``outlined``: its references come from an outline, which says which
        pointer targets are outside the unit (otherwise every target is looked up). Unresolved names
        go to ``dangling``."""
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

    def unit_detail(model: UnitModel) -> _UnitDetail:
        unit_id = model.unit_id
        outline = model.outline
        rows = outline.referring
        references: dict[str, tuple[ElementLink, ...]] = {}
        name_references: list[tuple[str, str]] = []
        referring: list[tuple[str, str, str]] = []
        edges: dict[tuple[str, str], str] = {}
        dangling: list[tuple[str, str]] = []
        for position in outline.naming:
            source_id, source_type, element_references = rows[position]
            if len(element_references) == 1 and (reference := element_references[0]).kind is name_kind:
                # Nineteen of twenty: one reference by name (what ``resolve`` does, inline).
                target_name = reference.target
                resolved = names_get(target_name)
                if resolved is None:
                    dangling.append((target_name, source_id))
                    continue
                references[source_id] = (new_link(ElementLink, (resolved, "name", reference.property)),)
                referring.append((source_id, source_type, unit_id))
                name_references.append((source_id, resolved))
                target_unit = named_units[resolved]
                if target_unit != unit_id and (unit_id, target_unit) not in edges:
                    edges[(unit_id, target_unit)] = "name"
                continue
            links = resolve(source_id, element_references, True, dangling)
            if not links:
                continue
            references[source_id] = links
            referring.append((source_id, source_type, unit_id))
            for link in links:
                if link.kind == "pointer":
                    continue
                name_references.append((source_id, link.target))
                target_unit = named_units[link.target]
                if target_unit != unit_id:
                    edges.setdefault((unit_id, target_unit), link.kind)
        sources = dict.fromkeys(references, unit_id)  # every element with links (sources) -> this unit
        return _UnitDetail(references, name_references, referring, edges, dangling, sources)

    def detail(piece: _UnitLinks) -> _UnitDetail:
        if piece.detail is None:
            piece.detail = unit_detail(piece.model)
        return piece.detail

    unit_get = named_units.__getitem__

    def unit_links(model: UnitModel) -> _UnitLinks:
        """A unit's piece: the elements its names resolve to and the other units they are in."""
        used = model.outline.names_used
        if not used:
            return _UnitLinks(model, _NOTHING, _NOTHING)
        targets = set(map(names_get, used))
        targets.discard(None)
        links_to = set(map(unit_get, targets))  # type: ignore[arg-type]  # None is gone
        links_to.discard(model.unit_id)
        return _UnitLinks(model, frozenset(targets), frozenset(links_to))  # type: ignore[arg-type]

    changed: set[str] = set()
    if like is not None:
        theirs, their_units = like.names, like.names_found.units if like.names_found else like.element_units
        if patched is not None:
            # Only the names of the units that differ can resolve differently.
            changed = {
                name
                for name in patched[1]
                if theirs.get(name) != names.get(name)
                or (name in names and their_units.get(names[name]) != named_units[names[name]])
            }
        else:
            changed = {
                name
                for name, element_id in names.items()
                if theirs.get(name) != element_id or their_units.get(element_id) != named_units[element_id]
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
            or not changed.isdisjoint(model.outline.names_used)
        ):
            piece = unit_links(model)
        pieces[unit_id] = piece
    distinct = len(pieces) == len(models)

    def gather() -> _Gathered:
        if distinct:
            return _gathered([detail(pieces[model.unit_id]) for model in models], True, named_units)
        details: list[_UnitDetail] = []
        for model in models:  # a unit id held twice: each occurrence counts, as in canonical order
            piece = pieces[model.unit_id]
            details.append(detail(piece) if piece.model is model else unit_detail(model))
        return _gathered(details, False, named_units)

    whole = _Whole(gather)
    naming_units: dict[str, str] | None = None
    if lazy and distinct and found.holders is not None:
        if patched is not None and like is not None and like.naming_units is not None:
            naming_units = _naming_units_like(like.naming_units, patched[2], named_units)
        else:
            naming_units = _naming_units(models, named_units)
    element_units: Mapping[str, str]
    if naming_units is not None:
        sound = True
        element_units = _ElementUnits(named_units, naming_units, pieces, detail, whole)

        def locate(element_id: str) -> str | None:
            return named_units.get(element_id) or naming_units.get(element_id) or elements.unit_of(element_id)

        gathered: dict[str, tuple[ElementLink, ...]] = {}
    else:
        whole_graph = whole.get()
        element_units = whole_graph.element_units
        sound = distinct and all(
            detail(pieces[model.unit_id]).sources.items() <= whole_graph.element_units.items() for model in models
        )

        def locate(element_id: str) -> str | None:
            return element_units.get(element_id) or elements.unit_of(element_id)

        gathered = whole_graph.references
    stored = _StoredReferences(idx.unit_models, locate)
    return ModelGraph(
        index=idx,
        names=MappingProxyType(names),
        references=_LinkTable(gathered, stored, resolve, idx),
        named=named,  # plain dicts, never changed after this: the queries' hottest lookups
        element_units=element_units,
        stored_references=stored,
        pieces=pieces,
        names_found=found,
        sound=sound,
        whole=whole,
        naming_units=naming_units,
    )


_NOTHING: frozenset[str] = frozenset()
