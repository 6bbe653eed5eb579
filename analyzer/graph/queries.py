"""Questions the rules ask of one model graph: what is native, what a native profile reaches, which
entities devices sync, which microflows nanoflows call, and which native pages a change reaches.

All answers are computed once per graph (:func:`analyze_native`) and kept as frozen data.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from analyzer.graph.build import ModelGraph
from analyzer.model.snapshot import ModelElement, ReferenceKind

PAGE = "Forms$Page"
SNIPPET = "Forms$Snippet"
LAYOUT = "Forms$Layout"
NANOFLOW = "Microflows$Nanoflow"
MICROFLOW = "Microflows$Microflow"
JS_ACTION = "JavaScriptActions$JavaScriptAction"
NATIVE_PROFILE = "Navigation$NativeNavigationProfile"
OFFLINE_CONFIG = "Navigation$OfflineEntityConfig"
ENTITY_TYPES = frozenset({"DomainModels$EntityImpl", "DomainModels$Entity"})
ATTRIBUTE = "DomainModels$Attribute"
ASSOCIATION_TYPES = frozenset({"DomainModels$Association", "DomainModels$CrossAssociation"})
GENERALIZATION = "DomainModels$Generalization"
DOMAIN_MODEL = "DomainModels$DomainModel"

CLIENT_DOCUMENTS = frozenset({PAGE, SNIPPET, LAYOUT, NANOFLOW})
"""Documents in the native bundle whose references lead further through the app."""
REACHABLE_DOCUMENTS = CLIENT_DOCUMENTS | {JS_ACTION, MICROFLOW}
"""Documents a native profile can reach; microflows and JS actions are reached but not followed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncedEntity:
    """An entity whose objects live on devices, with how it is synchronised and why it is synced."""

    entity_id: str
    qualified_name: str
    sync_mode: str
    configured: bool
    """True when the native profile has an ``OfflineEntityConfig`` row for it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NativeFacts:
    """What a native profile puts on devices, computed once per snapshot."""

    has_native_profile: bool
    native_layouts: frozenset[str]
    native_pages: frozenset[str]
    """Unit ids of pages whose layout's content is native."""
    reached_documents: frozenset[str]
    """Unit ids of pages, snippets, layouts, nanoflows, JS actions and microflows the profile reaches."""
    synced_entities: Mapping[str, SyncedEntity]
    """Entity element id → how it is synced."""
    synced_associations: frozenset[str]
    microflows_called_from_nanoflows: frozenset[str]
    """Unit ids of microflows that some nanoflow calls (old bundles keep calling them by name)."""
    referrers: Mapping[str, frozenset[str]]
    """Element id → unit ids of the documents that refer to it (turned around on first use: nothing on
    a check's path asks)."""
    reached_referrers: Mapping[str, frozenset[str]]
    """Element id → unit ids of the reached documents that refer to it: where a blast radius starts."""
    document_links: Mapping[str, frozenset[str]]
    """Unit id → unit ids of the documents it refers to."""

    def is_synced_entity(self, entity_id: str) -> bool:
        """Whether devices hold objects of this entity."""
        return entity_id in self.synced_entities


def _unit_type(mg: ModelGraph, unit_id: str) -> str:
    return mg.index.unit_types.get(unit_id, "")


def _element(mg: ModelGraph, element_id: str) -> ModelElement | None:
    return mg.index.elements.get(element_id)


def _links(mg: ModelGraph) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]], Mapping[str, frozenset[str]]]:
    """Document → referenced documents, document → referenced elements, element → referring documents
    (the last made on first use: nothing on a check's path asks; a blast radius uses the reached
    documents' own map, ``NativeFacts.reached_referrers``)."""
    if not mg.sound:  # a unit id or an element id held twice (a damaged model), or no pieces
        return _links_by_element(mg)
    pieces = mg.pieces.items()
    doc_links = {unit_id: piece.links_to for unit_id, piece in pieces if piece.links_to}
    doc_targets = {unit_id: piece.targets for unit_id, piece in pieces if piece.targets}
    return doc_links, doc_targets, _Referrers(doc_targets)


