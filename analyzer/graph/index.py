"""Lookups over one snapshot that every layer above needs: elements by id, documents, modules.

Made from the units' outlines; a unit's elements are built the first time one of them is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter, itemgetter, lt
from types import MappingProxyType
from typing import TypeVar

from analyzer.model.snapshot import (
    ElementKey,
    ModelElement,
    Snapshot,
    Unit,
    UnitModel,
    UnitOutline,
    element_key,
    element_keys,
)

MODULE_TYPE = "Projects$ModuleImpl"

SCANS_BEFORE_MAP = 16
"""Lookups of an unnamed id answered by searching the units' ids before the map of every id is made:
at scale a search costs 20-40 ms and the map about a second, so a check that asks for few pays little
and one that asks for many soon has the map."""

PATCH_SHARE = 4
"""The other side of a check lends its lookups when at most one unit in this many differs; past that,
building them anew costs no more."""

_Picked = TypeVar("_Picked")
_UNIT_ID = attrgetter("unit_id")
_CONTAINER = attrgetter("container")
_ID = itemgetter(0)
"""A :class:`NamedElement`'s id (its first field), taken in C."""


@dataclass(frozen=True, slots=True)
class UnitChanges:
    """How one snapshot's unit models differ from the other side's, by identity (both loads of a check
    hand out the same object for a unit whose bytes and place are equal; see ``UnitModel``)."""

    gone: tuple[UnitModel, ...]
    """Models of the other side this snapshot does not hold."""
    new: tuple[UnitModel, ...]
    """Models of this snapshot the other side does not hold."""

    def unit_ids(self) -> set[str]:
        """The ids of the units that differ (a unit changed in place is both gone and new)."""
        return {model.unit_id for model in (*self.gone, *self.new)}


def unit_changes(models: tuple[UnitModel, ...], theirs: tuple[UnitModel, ...]) -> UnitChanges | None:
    """The units that differ from ``theirs``; None when a patch would not pay or would not be sound:
    either side out of canonical order (by unit id, each once), or more than one unit in
    :data:`PATCH_SHARE` differing."""
    if not _in_unit_order(models) or not _in_unit_order(theirs):
        return None
    mine = {model.unit_id: model for model in models}
    held = {model.unit_id: model for model in theirs}
    gone = tuple(model for model in theirs if mine.get(model.unit_id) is not model)
    new = tuple(model for model in models if held.get(model.unit_id) is not model)
    if PATCH_SHARE * (len(gone) + len(new)) > len(models):
        return None
    return UnitChanges(gone, new)


def _in_unit_order(models: tuple[UnitModel, ...]) -> bool:
    """Whether the units are in the canonical order a patch relies on: by unit id, each once."""
    ids = list(map(_UNIT_ID, models))
    return all(map(lt, ids, ids[1:]))  # in C: this runs on every unit of both sides


def short_type(type_name: str) -> str:
    """``Forms$Page`` → ``Page``: how a Mendix developer names an element type."""
    return type_name.rsplit("$", 1)[-1].removesuffix("Impl")


