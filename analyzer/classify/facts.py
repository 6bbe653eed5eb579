"""Named facts: typed Python predicates over a change and the two model graphs.

Rules in ``rules/*.toml`` may only name facts listed in :data:`FACTS`; anything needing graph
traversal lives here, unit-tested, and the rules stay reviewable data.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from analyzer.classify.context import ClassifyContext
from analyzer.graph.build import ModelGraph
from analyzer.graph.queries import (
    ASSOCIATION_TYPES,
    ENTITY_TYPES,
    NATIVE_PROFILE,
    OFFLINE_CONFIG,
)
from analyzer.model.changes import Change, ChangeKind
from analyzer.model.native import NativeSetting, TemplateRange
from analyzer.model.snapshot import ModelElement
from analyzer.model.versions import template_range_for, version_matches

FactFunction = Callable[[Change, ClassifyContext], bool]


@dataclass(frozen=True, slots=True)
class Fact:
    """A predicate with the sentence the rule catalogue shows for it."""

    name: str
    description: str
    test: FactFunction


# ------------------------------------------------------------------------------------------ helpers


def _element(change: Change, graph: ModelGraph) -> ModelElement | None:
    return graph.index.elements.get(change.element_id)


def _ancestors(element: ModelElement, graph: ModelGraph) -> list[ModelElement]:
    """The element and its ancestors inside the same unit, innermost first."""
    chain = [element]
    current = element
    while current.parent is not None:
        parent = graph.index.elements.get(current.parent)
        if parent is None or parent.unit != current.unit:
            break
        chain.append(parent)
        current = parent
    return chain


def _sides(change: Change, ctx: ClassifyContext) -> list[tuple[ModelElement, ModelGraph]]:
    sides: list[tuple[ModelElement, ModelGraph]] = []
    for graph in (ctx.before, ctx.after):
        element = _element(change, graph)
        if element is not None:
            sides.append((element, graph))
    return sides


def _owning_entity_synced(change: Change, ctx: ClassifyContext) -> bool:
    for element, graph in _sides(change, ctx):
        for ancestor in _ancestors(element, graph):
            if ancestor.type in ENTITY_TYPES:
                if ctx.before_native.is_synced_entity(ancestor.id) or ctx.after_native.is_synced_entity(ancestor.id):
                    return True
                break
    return False


def _association_synced(change: Change, ctx: ClassifyContext) -> bool:
    for element, graph in _sides(change, ctx):
        for ancestor in _ancestors(element, graph):
            if ancestor.type in ASSOCIATION_TYPES and (
                ancestor.id in ctx.before_native.synced_associations
                or ancestor.id in ctx.after_native.synced_associations
            ):
                return True
    return False


def _inside(change: Change, ctx: ClassifyContext, type_name: str) -> bool:
    return any(
        any(ancestor.type == type_name for ancestor in _ancestors(element, graph))
        for element, graph in _sides(change, ctx)
    )


def _in_native_profile(change: Change, ctx: ClassifyContext) -> bool:
    return _inside(change, ctx, NATIVE_PROFILE) and not _inside(change, ctx, OFFLINE_CONFIG)


def _in_offline_config(change: Change, ctx: ClassifyContext) -> bool:
    return _inside(change, ctx, OFFLINE_CONFIG)


def _microflow_called_from_nanoflow(change: Change, ctx: ClassifyContext) -> bool:
    return (
        change.document_id in ctx.before_native.microflows_called_from_nanoflows
        or change.document_id in ctx.after_native.microflows_called_from_nanoflows
    )


SIGNATURE_TYPES = frozenset({"Microflows$MicroflowParameterObject", "Microflows$MicroflowParameter"})


def _microflow_signature(change: Change, ctx: ClassifyContext) -> bool:
    """The change touches what callers see: name, module, parameters or return type."""
    for element, graph in _sides(change, ctx):
        chain = _ancestors(element, graph)
        root = chain[-1]
        if element.id == root.id:
            if change.kind in (ChangeKind.RENAMED, ChangeKind.MOVED, ChangeKind.REMOVED):
                return True
            if any(path.startswith("MicroflowReturnType") for path in change.changed_paths):
                return True
        if any(ancestor.type in SIGNATURE_TYPES for ancestor in chain):
            return True
        if any(ancestor.slot.startswith("MicroflowReturnType") for ancestor in chain[:-1]):
            return True
    return False


def _flag_turned(path: str, before: bool, after: bool) -> FactFunction:
    def test(change: Change, ctx: ClassifyContext) -> bool:
        return any(p.path == path and p.before is before and p.after is after for p in change.properties)

    return test


def _module_holds_offline_contract(change: Change, ctx: ClassifyContext) -> bool:
    """The module holds an entity devices sync or a microflow a nanoflow calls (on the base side)."""
    index = ctx.before.index
    module = index.elements.get(change.element_id)
    if module is None or module.name is None:
        return False
    native = ctx.before_native
    for entity_id in native.synced_entities:
        entity = index.elements[entity_id]
        if index.modules.get(entity.unit) == module.name:
            return True
    return any(index.modules.get(unit) == module.name for unit in native.microflows_called_from_nanoflows)


def _dependency_in_binary(change: Change, ctx: ClassifyContext) -> bool:
    """The released binary already has this native module at the new version.

    True when every native template provides it (``rules/native-template-provides.toml``), when the team
    states it in ``.mxota.toml`` (``native_dependencies_in_binary``), or when the base snapshot's native
    template lists it, at this version, among its dependencies or the native dependencies its binary
    reports.
    """
    if not change.element_id.startswith("native:"):
        return False
    name = change.qualified_name
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in ctx.template_provides):
        return True
    wanted = next((p.after for p in change.properties if p.path == "value"), None)
    if not isinstance(wanted, str):
        return False
    stated = {entry.partition("@")[0]: entry.partition("@")[2] for entry in ctx.known_in_binary}
    if name in stated and (not stated[name] or all(v == stated[name] for v in wanted.split(" | "))):
        return True
    in_template = {
        setting.value
        for setting in ctx.before.index.snapshot.native
        if setting.kind == "template" and setting.key in (f"dependency.{name}", f"binaryDependency.{name}")
    }
    return bool(in_template) and all(version in in_template for version in wanted.split(" | "))


def app_template_ranges(settings: tuple[NativeSetting, ...]) -> tuple[TemplateRange, ...]:
    """The app's own ``mendix_version.json`` table, back from its flattened settings, in file order."""
    entries: list[tuple[int, TemplateRange]] = []
    for setting in settings:
        if setting.kind == "template" and setting.key.startswith("mendixVersion."):
            pattern, _, bounds = setting.value.partition(" -> ")
            low, _, high = bounds.partition(" .. ")
            entry = TemplateRange(studio_pro_pattern=pattern, min=low, max=high)
            entries.append((int(setting.key.split(".", 1)[1]), entry))
    return tuple(entry for _, entry in sorted(entries))


