"""Find every change between two snapshots by Mendix identity (``$ID``), at every depth.

Elements are matched by GUID; where a unit was re-imported with new GUIDs under the same name, its
elements are paired by (type, qualified name) or, for unnamed ones, by their place under a paired
parent. A change of a nested element is reported once, at the element that carries it; an added or
removed subtree is reported at its top. Reference strings that only follow a rename elsewhere are
marked, so a renamed page reads as one rename, not as edits of every page that links to it.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterable, Mapping

from analyzer.graph.index import SnapshotIndex, index_snapshot
from analyzer.model.changes import (
    ABSENT,
    FILE_TYPE,
    NATIVE_DOCUMENTS,
    NATIVE_TYPES,
    PROJECT_TYPE,
    Absent,
    Change,
    ChangeKind,
    NoEffect,
    NoEffectSpec,
    PropertyChange,
)
from analyzer.model.snapshot import NAME_TOKEN, ModelElement, PropertyValue, ReferenceKind, Snapshot

ORDER_SUFFIX = "[order]"
"""Suffix of the pseudo-property that records a reordering of a parent's children in one slot."""


def diff_snapshots(base: Snapshot, head: Snapshot, no_effect: NoEffectSpec | None = None) -> tuple[Change, ...]:
    """Every change from ``base`` to ``head``, in a stable order."""
    before = index_snapshot(base)
    after = index_snapshot(head)
    return diff_indexes(before, after, no_effect)


def diff_indexes(
    before: SnapshotIndex, after: SnapshotIndex, no_effect: NoEffectSpec | None = None
) -> tuple[Change, ...]:
    """The diff over already-built indexes (the pipeline builds them once for the graph too)."""
    raw = _diff(before, after)
    spec = no_effect if no_effect is not None else NoEffectSpec()
    upgraded = before.snapshot.meta.product_version != after.snapshot.meta.product_version
    judged = [_judge(change, spec, before, after, upgraded) for change in raw]
    if not spec.follower_elements:
        return tuple(judged)
    return tuple(_followers(judged, spec, before, after))


def _followers(
    changes: list[Change], spec: NoEffectSpec, before: SnapshotIndex, after: SnapshotIndex
) -> list[Change]:
    """Mark additions and removals of follower elements whose named member is added or removed too."""
    added = {c.qualified_name for c in changes if c.kind is ChangeKind.ADDED}
    removed = {c.qualified_name for c in changes if c.kind is ChangeKind.REMOVED}
    result: list[Change] = []
    for change in changes:
        appears = change.kind in (ChangeKind.ADDED, ChangeKind.REMOVED)
        if appears and change.no_effect is None and _globbed(spec.follower_elements, change.element_type):
            side, members = (after, added) if change.kind is ChangeKind.ADDED else (before, removed)
            element = side.elements.get(change.element_id)
            if element is not None and any(
                ref.target in members for ref in element.references if ref.kind is ReferenceKind.NAME
            ):
                change = dataclasses.replace(change, no_effect=NoEffect.FOLLOWS_MEMBER)
        result.append(change)
    return result