class ElementLookup(Mapping[str, ModelElement]):
    """Elements by id, building a unit's elements the first time one of them is asked for.

    Whether an id exists (``in``) and which unit holds it (:meth:`unit_of`) are answered from the units'
    outlines without building anything; iterating builds every unit (nothing on a check's path does).
    """

    __slots__ = ("_built", "_distinct", "_found", "_models", "_named", "_scans", "_where_map")

    def __init__(
        self, models: tuple[UnitModel, ...], like: ElementLookup | None = None, changes: UnitChanges | None = None
    ) -> None:
        """``like``: the other side's lookup, whose roots and named elements are taken over with the
        units in ``changes`` taken out and put in, when no id is held by two units on either side."""
        self._models = models
        self._where_map: dict[ElementKey, UnitModel] | None = None
        self._scans = 0
        self._found: dict[str, ModelElement] = {}
        self._built: set[str] = set()
        # Roots and named elements are what queries ask for; finding them needs no map of every id.
        patched = _named_like(like, changes) if like is not None and changes is not None else None
        if patched is not None:
            self._named, self._distinct = patched, True
            return
        named: dict[str, UnitModel] = {}
        held = 0
        for model in models:
            outline = model.outline
            named[outline.root_id] = model
            if outline.named:
                named.update(dict.fromkeys(map(_ID, outline.named), model))  # ids taken in C, not a generator
            held += _held(outline)
        self._named = named
        self._distinct = held == len(named)  # no root or named id held by two units: a patch may follow

    @property
    def _where(self) -> dict[ElementKey, UnitModel]:
        """Stored id → unit model, made on first use (a check that asks only for named elements never
        needs it)."""
        if self._where_map is None:
            where: dict[ElementKey, UnitModel] = {}
            for model in self._models:
                where.update(dict.fromkeys(element_keys(model.outline), model))
            self._where_map = where
        return self._where_map

    def _model(self, element_id: str) -> UnitModel | None:
        model = self._named.get(element_id)
        if model is not None:
            return model
        if self._where_map is None and self._scans < SCANS_BEFORE_MAP:
            self._scans += 1
            return self._scan(element_id)
        where = self._where
        model = where.get(element_key(element_id))
        if model is None and element_id.__class__ is str:
            model = where.get(element_id)
        return model

    def _scan(self, element_id: str) -> UnitModel | None:
        """The unit :attr:`_where` would give, found by searching each unit's ids (their 16-byte GUIDs
        in one string, searched in C): tens of milliseconds, where the map of every id costs a second
        in a large app. A check asks this for few ids (an unnamed element changed; a side file or a
        setting, which no unit holds)."""
        key = element_key(element_id)
        found = self._holder(key)
        if found is None and key != element_id:
            found = self._holder(element_id)
        return found

    def _holder(self, key: ElementKey) -> UnitModel | None:
        """The last unit in canonical order that holds ``key`` (the map keeps the last one too)."""
        guid = key.__class__ is bytes and len(key) == 16
        for model in reversed(self._models):
            keys = model.outline.keys
            if keys.__class__ is bytes:
                if not guid:
                    continue
                position = keys.find(key)  # type: ignore[arg-type]  # bytes, checked above
                while position % 16 and position != -1:  # a match across two ids is none
                    position = keys.find(key, position + 1)  # type: ignore[arg-type]
                if position != -1:
                    return model
            elif key in keys:
                return model
        return None

    def __getitem__(self, element_id: str) -> ModelElement:
        found = self._found.get(element_id)
        if found is not None:
            return found
        model = self._model(element_id)
        if model is None or model.unit_id in self._built:
            raise KeyError(element_id)
        self._built.add(model.unit_id)
        named, found_here = self._named, self._found
        for element in model.elements:
            # An id held twice (a damaged model): a named element belongs to the unit read last, as a
            # dict of every element would keep it; an unnamed one to the unit built first.
            owner = named.get(element.id)
            if owner is model:
                found_here[element.id] = element
            elif owner is None:
                found_here.setdefault(element.id, element)
        return self._found[element_id]

    def __contains__(self, element_id: object) -> bool:
        return isinstance(element_id, str) and (element_id in self._found or self._model(element_id) is not None)

    def is_named(self, element_id: str) -> bool:
        """Whether the id is a unit root or a named element (known without a map of every id)."""
        return element_id in self._named

    def unit_of(self, element_id: str) -> str | None:
        """The unit that holds an element, without building it."""
        found = self._found.get(element_id)
        if found is not None:
            return found.unit
        model = self._model(element_id)
        return model.unit_id if model is not None else None

    def __iter__(self) -> Iterator[str]:
        seen: set[int] = set()
        for model in self._where.values():
            if id(model) not in seen:
                seen.add(id(model))
                for element in model.elements:
                    if element.id in self:
                        yield element.id

    def __len__(self) -> int:
        return len(self._where)


def _held(outline: UnitOutline) -> int:
    """How many roots and named ids a unit holds (its root is its first named element when named)."""
    entries = outline.named
    return len(entries) + (0 if entries and entries[0].id == outline.root_id else 1)