def _upgrade_within_template_range(change: Change, ctx: ClassifyContext) -> bool:
    """Studio Pro changed, but both template tables give the same template range for the old and the new
    version, and the released binary's template version (when known) lies in it."""
    versions = next((p for p in change.properties if p.path == "ProductVersion"), None)
    if versions is None or not isinstance(versions.before, str) or not isinstance(versions.after, str):
        return False
    base_native = ctx.before.index.snapshot.native
    tables = [table for table in (app_template_ranges(base_native), ctx.template_versions) if table]
    if not tables:
        return False
    required: tuple[str, str] | None = None
    for table in tables:
        old = template_range_for(versions.before, table)
        new = template_range_for(versions.after, table)
        if old is None or new is None or old != new:
            return False
        required = new
    built_with = next((s.value for s in base_native if s.kind == "template" and s.key == "version"), None)
    if built_with is not None and required is not None:
        low, high = required
        try:
            inside = version_matches(built_with, f">={low}") and (high == "*" or version_matches(built_with, high))
        except ValueError:
            return False
        return inside
    return True


def _declared_native_dependency(change: Change, ctx: ClassifyContext) -> bool:
    """A widget or JavaScript action declares this package (either side): its own finding judges it."""
    if not change.element_id.startswith("native:"):
        return False
    for snapshot in (ctx.before.index.snapshot, ctx.after.index.snapshot):
        if any(s.kind == "dependency" and s.key == change.qualified_name for s in snapshot.native):
            return True
    return False


FACTS: Mapping[str, Fact] = MappingProxyType(
    {
        fact.name: fact
        for fact in (
            Fact("entity_synced", "the entity holding the element is synced to devices (either side)",
                 _owning_entity_synced),
            Fact("association_synced", "the association has an end on an entity synced to devices",
                 _association_synced),
            Fact("in_native_profile", "the element is part of a native navigation profile (not its sync config)",
                 _in_native_profile),
            Fact("in_offline_sync_config", "the element is a native profile's offline sync configuration row",
                 _in_offline_config),
            Fact("microflow_called_from_nanoflow", "a nanoflow calls this microflow by name",
                 _microflow_called_from_nanoflow),
            Fact("microflow_signature", "the change touches the microflow's name, module, parameters or return type",
                 _microflow_signature),
            Fact("db_encryption_turned_on", "EncryptionDbEnabled goes from false to true",
                 _flag_turned("EncryptionDbEnabled", False, True)),
            Fact("db_encryption_turned_off", "EncryptionDbEnabled goes from true to false",
                 _flag_turned("EncryptionDbEnabled", True, False)),
            Fact("file_encryption_turned_on", "LocalFileEncryptionEnabled goes from false to true",
                 _flag_turned("LocalFileEncryptionEnabled", False, True)),
            Fact("file_encryption_turned_off", "LocalFileEncryptionEnabled goes from true to false",
                 _flag_turned("LocalFileEncryptionEnabled", True, False)),
            Fact("ota_turned_on", "OtaEnabled goes from false to true", _flag_turned("OtaEnabled", False, True)),
            Fact("module_holds_offline_contract",
                 "the module holds an entity synced to devices or a microflow a nanoflow calls",
                 _module_holds_offline_contract),
            Fact("dependency_in_binary",
                 "the released binary already has this native module at this version (template or always provided)",
                 _dependency_in_binary),
            Fact("upgrade_within_template_range",
                 "Studio Pro changed inside one native template range, in both the app's and the newest table",
                 _upgrade_within_template_range),
            Fact("declared_native_dependency",
                 "a widget or JavaScript action declares this package, so its dependency finding judges it",
                 _declared_native_dependency),
        )
    }
)