def _globbed(patterns: tuple[str, ...], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


def _excluded(index: SnapshotIndex, document_id: str) -> bool | None:
    root = index.elements.get(document_id)
    return None if root is None else root.properties.get("Excluded") is True


def _judge(
    change: Change, spec: NoEffectSpec, before: SnapshotIndex, after: SnapshotIndex, upgraded: bool
) -> Change:
    """Mark a change that cannot reach the app, and say why (``NoEffectSpec`` is the data behind it)."""
    if change.element_type in (FILE_TYPE, PROJECT_TYPE) or change.element_id.startswith("native:"):
        return change
    reason: NoEffect | None = None
    sides = (_excluded(before, change.document_id), _excluded(after, change.document_id))
    flags = [flag for flag in sides if flag is not None]
    if flags and all(flags):
        reason = NoEffect.EXCLUDED_DOCUMENT
    elif _globbed(spec.design_time_documents, change.document_type):
        reason = NoEffect.DESIGN_TIME_DOCUMENT
    elif _globbed(spec.bookkeeping_documents, change.document_type):
        reason = NoEffect.BOOKKEEPING
    elif _globbed(spec.diagram_elements, change.element_type):
        reason = NoEffect.DIAGRAM
    elif change.kind is ChangeKind.MODIFIED and change.properties:
        reasons: set[NoEffect] = set()
        for prop in change.properties:
            if prop.path in change.rename_follow_ups:
                reasons.add(NoEffect.RENAME_FOLLOW_UP)
            elif _globbed(spec.diagram_properties, prop.path):
                reasons.add(NoEffect.DIAGRAM)
            elif _globbed(spec.documentation_properties, prop.path):
                reasons.add(NoEffect.DOCUMENTATION)
            elif _globbed(spec.bookkeeping_properties, prop.path):
                reasons.add(NoEffect.BOOKKEEPING)
            elif upgraded and (prop.before is ABSENT or prop.after is ABSENT):
                reasons.add(NoEffect.METAMODEL_REWRITE)
            else:
                return change
        reason = reasons.pop() if len(reasons) == 1 else NoEffect.COSMETIC
    if reason is None:
        return change
    return dataclasses.replace(change, no_effect=reason)


def _diff(before: SnapshotIndex, after: SnapshotIndex) -> list[Change]:
    """Raw changes, before judging their effect.

    Only the elements of units that changed are walked: a unit with equal bytes on both sides holds
    the same elements, each paired with itself, none added, removed, renamed or reordered.
    """
    skip_units = _unchanged_units(before, after)
    changed_before = _elements_outside(before, skip_units)
    changed_after = _elements_outside(after, skip_units)
    pairs = _match(before, after, skip_units, changed_before, changed_after)
    renames = _rename_map(before, after, pairs)
    changes: list[Change] = []
    changes.extend(_project_changes(before.snapshot, after.snapshot))
    changes.extend(_file_changes(before.snapshot, after.snapshot))
    changes.extend(_native_changes(before.snapshot, after.snapshot))
    matched_before = set(pairs.values())
    added_ids = {element.id for element in changed_after if element.id not in pairs}
    removed_ids = {element.id for element in changed_before if element.id not in matched_before}
    order_changes = _order_changes(before, after, pairs, skip_units)
    for after_id, before_id in pairs.items():
        new = after.elements[after_id]
        if new.unit in skip_units and after_id == before_id:
            continue
        old = before.elements[before_id]
        change = _compare(old, new, before, after, pairs, renames, order_changes.get(after_id, ()))
        if change is not None:
            changes.append(change)
    for element_id in sorted(added_ids):
        element = after.elements[element_id]
        if element.parent is not None and element.parent in added_ids:
            continue
        changes.append(_whole(ChangeKind.ADDED, element, after))
    for element_id in sorted(removed_ids):
        element = before.elements[element_id]
        if element.parent is not None and element.parent in removed_ids:
            continue
        changes.append(_whole(ChangeKind.REMOVED, element, before))
    changes.sort(key=lambda c: (c.document_name, c.qualified_name, c.kind.value, c.element_id))
    return changes


# ------------------------------------------------------------------------------------------- matching


def _unchanged_units(before: SnapshotIndex, after: SnapshotIndex) -> set[str]:
    """Units with nothing to compare: equal stored contents hash, or the very same elements (a unit
    both loads of a check shared because its bytes and place are equal, see ``analyzer.load.memo``)."""
    shared = _shared_models(before, after)
    same: set[str] = set(shared) if shared is not None else set()
    # Only units whose model is not the very same are looked at one by one (all, without a patch).
    looked_at = after.units.items() if shared is None else ((u, after.units[u]) for u in after.units.keys() - shared)
    for unit_id, unit in looked_at:
        old = before.units.get(unit_id)
        if old is None:
            continue
        model = after.unit_models.get(unit_id)
        if (unit.contents_hash and old.contents_hash == unit.contents_hash) or (
            model is not None and before.unit_models.get(unit_id) is model  # the memo hands out whole units
        ):
            same.add(unit_id)
    return same


def _shared_models(before: SnapshotIndex, after: SnapshotIndex) -> set[str] | None:
    """Units whose model is the very same on both sides, from how one index found they differ when it
    was taken over from the other (``SnapshotIndex.lent``; a set operation, not a step per unit);
    None when neither was."""
    for index, other in ((before, after), (after, before)):
        lent = index.lent
        if lent is not None and lent[0] is other.snapshot:
            held = index.unit_models.keys() & other.unit_models.keys()
            return (held & before.units.keys() & after.units.keys()) - lent[1].unit_ids()
    return None


class _Pairs(dict[str, str]):
    """After-id → before-id of every element on both sides. Elements of unchanged units pair with
    themselves without being listed: ``get`` answers for them, iteration and ``in`` do not."""

    def __init__(self, after: SnapshotIndex, unchanged_units: set[str], changed_ids: set[str]) -> None:
        super().__init__()
        self._after = after.elements
        self._unchanged_units = unchanged_units
        self._changed_ids = changed_ids

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        found = dict.get(self, key)
        if found is not None:
            return found
        if key in self._changed_ids:  # an element of a changed unit is paired above, or not at all
            return default
        if self._after.unit_of(key) in self._unchanged_units:  # answered without building the unit
            return key
        return default


def _elements_outside(index: SnapshotIndex, units: set[str]) -> list[ModelElement]:
    """The elements of every unit not in ``units``, in canonical order."""
    members = index.unit_elements
    return [element for unit_id in members if unit_id not in units for element in members[unit_id]]


def _match(
    before: SnapshotIndex,
    after: SnapshotIndex,
    unchanged_units: set[str],
    changed_before: list[ModelElement],
    changed_after: list[ModelElement],
) -> _Pairs:
    """After-id → before-id for every element that exists on both sides."""
    pairs = _Pairs(after, unchanged_units, {element.id for element in changed_after})
    # An element of a changed unit is on both sides when the other side's changed units hold it (an
    # element moved between units changes both), or it is a named one: no map of every id is needed.
    before_ids = {element.id for element in changed_before}
    for element in changed_after:
        if element.id in before_ids or before.elements.is_named(element.id):
            pairs[element.id] = element.id
    if before.units.keys() == after.units.keys():  # no unit came or went (compared in C)
        lost_units: list[str] = []
        new_units: list[str] = []
    else:
        lost_units = [uid for uid in before.units if uid not in after.units]
        new_units = [uid for uid in after.units if uid not in before.units]
    if lost_units and new_units:
        _pair_reimported_units(before, after, lost_units, new_units, pairs)
    _pair_regenerated(changed_before, changed_after, pairs)
    return pairs


def _pair_regenerated(changed_before: list[ModelElement], changed_after: list[ModelElement], pairs: _Pairs) -> None:
    """Pair unnamed objects that Studio Pro re-created with new ids in the same place.

    A widget package update regenerates the widget definition copied into every page, an upgrade
    rewrites templates and texts: same parent, same slot and position, same type, new ``$ID``. Named
    elements (widgets, attributes, entities) keep strict identity: a new one is an addition.
    """
    taken = set(pairs.values())
    free: dict[tuple[str, str, int, str], str] = {}
    for element in changed_before:
        if element.id not in taken and element.name is None and element.parent is not None:
            free.setdefault((element.parent, element.slot, element.index, element.type), element.id)
    if not free:
        return
    for element in changed_after:  # depth-first: parents are paired before their children
        if element.id in pairs or element.name is not None or element.parent is None:
            continue
        parent = pairs.get(element.parent)
        if parent is None:
            continue
        old_id = free.pop((parent, element.slot, element.index, element.type), None)
        if old_id is not None:
            pairs[element.id] = old_id


def _pair_reimported_units(
    before: SnapshotIndex,
    after: SnapshotIndex,
    lost_units: list[str],
    new_units: list[str],
    pairs: dict[str, str],
) -> None:
    by_name: dict[tuple[str, str], str] = {}
    for unit_id in lost_units:
        root = before.unit_roots.get(unit_id)
        if root is not None:
            by_name.setdefault((root.type, _unit_key(before, unit_id)), unit_id)
    for unit_id in new_units:
        root = after.unit_roots.get(unit_id)
        if root is None:
            continue
        old_unit = by_name.pop((root.type, _unit_key(after, unit_id)), None)
        if old_unit is not None:
            _pair_reimported(before, after, old_unit, unit_id, pairs)


def _unit_key(index: SnapshotIndex, unit_id: str) -> str:
    """What identifies a unit by name: its label, plus its container's label for unnamed singletons."""
    label = index.document_labels[unit_id]
    container = index.units[unit_id].container
    if container is not None and container in index.document_labels:
        return f"{index.document_labels[container]}::{label}"
    return label


def _structural_keys(index: SnapshotIndex, unit_id: str) -> dict[tuple[object, ...], str]:
    keys: dict[str, tuple[object, ...]] = {}
    result: dict[tuple[object, ...], str] = {}
    for element in index.unit_elements[unit_id]:
        if element.qualified_name is not None:
            key: tuple[object, ...] = ("qn", element.type, element.qualified_name)
        elif element.parent in keys:
            key = (keys[element.parent], element.slot, element.index, element.type)
        else:
            key = ("root", element.type)
        keys[element.id] = key
        result.setdefault(key, element.id)
    return result


def _pair_reimported(
    before: SnapshotIndex, after: SnapshotIndex, old_unit: str, new_unit: str, pairs: dict[str, str]
) -> None:
    old_keys = _structural_keys(before, old_unit)
    for key, new_id in _structural_keys(after, new_unit).items():
        old_id = old_keys.get(key)
        if old_id is not None and new_id not in pairs:
            pairs[new_id] = old_id


def _rename_map(before: SnapshotIndex, after: SnapshotIndex, pairs: Mapping[str, str]) -> dict[str, str]:
    """Old qualified name → new one, for every matched element whose qualified name changed."""
    renames: dict[str, str] = {}
    for after_id, before_id in pairs.items():
        old = before.elements[before_id].qualified_name
        new = after.elements[after_id].qualified_name
        if old and new and old != new:
            renames[old] = new
    return renames


# ----------------------------------------------------------------------------------------- comparing


def _follows_rename(before: PropertyValue | Absent, after: PropertyValue | Absent, renames: Mapping[str, str]) -> bool:
    if not renames:
        return False
    if isinstance(before, str) and isinstance(after, str):
        rewritten = NAME_TOKEN.sub(lambda m: renames.get(m.group(0), m.group(0)), before)
        return rewritten == after and before != after
    if isinstance(before, tuple) and isinstance(after, tuple) and len(before) == len(after):
        return any(b != a for b, a in zip(before, after, strict=True)) and all(
            b == a or _follows_rename(b, a, renames) for b, a in zip(before, after, strict=True)
        )
    return False


def property_changes(
    old: Mapping[str, PropertyValue], new: Mapping[str, PropertyValue]
) -> list[PropertyChange]:
    """Every property path whose value differs, in a stable order."""
    changes: list[PropertyChange] = []
    if old == new:
        return changes
    for path in sorted(old.keys() | new.keys()):
        before = old.get(path, ABSENT) if path in old else ABSENT
        after = new.get(path, ABSENT) if path in new else ABSENT
        if before != after or type(before) is not type(after):
            changes.append(PropertyChange(path=path, before=before, after=after))
    return changes


def _compare(
    old: ModelElement,
    new: ModelElement,
    before: SnapshotIndex,
    after: SnapshotIndex,
    pairs: Mapping[str, str],
    renames: Mapping[str, str],
    reorders: Iterable[PropertyChange],
) -> Change | None:
    changes = [
        change
        for change in property_changes(old.properties, new.properties)
        if change.path != "Name" and not _same_target(change, before, after, pairs)
    ]
    if old.type != new.type:
        # The same object re-typed in place (an attribute's type object, a generalization switched on or off).
        changes.insert(0, PropertyChange(path="$Type", before=old.type, after=new.type))
    changes.extend(reorders)
    renamed = old.name != new.name
    old_parent = old.parent
    new_parent = pairs.get(new.parent, new.parent) if new.parent is not None else None
    moved = old_parent != new_parent or old.slot != new.slot
    if not changes and not renamed and not moved:
        return None
    follow_ups = [c for c in changes if _follows_rename(c.before, c.after, renames)]
    if renamed:
        kind = ChangeKind.RENAMED
        changes.insert(0, PropertyChange(path="Name", before=old.name, after=new.name))
    elif moved:
        kind = ChangeKind.MOVED
    else:
        kind = ChangeKind.MODIFIED
    document = after.document_of(new)
    return Change(
        kind=kind,
        element_id=new.id,
        element_type=new.type,
        qualified_name=after.label(new),
        before_name=old.qualified_name or old.name,
        after_name=new.qualified_name or new.name,
        document_id=document.id,
        document_type=document.type,
        document_name=after.document_labels[new.unit],
        properties=tuple(changes),
        moved_from=_place(before, old) if moved else None,
        moved_to=_place(after, new) if moved else None,
        matched_by_name=new.id != old.id,
        rename_follow_ups=tuple(c.path for c in follow_ups),
    )


def _same_target(
    change: PropertyChange, before: SnapshotIndex, after: SnapshotIndex, pairs: Mapping[str, str]
) -> bool:
    """A ``...Pointer`` whose old and new targets are the same element (matched, or re-created in place)."""
    old, new = change.before, change.after
    if not (isinstance(old, str) and isinstance(new, str) and old.startswith("guid:") and new.startswith("guid:")):
        return False
    old_id, new_id = old[5:], new[5:]
    if pairs.get(new_id) == old_id:
        return True
    old_target, new_target = before.elements.get(old_id), after.elements.get(new_id)
    if old_target is None or new_target is None:
        return False
    return _path_in_unit(before, old_target) == _path_in_unit(after, new_target)


def _path_in_unit(index: SnapshotIndex, element: ModelElement) -> tuple[object, ...]:
    path: list[object] = []
    current: ModelElement | None = element
    while current is not None and current.parent is not None:
        path.append((current.slot, current.index, current.type, current.name))
        parent = index.elements.get(current.parent)
        if parent is None or parent.unit != current.unit:
            break
        current = parent
    return tuple(path)


def _place(index: SnapshotIndex, element: ModelElement) -> str:
    if element.parent is None:
        return "(project)"
    parent = index.elements.get(element.parent)
    if parent is None:
        return element.parent
    if parent.unit != element.unit:
        return index.document_labels.get(parent.unit, parent.label)
    return f"{parent.label}.{element.slot}"


def _order_changes(
    before: SnapshotIndex, after: SnapshotIndex, pairs: Mapping[str, str], unchanged_units: set[str]
) -> dict[str, list[PropertyChange]]:
    """Parents whose children in one slot kept the same members but changed order."""
    def slots(index: SnapshotIndex, id_of: Mapping[str, str] | None) -> dict[tuple[str, str], list[str]]:
        grouped: dict[tuple[str, str], list[str]] = {}
        for unit_id in index.unit_elements:
            if unit_id in unchanged_units:
                continue
            grouped_unit(index.unit_elements[unit_id], id_of, grouped)
        return grouped

    def grouped_unit(
        members: tuple[ModelElement, ...], id_of: Mapping[str, str] | None, grouped: dict[tuple[str, str], list[str]]
    ) -> None:
        for element in members[1:]:  # the unit root's parent is another unit
            if element.parent is None:
                continue
            parent = element.parent
            key_id = element.id
            if id_of is not None:
                parent = id_of.get(parent, parent)
                key_id = id_of.get(key_id, key_id)
            grouped.setdefault((parent, element.slot), []).append(key_id)

    old_slots = slots(before, None)
    new_slots = slots(after, pairs)
    result: dict[str, list[PropertyChange]] = {}
    reverse = {old: new for new, old in pairs.items()}
    for key, new_order in new_slots.items():
        old_order = old_slots.get(key)
        if old_order is None:
            continue
        common = set(old_order) & set(new_order)
        old_common = [eid for eid in old_order if eid in common]
        new_common = [eid for eid in new_order if eid in common]
        if old_common != new_common:
            parent_before, slot = key
            parent_after = reverse.get(parent_before, parent_before)
            labels_before = tuple(before.elements[eid].label for eid in old_common)
            labels_after = tuple(before.elements[eid].label for eid in new_common)
            result.setdefault(parent_after, []).append(
                PropertyChange(path=slot + ORDER_SUFFIX, before=labels_before, after=labels_after)
            )
    return result


def _whole(kind: ChangeKind, element: ModelElement, index: SnapshotIndex) -> Change:
    document = index.document_of(element)
    name = element.qualified_name or element.name
    return Change(
        kind=kind,
        element_id=element.id,
        element_type=element.type,
        qualified_name=index.label(element),
        before_name=name if kind is ChangeKind.REMOVED else None,
        after_name=name if kind is ChangeKind.ADDED else None,
        document_id=document.id,
        document_type=document.type,
        document_name=index.document_labels[element.unit],
    )


# ------------------------------------------------------------------------------ project and side files


def _project_changes(base: Snapshot, head: Snapshot) -> list[Change]:
    old, new = base.meta, head.meta
    fields = {
        "ProductVersion": (old.product_version, new.product_version),
        "MprFormat": (old.mpr_format.value, new.mpr_format.value),
    }
    changes = [
        PropertyChange(path=path, before=b, after=a) for path, (b, a) in fields.items() if b != a
    ]
    if not changes:
        return []
    return [
        Change(
            kind=ChangeKind.MODIFIED,
            element_id="project",
            element_type=PROJECT_TYPE,
            qualified_name="Studio Pro project",
            before_name=None,
            after_name=None,
            document_id="project",
            document_type=PROJECT_TYPE,
            document_name="(project)",
            properties=tuple(changes),
        )
    ]


def _file_changes(base: Snapshot, head: Snapshot) -> list[Change]:
    old = {f.path: f for f in base.files}
    new = {f.path: f for f in head.files}
    changes: list[Change] = []
    for path in sorted(old.keys() | new.keys()):
        before, after = old.get(path), new.get(path)
        if before is not None and after is not None and before.sha256 == after.sha256:
            continue
        if before is None:
            kind = ChangeKind.ADDED
        elif after is None:
            kind = ChangeKind.REMOVED
        else:
            kind = ChangeKind.MODIFIED
        details: tuple[PropertyChange, ...] = ()
        if kind is ChangeKind.MODIFIED and before is not None and after is not None:
            details = (
                PropertyChange(path="sha256", before=before.sha256, after=after.sha256),
                PropertyChange(path="size", before=before.size, after=after.size),
            )
        top = path.split("/", 1)[0]
        changes.append(
            Change(
                kind=kind,
                element_id=f"file:{path}",
                element_type=FILE_TYPE,
                qualified_name=path,
                before_name=path if before is not None else None,
                after_name=path if after is not None else None,
                document_id=f"file:{top}",
                document_type=FILE_TYPE,
                document_name=f"{top}/",
                properties=details,
            )
        )
    return changes


def _native_changes(base: Snapshot, head: Snapshot) -> list[Change]:
    """Native settings paired by (kind, key): a dependency added, re-versioned or removed, a setting changed."""
    old = {(s.kind, s.key): s for s in base.native}
    new = {(s.kind, s.key): s for s in head.native}
    changes: list[Change] = []
    for kind, key in sorted(old.keys() | new.keys()):
        before, after = old.get((kind, key)), new.get((kind, key))
        if before == after:
            continue
        if before is None:
            change_kind = ChangeKind.ADDED
        elif after is None:
            change_kind = ChangeKind.REMOVED
        else:
            change_kind = ChangeKind.MODIFIED
        details: list[PropertyChange] = []
        for field in ("value", "detail"):
            old_value = getattr(before, field) if before is not None else ABSENT
            new_value = getattr(after, field) if after is not None else ABSENT
            if old_value != new_value and (change_kind is ChangeKind.MODIFIED or field == "value"):
                details.append(PropertyChange(path=field, before=old_value, after=new_value))
        document = NATIVE_DOCUMENTS.get(kind, kind)
        changes.append(
            Change(
                kind=change_kind,
                element_id=f"native:{kind}:{key}",
                element_type=NATIVE_TYPES.get(kind, "NativeSetting"),
                qualified_name=key,
                before_name=key if before is not None else None,
                after_name=key if after is not None else None,
                document_id=f"native:{kind}",
                document_type=NATIVE_TYPES.get(kind, "NativeSetting"),
                document_name=document,
                properties=tuple(details),
            )
        )
    return changes
