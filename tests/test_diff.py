"""The identity diff on small hand-made snapshots: one behaviour per test, before and after side by side."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from hypothesis import given
from hypothesis import strategies as st

from analyzer.diff.diff import diff_snapshots
from analyzer.model.changes import ABSENT, ChangeKind, NoEffect, NoEffectSpec, PropertyChange
from analyzer.model.snapshot import (
    ElementSequence,
    ModelElement,
    MprFormat,
    PropertyValue,
    SideFile,
    Snapshot,
    SnapshotMeta,
    SourceInfo,
    SourceKind,
    Unit,
)

META = SnapshotMeta(
    mpr_name="App.mpr", mpr_format=MprFormat.V2, format_version=2, product_version="10.24.0",
    build_version="10.24.0", schema_hash="",
)


def el(
    id: str, type: str, unit: str, *, name: str | None = None, qn: str | None = None, parent: str | None = None,
    slot: str = "", index: int = 0, props: dict[str, PropertyValue] | None = None,
) -> ModelElement:
    return ModelElement(
        id=id, type=type, name=name, qualified_name=qn, parent=parent, slot=slot, index=index, unit=unit,
        properties=MappingProxyType(dict(props or {})),
    )


def snap(*elements: ModelElement, files: tuple[SideFile, ...] = (), version: str = "10.24.0") -> Snapshot:
    units = []
    seen: set[str] = set()
    for element in elements:
        if element.unit not in seen:
            seen.add(element.unit)
            units.append(Unit(id=element.unit, type=element.type, container=None, containment="Documents",
                              contents_hash="", path=""))
    return Snapshot(
        meta=dataclasses.replace(META, product_version=version), units=tuple(units),
        elements=ElementSequence.of(elements),
        files=files, source=SourceInfo(kind=SourceKind.APP_DIRECTORY, location="test"),
    )


def page(unit: str = "u1", name: str = "Home", **props: PropertyValue) -> ModelElement:
    return el(unit, "Forms$Page", unit, name=name, qn=f"Main.{name}", props=props)


def widget(id: str, name: str, *, unit: str = "u1", page_name: str = "Home", index: int = 0,
           **props: PropertyValue) -> ModelElement:
    return el(id, "Forms$TextBox", unit, name=name, qn=f"Main.{page_name}.{name}", parent=unit, slot="Widgets",
              index=index, props=props)


def test_identical_snapshots_have_no_changes() -> None:
    a = snap(page(), widget("w1", "title"))
    assert diff_snapshots(a, a) == ()


def test_property_change_carries_path_before_and_after() -> None:
    (change,) = diff_snapshots(snap(page(Title="A")), snap(page(Title="B")))
    assert change.kind is ChangeKind.MODIFIED
    assert change.properties == (PropertyChange(path="Title", before="A", after="B"),)


def test_a_rename_keeps_identity() -> None:
    (change,) = diff_snapshots(snap(page(name="Home")), snap(page(name="Start")))
    assert change.kind is ChangeKind.RENAMED
    assert (change.before_name, change.after_name) == ("Main.Home", "Main.Start")


def test_a_nested_change_is_reported_once_at_its_element_and_attributed_to_its_document() -> None:
    before = snap(page(), widget("w1", "title", Editable=True))
    after = snap(page(), widget("w1", "title", Editable=False))
    (change,) = diff_snapshots(before, after)
    assert change.element_id == "w1"
    assert change.document_name == "Main.Home"


def test_an_added_subtree_is_reported_at_its_top() -> None:
    before = snap(page())
    after = snap(page(), widget("w1", "box"), el("w2", "Forms$Text", "u1", parent="w1", slot="Widgets"))
    (change,) = diff_snapshots(before, after)
    assert (change.kind, change.element_id) == (ChangeKind.ADDED, "w1")


def test_a_move_to_another_parent_is_a_move() -> None:
    container = el("c1", "Forms$DivContainer", "u1", name="box", qn="Main.Home.box", parent="u1", slot="Widgets")
    before = snap(page(), container, widget("w1", "title", index=1))
    moved = dataclasses.replace(widget("w1", "title"), parent="c1")
    (change,) = diff_snapshots(before, snap(page(), container, moved))
    assert change.kind is ChangeKind.MOVED


def test_a_reorder_is_one_change_on_the_parent() -> None:
    before = snap(page(), widget("w1", "a", index=0), widget("w2", "b", index=1))
    after = snap(page(), widget("w2", "b", index=0), widget("w1", "a", index=1))
    (change,) = diff_snapshots(before, after)
    assert change.element_id == "u1"
    assert change.properties[0].path == "Widgets[order]"


def test_a_reimported_unit_is_matched_by_type_and_qualified_name() -> None:
    before = snap(page("u1", Title="A"), widget("w1", "title", unit="u1"))
    after = snap(page("u9", Title="B"), widget("w9", "title", unit="u9"))
    changes = diff_snapshots(before, after)
    assert [(c.kind, c.matched_by_name) for c in changes] == [(ChangeKind.MODIFIED, True)]


def test_references_that_follow_a_rename_are_marked() -> None:
    def linker(target: str) -> ModelElement:
        return el("u2", "Forms$Page", "u2", name="Menu", qn="Main.Menu", props={"Form": target})

    before = snap(page(name="Home"), linker("Main.Home"))
    after = snap(page(name="Start"), linker("Main.Start"))
    changes = {c.element_id: c for c in diff_snapshots(before, after)}
    assert changes["u1"].kind is ChangeKind.RENAMED
    assert changes["u2"].no_effect is NoEffect.RENAME_FOLLOW_UP


def test_diagram_only_changes_are_judged_unable_to_reach_the_app() -> None:
    spec = NoEffectSpec(diagram_properties=("RelativeMiddlePoint",))
    before = snap(el("m1", "Microflows$Microflow", "m1", name="Go", qn="Main.Go", props={"RelativeMiddlePoint": "1;1"}))
    after = snap(el("m1", "Microflows$Microflow", "m1", name="Go", qn="Main.Go", props={"RelativeMiddlePoint": "5;5"}))
    (change,) = diff_snapshots(before, after, spec)
    assert change.no_effect is NoEffect.DIAGRAM


def test_new_metamodel_keys_after_an_upgrade_are_a_rewrite_not_an_edit() -> None:
    before = snap(page())
    after = snap(page(Autofocus="Desktop"), version="11.0.0")
    changes = {c.element_type: c for c in diff_snapshots(before, after)}
    assert changes["Forms$Page"].no_effect is NoEffect.METAMODEL_REWRITE
    assert changes["Forms$Page"].properties == (PropertyChange(path="Autofocus", before=ABSENT, after="Desktop"),)
    assert changes["Project"].properties[0].path == "ProductVersion"


def test_side_files_compare_by_hash() -> None:
    a = SideFile(path="theme/native/main.js", size=1, sha256="a" * 64)
    b = SideFile(path="theme/native/main.js", size=1, sha256="b" * 64)
    (change,) = diff_snapshots(snap(page(), files=(a,)), snap(page(), files=(b,)))
    assert (change.element_type, change.kind, change.qualified_name) == ("File", ChangeKind.MODIFIED, a.path)


names = st.sampled_from(["a", "b", "c", "d"])
values = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3))


@st.composite
def page_snapshots(draw: st.DrawFn) -> Snapshot:
    ids = draw(st.lists(st.sampled_from(["w1", "w2", "w3", "w4"]), unique=True, max_size=4))
    widgets = [widget(i, draw(names), index=n, Value=draw(values)) for n, i in enumerate(ids)]
    return snap(page(Title=draw(values)), *widgets)


@given(page_snapshots())
def test_a_snapshot_has_no_changes_against_itself(a: Snapshot) -> None:
    assert diff_snapshots(a, a) == ()


@given(page_snapshots(), page_snapshots())
def test_added_and_removed_mirror_when_the_sides_swap(a: Snapshot, b: Snapshot) -> None:
    forward = {(c.element_id, c.kind) for c in diff_snapshots(a, b)}
    backward = {(c.element_id, c.kind) for c in diff_snapshots(b, a)}
    swap = {ChangeKind.ADDED: ChangeKind.REMOVED, ChangeKind.REMOVED: ChangeKind.ADDED}
    assert {(i, swap.get(k, k)) for i, k in forward} == backward