def _links_by_element(
    mg: ModelGraph,
) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]], Mapping[str, frozenset[str]]]:
    """:func:`_links` one reference at a time, each element counted in the unit that holds it."""
    doc_links: dict[str, set[str]] = {}
    doc_targets: dict[str, set[str]] = {}
    unit_of = mg.element_units.get  # holds every source and target of a resolved reference
    for source, target in mg.name_references:
        source_unit = unit_of(source)
        target_unit = unit_of(target)
        if source_unit is None or target_unit is None:
            continue
        doc_targets.setdefault(source_unit, set()).add(target)
        if target_unit != source_unit:
            doc_links.setdefault(source_unit, set()).add(target_unit)
    targets_of = {unit: frozenset(targets) for unit, targets in doc_targets.items()}
    return {unit: frozenset(links) for unit, links in doc_links.items()}, targets_of, _Referrers(targets_of)


class _Referrers(Mapping[str, frozenset[str]]):
    """Element id → the documents that refer to it: ``doc_targets`` turned around on first use (0.15-0.3 s
    at scale, for a question no check asks)."""

    __slots__ = ("_doc_targets", "_turned")

    def __init__(self, doc_targets: Mapping[str, frozenset[str]]) -> None:
        self._doc_targets = doc_targets
        self._turned: dict[str, frozenset[str]] | None = None

    def _all(self) -> dict[str, frozenset[str]]:
        if self._turned is None:
            self._turned = _turned(self._doc_targets.items())
        return self._turned

    def __getitem__(self, element_id: str) -> frozenset[str]:
        return self._all()[element_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def _turned(doc_targets: Iterable[tuple[str, Iterable[str]]]) -> dict[str, frozenset[str]]:
    """Document → the elements it refers to, turned around: element → the documents referring to it."""
    turned: dict[str, set[str]] = {}
    for unit_id, targets in doc_targets:
        for target in targets:
            turned.setdefault(target, set()).add(unit_id)
    return {target: frozenset(units) for target, units in turned.items()}


def _subtree(mg: ModelGraph, root_id: str) -> list[ModelElement]:
    root = mg.index.elements[root_id]
    result: list[ModelElement] = []
    inside = {root_id}
    for element in mg.index.unit_elements[root.unit]:
        if element.id == root_id or element.parent in inside:
            inside.add(element.id)
            result.append(element)
    return result


def _entity_id(mg: ModelGraph, element_id: str) -> str | None:
    """The entity a named element belongs to (see :func:`_entity_of`), from the outlines where they
    tell: an entity, or an attribute, association end or rule whose parent is one."""
    unit = mg.unit_of(element_id)
    model = mg.index.unit_models.get(unit) if unit is not None else None
    if model is None or ENTITY_TYPES.isdisjoint(model.outline.types):
        return None  # the climb stays inside the unit, and this unit holds no entity
    current = mg.named.get(element_id)
    while current is not None:
        if current.type in ENTITY_TYPES:
            return current.id
        if current.parent is None or mg.unit_of(current.parent) != unit:
            break
        current = mg.named.get(current.parent)
    else:
        element = mg.index.elements.get(element_id)  # an unnamed owner on the way: build the unit
        entity = _entity_of(mg, element) if element is not None else None
        return entity.id if entity is not None else None
    return None


def _entity_of(mg: ModelGraph, element: ModelElement) -> ModelElement | None:
    """The entity an element belongs to: itself, or the entity holding an attribute, rule or index."""
    current: ModelElement | None = element
    while current is not None:
        if current.type in ENTITY_TYPES:
            return current
        if current.parent is None:
            return None
        parent = mg.index.elements.get(current.parent)
        if parent is None or parent.unit != current.unit:
            return None
        current = parent
    return None


def _association_ends(mg: ModelGraph, association_id: str) -> tuple[str | None, str | None]:
    """(owner, other end) entity ids: the parent stores the reference, the child is referred to.

    Read from the association's stored references (``ParentPointer``, ``ChildPointer``, ``Child`` by
    name), so no domain model has to be built for it.
    """
    stored = mg.stored_references.get(association_id, ())

    def target(prop: str, kind: ReferenceKind) -> str | None:
        return next((r.target for r in stored if r.property == prop and r.kind is kind), None)

    def entity(element_id: str | None) -> str | None:
        if element_id is None:
            return None
        named = mg.named.get(element_id)
        if named is not None:
            return element_id if named.type in ENTITY_TYPES else None
        element = mg.index.elements.get(element_id)
        return element.id if element is not None and element.type in ENTITY_TYPES else None

    parent = entity(target("ParentPointer", ReferenceKind.POINTER))
    by_name = target("Child", ReferenceKind.NAME)
    child = entity(target("ChildPointer", ReferenceKind.POINTER)) or entity(
        mg.names.get(by_name) if by_name is not None else None
    )
    return parent, child


def analyze_native(mg: ModelGraph) -> NativeFacts:
    """Native pages, what the native profiles reach, and which entities devices sync."""
    index = mg.index
    unit_types = index.unit_types
    doc_links, doc_targets, referrers = _links(mg)
    layouts = frozenset(
        unit_id
        for unit_id, model in index.unit_models.items()
        if "Forms$NativeLayoutContent" in model.outline.types and unit_types.get(unit_id) == LAYOUT
    )
    native_pages: set[str] = set()
    for unit_id, unit_type in unit_types.items():
        if unit_type != PAGE or not _may_link_into(mg, unit_id, layouts):
            continue
        for element_id in mg.referring_in(unit_id, "Forms$LayoutCall"):  # the page's layout calls
            for link in mg.links(element_id):
                if link.property in ("Form", "FormCall.Form") and mg.unit_of(link.target) in layouts:
                    native_pages.add(unit_id)
    profiles = index.snapshot.elements.of_type(NATIVE_PROFILE)
    start: set[str] = set()
    configs: dict[str, SyncedEntity] = {}
    for profile in profiles:
        for element in _subtree(mg, profile.id):
            if element.type == OFFLINE_CONFIG or _inside_type(mg, element, OFFLINE_CONFIG):
                if element.type == OFFLINE_CONFIG:
                    _add_config(mg, element, configs)
                continue
            for link in mg.links(element.id):
                target_unit = mg.unit_of(link.target)
                if link.kind in ("name", "text") and target_unit is not None:
                    start.add(target_unit)
    reached = _reach(mg, start, doc_links)
    used_entities: set[str] = set()
    for unit_id in reached:
        if unit_types.get(unit_id) not in CLIENT_DOCUMENTS:
            continue
        for target in doc_targets.get(unit_id, ()):
            target_named = mg.named.get(target)
            target_type = target_named.type if target_named is not None else index.elements[target].type
            if target_type in ASSOCIATION_TYPES:
                used_entities.update(end for end in _association_ends(mg, target) if end is not None)
                continue
            entity_id = _entity_id(mg, target)
            if entity_id is not None:
                used_entities.add(entity_id)
    synced: dict[str, SyncedEntity] = dict(configs)
    for entity_id in sorted(used_entities):
        if entity_id not in synced:
            entity_named = mg.named.get(entity_id)
            label = entity_named.qualified_name if entity_named is not None else index.elements[entity_id].label
            synced[entity_id] = SyncedEntity(
                entity_id=entity_id, qualified_name=label, sync_mode="All", configured=False
            )
    _add_generalizations(mg, synced)
    # An association is on devices when the synced entity that owns it stores the reference, or when
    # both ends are synced; one owned by an entity that stays on the server never reaches a device.
    associations: set[str] = set()
    for model in index.unit_models.values():
        if model.outline.types.isdisjoint(ASSOCIATION_TYPES):
            continue
        for named in model.outline.named:
            if named.type in ASSOCIATION_TYPES:
                owner, _child = _association_ends(mg, named.id)
                if owner in synced:
                    associations.add(named.id)
    called: set[str] = set()
    for unit_id, targets in doc_links.items():
        if unit_types.get(unit_id) == NANOFLOW:
            called.update(target for target in targets if unit_types.get(target) == MICROFLOW)
    found = NativeFindings(
        has_native_profile=bool(profiles),
        native_layouts=layouts,
        native_pages=frozenset(native_pages),
        reached_documents=frozenset(reached),
        synced_entities=tuple(synced[entity_id] for entity_id in sorted(synced)),
        synced_associations=frozenset(associations),
        microflows_called_from_nanoflows=frozenset(called),
    )
    return _facts(found, (doc_links, doc_targets, referrers))


@dataclass(frozen=True, slots=True, kw_only=True)
class NativeFindings:
    """The part of :class:`NativeFacts` that takes looking into the model (the native pages, what the
    native profile reaches, the synced entities and associations, the microflows nanoflows call:
    0.1-0.2 s for a large app); the rest is read off the graph. Equal snapshots have equal findings, so
    they may be kept and put back (:func:`findings_rows`, :func:`native_facts_from`)."""

    has_native_profile: bool
    native_layouts: frozenset[str]
    native_pages: frozenset[str]
    reached_documents: frozenset[str]
    synced_entities: tuple[SyncedEntity, ...]
    """By entity id."""
    synced_associations: frozenset[str]
    microflows_called_from_nanoflows: frozenset[str]


def _facts(
    found: NativeFindings,
    links: tuple[dict[str, frozenset[str]], dict[str, frozenset[str]], Mapping[str, frozenset[str]]],
) -> NativeFacts:
    """The native facts of a graph, from its findings and its document links (:func:`_links`)."""
    doc_links, doc_targets, referrers = links
    reached = found.reached_documents
    return NativeFacts(
        has_native_profile=found.has_native_profile,
        native_layouts=found.native_layouts,
        native_pages=found.native_pages,
        reached_documents=reached,
        synced_entities=MappingProxyType({synced.entity_id: synced for synced in found.synced_entities}),
        synced_associations=found.synced_associations,
        microflows_called_from_nanoflows=found.microflows_called_from_nanoflows,
        referrers=referrers,
        reached_referrers=MappingProxyType(
            _turned((unit_id, doc_targets[unit_id]) for unit_id in sorted(reached) if unit_id in doc_targets)
        ),
        document_links=MappingProxyType(doc_links),
    )


def findings_rows(facts: NativeFacts) -> tuple[Any, ...]:
    """The findings of these facts (:class:`NativeFindings`) as plain sorted values, for a cache record."""
    return (
        facts.has_native_profile,
        tuple(sorted(facts.native_layouts)),
        tuple(sorted(facts.native_pages)),
        tuple(sorted(facts.reached_documents)),
        tuple(
            (synced.entity_id, synced.qualified_name, synced.sync_mode, synced.configured)
            for synced in facts.synced_entities.values()
        ),
        tuple(sorted(facts.synced_associations)),
        tuple(sorted(facts.microflows_called_from_nanoflows)),
    )


def native_facts_from(mg: ModelGraph, rows: Any) -> NativeFacts:
    """What :func:`analyze_native` gives for this graph, its findings taken from ``rows`` as
    :func:`findings_rows` made them for an equal snapshot; ValueError when they are not such rows."""
    try:
        profile, layouts, pages, reached, synced, associations, called = rows
        ids = (layouts, pages, reached, associations, called)
        if not isinstance(profile, bool) or not all(isinstance(part, tuple) for part in (*ids, synced)):
            raise ValueError("rows of another shape")
        if not all(isinstance(element_id, str) for part in ids for element_id in part):
            raise ValueError("ids that are not text")
        entities = tuple(
            SyncedEntity(entity_id=entity_id, qualified_name=name, sync_mode=mode, configured=configured)
            for entity_id, name, mode, configured in synced
        )
        if not all(
            isinstance(entity.entity_id, str)
            and isinstance(entity.qualified_name, str)
            and isinstance(entity.sync_mode, str)
            and isinstance(entity.configured, bool)
            for entity in entities
        ):
            raise ValueError("synced entities of another shape")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"unreadable native findings ({exc})") from None
    found = NativeFindings(
        has_native_profile=profile,
        native_layouts=frozenset(layouts),
        native_pages=frozenset(pages),
        reached_documents=frozenset(reached),
        synced_entities=entities,
        synced_associations=frozenset(associations),
        microflows_called_from_nanoflows=frozenset(called),
    )
    return _facts(found, _links(mg))