def _named_like(like: ElementLookup, changes: UnitChanges) -> dict[str, UnitModel] | None:
    """``like``'s roots and named elements with the changed units taken out and put in; None when an
    id would be held twice (the full build then decides which unit wins, as in canonical order)."""
    if not like._distinct:
        return None
    named = dict(like._named)
    for model in changes.gone:
        outline = model.outline
        for element_id in (outline.root_id, *(entry.id for entry in outline.named)):
            if named.get(element_id) is model:
                del named[element_id]
    for model in changes.new:
        outline = model.outline
        ids = (outline.root_id, *(entry.id for entry in outline.named))
        if len(set(ids)) != _held(outline) or not named.keys().isdisjoint(ids):
            return None
        named.update(dict.fromkeys(ids, model))
    return named


class _ByUnit(Mapping[str, _Picked]):
    """Unit id → something of its built elements (all of them, or the root), built on first use."""

    __slots__ = ("_models", "_pick")

    def __init__(self, models: Mapping[str, UnitModel], pick: Callable[[tuple[ModelElement, ...]], _Picked]) -> None:
        self._models = models
        self._pick = pick

    def __getitem__(self, unit_id: str) -> _Picked:
        return self._pick(self._models[unit_id].elements)

    def __contains__(self, unit_id: object) -> bool:
        return unit_id in self._models

    def __iter__(self) -> Iterator[str]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)


def _all(elements: tuple[ModelElement, ...]) -> tuple[ModelElement, ...]:
    return elements


def _root(elements: tuple[ModelElement, ...]) -> ModelElement:
    return elements[0]


@dataclass(frozen=True, slots=True)
class SnapshotIndex:
    """Elements by id, the unit root of every unit, and a readable label for every document."""

    snapshot: Snapshot
    elements: ElementLookup
    units: Mapping[str, Unit]
    unit_roots: Mapping[str, ModelElement]
    document_labels: Mapping[str, str]
    """Unit id → how a person names the document (``Module.Page``, ``Module/DomainModel``)."""
    modules: Mapping[str, str]
    """Unit id → name of the module the unit sits in (absent for project-level units)."""
    unit_elements: Mapping[str, tuple[ModelElement, ...]]
    """Unit id → its elements, root first, depth-first (built when first asked for)."""
    unit_models: Mapping[str, UnitModel]
    """Unit id → its model: the outline, and the elements once built."""
    unit_types: Mapping[str, str]
    """Unit id → the ``$Type`` of its root, without building it."""
    lent: tuple[Snapshot, UnitChanges] | None = field(default=None, compare=False, repr=False)
    """The other side's snapshot this index was taken over from and how the units differ from it (the
    graph built like the other side's needs the same)."""

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
        model = self.unit_models.get(element.unit)
        if model is not None and model.outline.root_id != element.id:
            return f"{document} › {short_type(element.type)}"
        return document

    def document_of(self, element: ModelElement) -> ModelElement:
        """The unit root (document, module, folder, domain model) that holds ``element``."""
        return self.unit_roots[element.unit]


def index_snapshot(snapshot: Snapshot, like: SnapshotIndex | None = None) -> SnapshotIndex:
    """Build the lookups once per snapshot, from the units' outlines; every query reuses them.

    ``like``: the index of the other snapshot of a check. When few units differ (by identity, see
    :func:`unit_changes`) and none of them holds other units, its modules, labels and roots are taken
    over with those units taken out and put in: the same lookups, without a step per unit and element
    (0.35 -> 0.1 s at scale).
    """
    units = {unit.id: unit for unit in snapshot.units}
    models: dict[str, UnitModel] = {}
    for model in snapshot.elements.models:
        models.setdefault(model.unit_id, model)
    outlines = {unit_id: model.outline for unit_id, model in models.items()}
    changes = unit_changes(snapshot.elements.models, like.snapshot.elements.models) if like is not None else None
    if like is not None and changes is not None and _holds_none(changes, units, like.units):
        modules, labels, unit_types = _patched_names(like, changes, units, outlines)
    else:
        modules = _modules(units, outlines)
        labels = {unit_id: _label(unit_id, outline, modules) for unit_id, outline in outlines.items()}
        unit_types = {unit_id: outline.root_type for unit_id, outline in outlines.items()}
    frozen_models = MappingProxyType(models)
    return SnapshotIndex(
        snapshot=snapshot,
        elements=ElementLookup(
            snapshot.elements.models, like.elements if like is not None else None, changes
        ),
        units=MappingProxyType(units),
        unit_roots=_ByUnit(frozen_models, _root),
        document_labels=MappingProxyType(labels),
        modules=MappingProxyType(modules),
        unit_elements=_ByUnit(frozen_models, _all),
        unit_models=frozen_models,
        unit_types=MappingProxyType(unit_types),
        lent=(like.snapshot, changes) if like is not None and changes is not None else None,
    )


