"""Property test: the second side of a check, taken over from the first, equals one built alone.

The index, the graph and the diff's unchanged units of one snapshot can be taken over from the other
side's, the units that differ taken out and put in (``analyzer.graph.index.unit_changes``). Generated
apps of three modules, a folder in each and pages that name each other are edited at random (a page
changed, moved, added or removed, a module renamed, an element id held by two units, a widget that
comes or goes where another unit refers from its id; qualified names held twice throughout) and every
lookup taken over is held to the one built alone, dict order, soundness and native facts included.
As in a real check, a unit both sides hold unchanged is the very same unit model on both. Mutants of
the takeover (a container's change not rebuilt, order not restored, an id held twice not refused)
fail it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from hypothesis import event, given, settings
from hypothesis import strategies as st

from analyzer.diff.diff import _unchanged_units
from analyzer.graph.build import build_graph
from analyzer.graph.index import index_snapshot
from analyzer.graph.queries import analyze_native
from analyzer.model.snapshot import (
    Reference,
    ReferenceKind,
    Snapshot,
    UnitModel,
    new_element,
)
from tests.test_fast_paths import _graph_facts, _index_facts, _placed_snapshot

MODULES = ("m0", "m1", "m2")
FOLDERS = {"f0": "m0", "f1": "m1", "f2": "m2"}
CONTAINERS = ("m0", "m1", "f0", "f1")
"""Where pages go: module m2 holds only its folder (renaming it changes no unit but the module)."""


@dataclass(frozen=True)
class PageSpec:
    """One page: where it sits, what it names, which element refers to what."""

    container: str
    title: str
    widget: bool
    target: str
    referrer: str


@dataclass(frozen=True)
class AppSpec:
    """Module names and pages: everything a generated snapshot is made of."""

    modules: tuple[tuple[str, str], ...]
    pages: tuple[tuple[str, PageSpec], ...]


def _module_of(container: str) -> str:
    return FOLDERS.get(container, container)


class _Models:
    """Unit models by what they are made of: equal specs give the very same object, as a memo does."""

    def __init__(self) -> None:
        self._made: dict[tuple[object, ...], UnitModel] = {}

    def get(self, key: tuple[object, ...], make: Callable[[], UnitModel]) -> UnitModel:
        found = self._made.get(key)
        if found is None:
            found = self._made[key] = make()
        return found


def _snapshot(app: AppSpec, models: _Models) -> Snapshot:
    names = dict(app.modules)
    rows: list[tuple[UnitModel, str | None]] = []
    for module_id, name in app.modules:
        rows.append((models.get(("module", module_id, name), partial(_module, module_id, name)), None))
    for folder_id, module_id in FOLDERS.items():
        rows.append((models.get(("folder", folder_id), partial(_folder, folder_id, module_id)), module_id))
    for page_id, page in app.pages:
        module = names[_module_of(page.container)]
        model = models.get(("page", page_id, page, module), partial(_page, page_id, page, module))
        rows.append((model, page.container))
    return _placed_snapshot(rows)


def _module(module_id: str, name: str) -> UnitModel:
    return UnitModel.of(
        module_id, (new_element(module_id, "Projects$ModuleImpl", name, name, None, "Modules", 0, module_id, {}, ()),)
    )


def _folder(folder_id: str, module_id: str) -> UnitModel:
    name = folder_id.upper()
    root = new_element(folder_id, "Projects$Folder", name, None, module_id, "Folders", 0, folder_id, {}, ())
    return UnitModel.of(folder_id, (root,))


def _page(page_id: str, page: PageSpec, module: str) -> UnitModel:
    qualified = f"{module}.{page.title}"
    root = new_element(page_id, "Forms$Page", page.title, qualified, page.container, "Documents", 0, page_id, {}, ())
    members = [root]
    if page.widget:
        members.append(new_element(f"{page_id}w", "Forms$TextBox", "w", f"{qualified}.w", page_id, "Widgets", 0,
                                   page_id, {}, ()))
    reference = Reference(property="Form", target=page.target, kind=ReferenceKind.NAME)
    members.append(new_element(page.referrer, "Forms$FormCall", None, None, page_id, "Widgets", 1, page_id, {},
                               (reference,)))
    return UnitModel.of(page_id, tuple(members))


_TITLES = st.sampled_from(["Home", "Orders", "Detail", "Edit", "List"])


def _targets(pages: dict[str, PageSpec], modules: dict[str, str]) -> st.SearchStrategy[str]:
    """A name the app holds (a page or its widget), or one it does not."""
    held = {f"{modules[_module_of(page.container)]}.{page.title}" for page in pages.values()}
    held |= {f"{name}.w" for name in held}
    return st.sampled_from(sorted(held | {"Shop.Gone"}))


@st.composite
def _page_specs(draw: st.DrawFn, page_id: str, targets: st.SearchStrategy[str]) -> PageSpec:
    return PageSpec(
        container=draw(st.sampled_from(CONTAINERS)),
        title=draw(_TITLES),  # titles repeat: some qualified names are held twice, as in real apps
        widget=draw(st.booleans()),
        target=draw(targets),
        referrer=f"{page_id}r",
    )


@st.composite
def _apps(draw: st.DrawFn) -> tuple[AppSpec, AppSpec]:
    count = draw(st.integers(min_value=8, max_value=24))
    modules = {"m0": "Shop", "m1": "Admin", "m2": "Extra"}
    pages = {f"p{i:02d}": draw(_page_specs(f"p{i:02d}", st.just("Shop.Gone"))) for i in range(count)}
    pages = {page_id: replace(page, target=draw(_targets(pages, modules))) for page_id, page in pages.items()}
    borrowed = ""  # a page whose widget id another page refers from
    if draw(st.booleans()):
        first, borrowed = draw(st.lists(st.sampled_from(sorted(pages)), min_size=2, max_size=2, unique=True))
        pages[first] = replace(pages[first], referrer=f"{borrowed}w")
    before = AppSpec(modules=tuple(sorted(modules.items())), pages=tuple(sorted(pages.items())))
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        edit = draw(st.sampled_from(["change", "move", "add", "remove", "rename", "id twice", "widget"]))
        page_id = draw(st.sampled_from(sorted(pages)))
        if edit == "widget" and borrowed in pages:  # its widget comes or goes: a named id held twice or not
            pages[borrowed] = replace(pages[borrowed], widget=not pages[borrowed].widget)
        elif edit == "change":
            pages[page_id] = replace(pages[page_id], target=draw(_targets(pages, modules)), widget=draw(st.booleans()))
        elif edit == "move":
            pages[page_id] = replace(pages[page_id], container=draw(st.sampled_from(CONTAINERS)))
        elif edit == "add":
            new_id = f"{page_id}a"
            pages[new_id] = draw(_page_specs(new_id, _targets(pages, modules)))
        elif edit == "remove" and len(pages) > 1:
            del pages[page_id]
        elif edit == "rename":
            module_id = draw(st.sampled_from(MODULES))
            modules[module_id] = "Office"
        elif edit == "id twice":
            other = draw(st.sampled_from(sorted(pages)))
            twin = pages[other]  # a damaged model: one element id in two units, both linked
            held = draw(st.sampled_from([twin.referrer, f"{other}w"]))  # a referring one, or a named one
            pages[page_id] = replace(pages[page_id], referrer=held, target=twin.target)
    after = AppSpec(modules=tuple(sorted(modules.items())), pages=tuple(sorted(pages.items())))
    return before, after


@settings(max_examples=400, deadline=None)
@given(_apps())
def test_what_the_second_side_takes_over_equals_what_it_builds_alone(apps: tuple[AppSpec, AppSpec]) -> None:
    models = _Models()
    before, after = (_snapshot(app, models) for app in apps)
    first_index = index_snapshot(before)
    first = build_graph(before, first_index)
    taken_over = index_snapshot(after, like=first_index)
    alone = index_snapshot(after)
    assert _index_facts(taken_over) == _index_facts(alone)
    graph = build_graph(after, taken_over, like=first)
    graph_alone = build_graph(after, alone, lazy=False)  # every element's links resolved up front
    event("index taken over" if taken_over.lent is not None else "index built anew")
    shared = sum(1 for unit_id, piece in graph.pieces.items() if first.pieces.get(unit_id) is piece)
    event(f"graph sound: {graph.sound}; some links kept: {shared > 0}")
    assert analyze_native(graph) == analyze_native(graph_alone)
    assert graph.naming_units is None or not graph.whole.done  # native analysis gathers no lazy graph's links
    event(f"links resolved when asked: {graph.naming_units is not None}")
    assert graph.naming_units == build_graph(after, alone).naming_units  # taken over, or worked out alone
    assert _graph_facts(graph) == _graph_facts(graph_alone)
    assert _unchanged_units(first_index, taken_over) == _unchanged_units(index_snapshot(before), alone)
    assert _unchanged_units(taken_over, first_index) == _unchanged_units(alone, index_snapshot(before))