def _may_link_into(mg: ModelGraph, unit_id: str, units: frozenset[str]) -> bool:
    """Whether a unit's links could lead into one of ``units``: false when what its names lead to (its
    piece) says they do not and no pointer leaves it, so its elements need not be looked at (a graph
    whose links are gathered up front, one that may hold an element id twice, is looked at whole)."""
    piece = mg.pieces.get(unit_id)
    if mg.naming_units is None or piece is None or piece.model.outline.foreign_pointers:
        return True
    return not piece.links_to.isdisjoint(units)


def _inside_type(mg: ModelGraph, element: ModelElement, type_name: str) -> bool:
    current = element
    while current.parent is not None:
        parent = mg.index.elements.get(current.parent)
        if parent is None or parent.unit != current.unit:
            return False
        if parent.type == type_name:
            return True
        current = parent
    return False


def _add_config(mg: ModelGraph, config: ModelElement, configs: dict[str, SyncedEntity]) -> None:
    entity_name = config.properties.get("Entity")
    if not isinstance(entity_name, str):
        return
    entity_id = mg.names.get(entity_name)
    if entity_id is None:
        return
    mode = config.properties.get("SyncMode", config.properties.get("DownloadMode", "All"))
    configs[entity_id] = SyncedEntity(
        entity_id=entity_id, qualified_name=entity_name, sync_mode=str(mode), configured=True
    )