def _modules(units: Mapping[str, Unit], outlines: Mapping[str, UnitOutline]) -> dict[str, str]:
    """Unit id → its module's name: its own if it is a module, else its container's. Every unit is
    climbed once, remembered for the units below it (a cycle of containers leads to no module)."""
    module_of: dict[str, str | None] = {}
    for unit_id in units:
        path: list[str] = []
        current: str | None = unit_id
        found: str | None = None
        while current is not None and current in units:
            if current in module_of:
                found = module_of[current]
                break
            if current in path:
                break
            path.append(current)
            outline = outlines.get(current)
            if outline is not None and outline.root_type == MODULE_TYPE and outline.root_name:
                found = outline.root_name
                break
            current = units[current].container
        module_of.update(dict.fromkeys(path, found))
    return {unit_id: module for unit_id in units if (module := module_of[unit_id]) is not None}


def _label(unit_id: str, outline: UnitOutline, modules: Mapping[str, str]) -> str:
    """How a person names a document: ``Module.Page``, ``Module/DomainModel``, ``Project``."""
    if outline.root_qualified_name:
        return outline.root_qualified_name
    if unit_id in modules and outline.root_name:
        return f"{modules[unit_id]}/{outline.root_name}"
    if unit_id in modules:
        return f"{modules[unit_id]}/{short_type(outline.root_type)}"
    return short_type(outline.root_type)


def _holds_none(changes: UnitChanges, units: Mapping[str, Unit], their_units: Mapping[str, Unit]) -> bool:
    """Whether no unit that differs holds another unit on either side (a module or folder changed
    would change the module of everything below it)."""
    return changes.unit_ids().isdisjoint(map(_CONTAINER, chain(units.values(), their_units.values())))


def _patched_names(
    like: SnapshotIndex, changes: UnitChanges, units: Mapping[str, Unit], outlines: Mapping[str, UnitOutline]
) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Modules, labels and root types taken over from ``like``, the changed units taken out and put in,
    in the order a full build gives (units as the snapshot lists them; labels and types by model)."""
    modules, labels, unit_types = _copied(like.modules), _copied(like.document_labels), _copied(like.unit_types)
    reorder = units.keys() != like.units.keys() or outlines.keys() != like.unit_models.keys()
    for model in changes.gone:
        if model.unit_id not in outlines:
            labels.pop(model.unit_id, None)
            unit_types.pop(model.unit_id, None)
    differing = changes.unit_ids() | (units.keys() ^ like.units.keys())
    for unit_id in differing:
        module = _modules(_chain_of(unit_id, units), outlines).get(unit_id) if unit_id in units else None
        if (unit_id in modules) != (module is not None):
            reorder = True  # a key comes or goes: its place in the order is not kept
        if module is None:
            modules.pop(unit_id, None)
        else:
            modules[unit_id] = module
    for model in changes.new:
        labels[model.unit_id] = _label(model.unit_id, model.outline, modules)
        unit_types[model.unit_id] = model.outline.root_type
    if reorder:
        modules = {unit_id: modules[unit_id] for unit_id in units if unit_id in modules}
        labels = {unit_id: labels[unit_id] for unit_id in outlines}
        unit_types = {unit_id: unit_types[unit_id] for unit_id in outlines}
    return modules, labels, unit_types


def _copied(mapping: Mapping[str, str]) -> dict[str, str]:
    """A plain copy; of a read-only view, the dict beneath copied at once (``dict(view)`` goes key by key,
    a tenth of a second for three views of a large app)."""
    return mapping.copy() if isinstance(mapping, MappingProxyType | dict) else dict(mapping)


def _chain_of(unit_id: str, units: Mapping[str, Unit]) -> dict[str, Unit]:
    """A unit and its containers, up to the top or a cycle: all :func:`_modules` climbs for it."""
    found: dict[str, Unit] = {}
    current: str | None = unit_id
    while current is not None and current in units and current not in found:
        found[current] = units[current]
        current = units[current].container
    return found