def _add_generalizations(mg: ModelGraph, synced: dict[str, SyncedEntity]) -> None:
    """Generalizations of synced entities are on the device too (their members are inherited)."""
    queue = deque(synced)
    while queue:
        entity_id = queue.popleft()
        for element in _subtree(mg, entity_id):
            if element.type != GENERALIZATION:
                continue
            for link in mg.links(element.id):
                target = link.target
                target_element = mg.index.elements.get(target)
                if (
                    link.kind == "name"
                    and target_element is not None
                    and target not in synced
                    and target_element.type in ENTITY_TYPES
                ):
                    synced[target] = SyncedEntity(
                        entity_id=target,
                        qualified_name=target_element.label,
                        sync_mode=synced[entity_id].sync_mode,
                        configured=False,
                    )
                    queue.append(target)


def _reach(mg: ModelGraph, start: Iterable[str], doc_links: Mapping[str, frozenset[str]]) -> set[str]:
    reached: set[str] = set()
    unit_types = mg.index.unit_types
    queue = deque(unit for unit in start if unit_types.get(unit) in REACHABLE_DOCUMENTS)
    reached.update(queue)
    while queue:
        unit_id = queue.popleft()
        if unit_types.get(unit_id) not in CLIENT_DOCUMENTS:
            continue
        for target in doc_links.get(unit_id, ()):
            if target not in reached and unit_types.get(target) in REACHABLE_DOCUMENTS:
                reached.add(target)
                queue.append(target)
    return reached


def reverse_links(facts: NativeFacts) -> Mapping[str, frozenset[str]]:
    """Document → reached documents that refer to it; computed once, used for every blast radius."""
    reverse: dict[str, set[str]] = {}
    for source, links in facts.document_links.items():
        if source in facts.reached_documents:
            for target in links:
                reverse.setdefault(target, set()).add(source)
    return MappingProxyType({k: frozenset(v) for k, v in reverse.items()})


def blast_radius(
    mg: ModelGraph, facts: NativeFacts, element_id: str, reverse: Mapping[str, frozenset[str]] | None = None
) -> tuple[str, ...]:
    """Labels of the native pages and nanoflows the profile reaches that lead to ``element_id``."""
    element = mg.index.elements.get(element_id)
    if element is None or not facts.reached_documents:
        return ()
    targets = {element_id}
    current = element
    while current.parent is not None:
        parent = mg.index.elements.get(current.parent)
        if parent is None or parent.unit != current.unit or parent.type == DOMAIN_MODEL:
            break
        targets.add(parent.id)
        current = parent
    seen: set[str] = set()  # the reached documents that refer to it, or hold it
    for target in targets:
        seen.update(facts.reached_referrers.get(target, ()))
    if element.unit in facts.reached_documents:
        seen.add(element.unit)
    if reverse is None:
        reverse = reverse_links(facts)
    queue = deque(seen)
    while queue:
        unit_id = queue.popleft()
        for source in reverse.get(unit_id, ()):
            if source not in seen:
                seen.add(source)
                queue.append(source)
    labels = [
        mg.index.document_labels[unit]
        for unit in seen
        if unit in facts.native_pages or _unit_type(mg, unit) == NANOFLOW
    ]
    return tuple(sorted(labels))
