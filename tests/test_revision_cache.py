"""A ``git:`` revision read before is taken from its revision record (``analyzer.load.revision``):
the same snapshot, the same reports, and anything amiss with the record is a miss, never another model."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import analyzer.load.mpr as mpr_module
import analyzer.load.native as native_module
import analyzer.load.revision as revision_module
import analyzer.load.sources as sources_module
import analyzer.pipeline as pipeline_module
from analyzer.cache import DiskUnitStore
from analyzer.graph.build import ModelGraph
from analyzer.graph.queries import NativeFacts, analyze_native, findings_rows, native_facts_from
from analyzer.load.files import FileTree, GitTree
from analyzer.load.limits import DEFAULT_LIMITS
from analyzer.load.memo import ReadMemo, UnitPlace
from analyzer.load.mpr import read_tables
from analyzer.load.revision import RevisionModel, RevisionUnit, decode_revision, encode_revision, revision_key
from analyzer.load.sources import load_source
from analyzer.model.native import NativeSetting
from analyzer.model.snapshot import MprFormat, SideFile, Snapshot, SnapshotMeta, Unit, unit_file
from analyzer.pipeline import CheckOptions, Prepared, prepare, run_check
from analyzer.report.json_report import render_json
from fixtures.builder import edit, field_service_1_0, write_app
from fixtures.scenarios import SCENARIOS_BY_NAME
from tests.conftest import corpus_revisions
from tests.test_fast_paths import TODAY, commit_revisions, report, scenario_repo

HEAD = "git:HEAD:app"


def _listings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every ``git ls-tree`` and ``.mpr`` table read the loads make from now on."""
    calls: list[str] = []
    class CountedTree(GitTree):
        def __init__(self, repo: Path, revision: str, subdir: str, description: str) -> None:
            calls.append("ls-tree")
            super().__init__(repo, revision, subdir, description)

    def counted_tables(*args: object) -> object:
        calls.append("tables")
        return read_tables(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(sources_module, "GitTree", CountedTree)
    monkeypatch.setattr(sources_module, "read_tables", counted_tables)
    return calls


def _records(cache: Path) -> set[Path]:
    return {path for path in cache.rglob("*") if path.is_file()}


def _built(snapshot: Snapshot) -> list[object]:
    """Every element, built (from the unit's blob for a unit the cache knew)."""
    return list(snapshot.elements)


def _read_once(tmp_path: Path, scenario: str) -> tuple[Path, Snapshot, Path]:
    """A scenario's repository, its HEAD read without a cache, and a cache that has read HEAD once."""
    repo = scenario_repo(tmp_path, scenario)
    plain = load_source(HEAD, cwd=repo)
    cache = tmp_path / "cache"
    assert load_source(HEAD, cwd=repo, memo=ReadMemo(store=DiskUnitStore(cache))) == plain
    return repo, plain, cache


def test_a_revision_read_before_is_neither_listed_nor_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, plain, cache = _read_once(tmp_path, "c1-synced-attribute-removed")
    calls = _listings(monkeypatch)
    told: list[tuple[int, int, int, int]] = []
    memo = ReadMemo(store=DiskUnitStore(cache))
    again = load_source(HEAD, cwd=repo, memo=memo, progress=lambda *figures: told.append(figures))
    assert calls == []  # no ls-tree, no copy and query of the .mpr
    assert again == plain and again.source == plain.source
    assert memo.stored == len(plain.units)
    assert _built(again) == _built(plain)  # built from each unit's blob, by id
    assert told[-1][:2] == (len(plain.units), len(plain.units))
    # The other revision is a new tree: listed and read as usual, its shared units from the memo.
    load_source("git:HEAD~1:app", cwd=repo, memo=memo)
    assert calls == ["ls-tree", "tables"]


def test_a_new_tree_beside_a_known_one_does_not_read_the_side_files_they_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A revision record keeps its side files' blob ids: a new HEAD takes size and SHA-256 of the blobs
    the known BASE holds, and reads only the others; its widget packages come from their records."""
    repo = scenario_repo(tmp_path, "a1-module-native-style")
    cache = tmp_path / "cache"
    load_source("git:HEAD~1:app", cwd=repo, memo=ReadMemo(store=DiskUnitStore(cache)))
    plain = load_source(HEAD, cwd=repo)
    read: list[str] = []
    side_files = sources_module.side_files

    class Counted:
        """The tree as ``side_files`` sees it, each file it reads noted."""

        def __init__(self, tree: GitTree) -> None:
            self.tree = tree

        def __getattr__(self, name: str) -> object:
            return getattr(self.tree, name)

        def read_many(self, paths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
            wanted = list(paths)
            read.extend(wanted)
            return self.tree.read_many(wanted)

    monkeypatch.setattr(
        sources_module, "side_files", lambda tree, memo=None: side_files(cast(FileTree, Counted(tree)), memo)
    )
    parsed: list[str] = []
    monkeypatch.setattr(native_module, "read_widget_package", lambda path, *_: parsed.append(path))
    packages_read: list[str] = []
    read_many = GitTree.read_many

    def noted(tree: GitTree, paths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        wanted = list(paths)
        packages_read.extend(path for path in wanted if path.endswith(".mpk"))
        return read_many(tree, wanted)

    monkeypatch.setattr(GitTree, "read_many", noted)
    memo = ReadMemo(store=DiskUnitStore(cache))
    base = load_source("git:HEAD~1:app", cwd=repo, memo=memo)  # from its revision record
    assert read == []
    assert load_source(HEAD, cwd=repo, memo=memo) == plain
    assert parsed == packages_read == [] and any(side.path.endswith(".mpk") for side in plain.files)
    shared = set(base.files) & set(plain.files)
    assert len(shared) > 3 and set(plain.files) - shared  # the edit changed a side file
    assert not {side.path for side in shared} & set(read)
    assert {side.path for side in set(plain.files) - shared} <= set(read)


def test_a_revision_record_that_is_damaged_or_lacks_a_unit_record_is_a_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, plain, cache = _read_once(tmp_path, "a1-module-native-style")
    (revision,) = DiskUnitStore(cache).revisions.iterdir()
    assert decode_revision(revision.read_bytes()).units
    intact = revision.read_bytes()
    calls = _listings(monkeypatch)

    revision.write_bytes(intact[:-5] + b"xxxxx")
    assert load_source(HEAD, cwd=repo, memo=ReadMemo(store=DiskUnitStore(cache))) == plain
    assert calls == ["ls-tree", "tables"]
    assert revision.read_bytes() == intact  # written again

    calls.clear()
    (index,) = cache.rglob("*.keys")
    index.write_bytes(index.read_bytes()[48:])  # the first record's row: a unit's (widgets come after)
    memo = ReadMemo(store=DiskUnitStore(cache))
    assert load_source(HEAD, cwd=repo, memo=memo) == plain
    assert calls == ["ls-tree", "tables"]  # one unit's outline is gone: the tree is read as new
    assert _built(load_source(HEAD, cwd=repo, memo=ReadMemo(store=DiskUnitStore(cache)))) == _built(plain)


def test_a_revision_record_is_kept_per_limits_and_reading_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _, cache = _read_once(tmp_path, "d14-ota-enabled")
    calls = _listings(monkeypatch)
    lower = DEFAULT_LIMITS.with_overrides({"max_depth": "100"})
    assert revision_key("t", lower) != revision_key("t", DEFAULT_LIMITS)
    load_source(HEAD, cwd=repo, limits=lower, memo=ReadMemo(store=DiskUnitStore(cache)))
    assert calls == ["ls-tree", "tables"]
    monkeypatch.setattr(revision_module, "loader_fingerprint", lambda: "another reader")
    load_source(HEAD, cwd=repo, memo=ReadMemo(store=DiskUnitStore(cache)))
    assert calls == ["ls-tree", "tables"] * 2


def _pair_repo(tmp_path: Path, case: str) -> Path:
    """A repository of two revisions: a scenario's, or an edit no scenario makes: a page moved to another
    folder; a page's containment changed in the Unit table; one unit file changed (to bytes of the same
    size) and the ``.mpr`` left as it was, ContentsHash and all."""
    if case in SCENARIOS_BY_NAME:
        return scenario_repo(tmp_path, case)
    before = field_service_1_0()
    mpr = write_app(before, tmp_path / "before")
    if case == "page-moved":
        moved = edit.update_document(before, "FieldService.WorkOrderList", lambda page: replace(page, folder="Logic"))
        write_app(moved, tmp_path / "after")
    elif case == "containment-changed":
        shutil.copytree(tmp_path / "before", tmp_path / "after")
        with contextlib.closing(sqlite3.connect(tmp_path / "after" / mpr.name)) as tables, tables:
            (unit,) = tables.execute("select UnitID from Unit where ContainmentName = 'Documents' limit 1").fetchone()
            tables.execute("update Unit set ContainmentName = 'Elsewhere' where UnitID = ?", (unit,))
    else:
        write_app(edit.rename_attribute(before, "FieldService.WorkOrder.Title", "Topic"), tmp_path / "edited")
        shutil.copytree(tmp_path / "before", tmp_path / "after")
        changed = [
            path.relative_to(tmp_path / "edited")
            for path in (tmp_path / "edited").rglob("*.mxunit")
            if path.read_bytes() != (tmp_path / "before" / path.relative_to(tmp_path / "edited")).read_bytes()
        ]
        assert changed
        assert (tmp_path / "edited" / changed[0]).stat().st_size == (tmp_path / "before" / changed[0]).stat().st_size
        shutil.copyfile(tmp_path / "edited" / changed[0], tmp_path / "after" / changed[0])
    repo = tmp_path / "repo"
    commit_revisions(repo, [tmp_path / "before", tmp_path / "after"])
    return repo


@pytest.mark.parametrize(
    "case",
    [
        "c8-offline-module-renamed",
        "a8-js-only-module-added",
        "a3-page-renamed",
        "c1-synced-entity-removed",
        "page-moved",
        "containment-changed",
        "unit-file-changed-alone",
    ],
)
@pytest.mark.parametrize("lender", ["BASE from the cache", "HEAD walked"])
def test_a_tree_read_after_another_walks_only_the_units_they_do_not_hold_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, lender: str
) -> None:
    """The first check of a new commit, whose cache knows BASE only: HEAD's load takes each unit BASE
    holds alike (blob, row, containers) from BASE's revision record, unwalked. Without a cache, BASE's
    load takes them so from HEAD's walk. Either way the second load is the load of its tree alone.

    A unit whose bytes, row or place changed is walked; so may be a unit inside one (a renamed module's
    documents keep their bytes but not their qualified names), and nothing else. A unit file changed
    under an unchanged ``.mpr`` is walked too: its ContentsHash is not taken for its bytes."""
    repo = _pair_repo(tmp_path, case)
    cache = tmp_path / "cache"
    first, second = ("git:HEAD~1:app", HEAD) if lender.startswith("BASE") else (HEAD, "git:HEAD~1:app")
    plain_first, plain = load_source(first, cwd=repo), load_source(second, cwd=repo)
    memo = ReadMemo(store=DiskUnitStore(cache)) if lender.startswith("BASE") else ReadMemo()
    if memo.store is not None:
        load_source(first, cwd=repo, memo=ReadMemo(store=DiskUnitStore(cache)))
    walked: list[str] = []
    walk = mpr_module._UnitWalk._walk

    def noted(self: mpr_module._UnitWalk, row: mpr_module.UnitRow, *args: Any) -> UnitPlace:
        walked.append(row.id)
        return walk(self, row, *args)

    monkeypatch.setattr(mpr_module._UnitWalk, "_walk", noted)
    load_source(first, cwd=repo, memo=memo)  # from its revision record, or walked whole
    assert len(walked) == (0 if memo.store is not None else len(plain_first.units))
    walked.clear()
    loaded = load_source(second, cwd=repo, memo=memo)
    assert loaded == plain and _built(loaded) == _built(plain)
    before = {
        unit.id: (unit, model.outline)
        for unit, model in zip(plain_first.units, plain_first.elements.models, strict=True)
    }
    rows = {unit.id: unit for unit in plain.units}
    must = {
        unit.id
        for unit, model in zip(plain.units, plain.elements.models, strict=True)
        if before.get(unit.id) != (unit, model.outline)
    }

    def inside_a_changed_unit(unit: Unit) -> bool:
        seen: set[str] = set()
        container = unit.container
        while container is not None and container in rows and container not in seen:
            if container in must:
                return True
            seen.add(container)
            container = rows[container].container
        return False

    may = must | {unit.id for unit in plain.units if inside_a_changed_unit(unit)}
    assert must and must <= set(walked) <= may
    assert len(walked) == len(set(walked)) < len(plain.units)


@pytest.mark.parametrize("scenario", ["c8-offline-module-renamed", "a3-page-renamed"])
def test_a_check_whose_cache_knows_the_base_only_reports_as_the_plain_path(tmp_path: Path, scenario: str) -> None:
    """As docs/ci.md runs the gate: a known ``git:`` BASE against a new commit, or the working folder."""
    repo = scenario_repo(tmp_path, scenario)
    cache = tmp_path / "cache"
    load_source("git:HEAD~1:app", cwd=repo, memo=ReadMemo(store=DiskUnitStore(cache)))
    for number, head in enumerate((HEAD, "app")):
        known_base = tmp_path / f"known-base-{number}"
        shutil.copytree(cache, known_base)
        options = CheckOptions(
            base="git:HEAD~1:app", head=head, cwd=repo, today=TODAY, unit_store=DiskUnitStore(known_base)
        )
        assert render_json(run_check(options)) == report("git:HEAD~1:app", head, repo, reuse=False)


@pytest.mark.parametrize("scenario", ["c8-offline-module-renamed", "c1-synced-attribute-removed"])
def test_checks_of_revisions_read_before_report_as_the_plain_path(tmp_path: Path, scenario: str) -> None:
    """Cold cache, then warm: both sides of the check come from their revision records."""
    repo = scenario_repo(tmp_path, scenario)
    plain = report("git:HEAD~1:app", HEAD, repo, reuse=False)
    for _ in range(2):
        options = CheckOptions(
            base="git:HEAD~1:app", head=HEAD, cwd=repo, today=TODAY, unit_store=DiskUnitStore(tmp_path / "cache")
        )
        assert render_json(run_check(options)) == plain


@pytest.mark.corpus
def test_corpus_revisions_read_before_check_as_the_plain_path(corpus: Path, tmp_path: Path) -> None:
    revisions = dict(corpus_revisions(corpus))["SuperBypassUdinnn__SIGARA"][:3]
    repo = tmp_path / "repo"
    commit_revisions(repo, revisions)
    for older in (2, 1, 2, 1):  # the second pass takes every side from its revision record
        base, head = f"git:HEAD~{older}:app", f"git:HEAD~{older - 1}:app"
        options = CheckOptions(base=base, head=head, cwd=repo, today=TODAY, unit_store=DiskUnitStore(tmp_path / "c"))
        assert render_json(run_check(options)) == report(base, head, repo, reuse=False)


_TEXT = st.text(max_size=12)


@st.composite
def _revisions(draw: st.DrawFn) -> RevisionModel:
    units = []
    for number in range(draw(st.integers(0, 4))):
        unit_id = f"{number:08x}-0000-0000-0000-000000000000"
        container = draw(st.none() | _TEXT)
        containment = draw(_TEXT)
        unit = Unit(
            id=unit_id, type=draw(_TEXT), container=container, containment=containment,
            contents_hash=draw(_TEXT), path=draw(st.sampled_from([unit_file(unit_id), "App.mpr", "mprcontents/x"])),
        )
        place = UnitPlace(unit_id, container, containment, draw(st.none() | _TEXT), draw(st.booleans()), 256)
        units.append(RevisionUnit(unit, draw(_TEXT), draw(st.integers(0, 2**40)), place, draw(st.none() | _TEXT)))
    files = draw(st.lists(st.tuples(_TEXT, st.integers(0, 99), _TEXT, st.sampled_from(["", "b" * 40])), max_size=3))
    native = draw(st.lists(st.tuples(_TEXT, _TEXT, _TEXT, _TEXT), max_size=3))
    blobs = tuple(blob for *_, blob in files)
    return RevisionModel(
        meta=SnapshotMeta(
            mpr_name=draw(_TEXT), mpr_format=MprFormat.V2, format_version=draw(st.none() | st.integers(0, 10)),
            product_version=draw(_TEXT), build_version=draw(_TEXT), schema_hash=draw(_TEXT),
        ),
        units=tuple(units),
        files=tuple(SideFile(path=path, size=size, sha256=digest) for path, size, digest, _ in files),
        native=tuple(NativeSetting(kind=k, key=key, value=v, detail=d) for k, key, v, d in native),
        file_blobs=blobs if any(blobs) else (),
    )


@settings(max_examples=60, deadline=None)
@given(_revisions(), st.binary(max_size=40), st.integers(0, 10_000))
def test_a_revision_record_reads_back_as_written_and_any_damage_is_refused(
    revision: RevisionModel, noise: bytes, cut: int
) -> None:
    record = encode_revision(revision)
    assert decode_revision(record) == revision
    damaged = record[: cut % len(record)] + noise
    if damaged != record:
        with pytest.raises(ValueError):
            decode_revision(damaged)


@settings(max_examples=60, deadline=None)
@given(_revisions(), _revisions())
def test_a_second_revision_takes_the_units_it_shares_with_the_first(
    first: RevisionModel, second: RevisionModel
) -> None:
    """Decoded one after the other in a run, two revisions share the unit rows stored alike (the same
    objects) and read back exactly as each does alone."""
    shared = dataclasses.replace(second, units=second.units + first.units[:2])  # two units in both
    decoded: dict[tuple[object, ...], RevisionUnit] = {}
    before = decode_revision(encode_revision(first), decoded)
    assert before == first
    again = decode_revision(encode_revision(shared), decoded)
    assert again == shared == decode_revision(encode_revision(shared))
    assert all(unit is earlier for unit, earlier in zip(again.units[len(second.units) :], before.units, strict=False))
    taken = decode_revision(encode_revision(first), decoded)
    assert all(unit is earlier for unit, earlier in zip(taken.units, before.units, strict=True))


def test_the_cache_keeps_the_most_recently_used_revision_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One revision record per git tree read: past ``MAX_REVISIONS`` the least recently used go."""
    import os

    import analyzer.cache as cache_module

    monkeypatch.setattr(cache_module, "MAX_REVISIONS", 2)
    store = DiskUnitStore(tmp_path)
    for age, key in enumerate(("old", "older")):
        store.put_revision(key, key.encode())
        os.utime(store.revisions / key, (1000 - age, 1000 - age))
    assert store.get_revision("older") == b"older"  # used now
    (store.revisions / ".tmp-another-run").write_bytes(b"half a record")  # never counted or removed
    os.utime(store.revisions / ".tmp-another-run", (1, 1))
    store.put_revision("new", b"new")
    assert sorted(path.name for path in store.revisions.iterdir()) == [".tmp-another-run", "new", "older"]
    assert store.get_revision("old") is None
    store.put("ab" * 32, b"a unit record")  # unit records are not counted, nor removed
    assert store.get("ab" * 32) == b"a unit record"


def test_a_revision_record_past_the_size_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    revision = RevisionModel(
        meta=SnapshotMeta(
            mpr_name="App.mpr", mpr_format=MprFormat.V2, format_version=1, product_version="10.24.0",
            build_version="", schema_hash="",
        ),
        units=(),
        files=(SideFile(path="theme/x.scss", size=1, sha256="0" * 64),) * 500,
        native=(),
    )
    record = encode_revision(revision)
    assert decode_revision(record) == revision
    monkeypatch.setattr(revision_module, "MAX_REVISION_BYTES", len(record) - 5)  # the payload one byte over it
    with pytest.raises(ValueError, match="too large"):
        decode_revision(record)


def test_the_first_write_removes_record_folders_of_older_formats_only(tmp_path: Path) -> None:
    """An upgrade leaves the records of the old format unread for ever: they go, and nothing else."""
    from analyzer.load.ahead import can_fork
    from analyzer.load.memo import RECORD_FORMAT
    from analyzer.load.revision import REVISION_FORMAT

    old_units = tmp_path / f"units-{RECORD_FORMAT - 1}" / "ab"
    old_revisions = tmp_path / f"revisions-{REVISION_FORMAT - 1}"
    newer = tmp_path / f"units-{RECORD_FORMAT + 1}" / "cd"
    for folder in (old_units, old_revisions, newer, tmp_path / "units-old", tmp_path / "notes"):
        folder.mkdir(parents=True)
        (folder / "record").write_bytes(b"kept by someone")
    (tmp_path / f"units-{RECORD_FORMAT - 2}").write_bytes(b"a file, not a folder of records")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (tmp_path / f"revisions-{REVISION_FORMAT - 2}").symlink_to(outside, target_is_directory=True)

    left = tmp_path / ".trash-units-1-123"  # a run killed before it had deleted its trash
    left.mkdir()
    store = DiskUnitStore(tmp_path)
    assert store.get("ab" + "0" * 62) is None  # reading alone removes nothing
    assert old_units.is_dir()
    store.put("ab" + "0" * 62, b"record")
    assert not old_units.parent.exists() and not old_revisions.exists()  # moved out of the way at once
    if store.pruning is not None:
        store.pruning.join(timeout=60)  # deleted in a forked process; the check does not wait
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".trash-")]
    assert store.pruning is not None or not can_fork()
    assert (newer / "record").is_file() and (tmp_path / "units-old" / "record").is_file()
    assert (tmp_path / "notes" / "record").is_file() and (tmp_path / f"units-{RECORD_FORMAT - 2}").is_file()
    assert outside.is_dir() and (tmp_path / f"revisions-{REVISION_FORMAT - 2}").is_symlink()
    assert store.get("ab" + "0" * 62) == b"record"


def test_the_process_deleting_old_records_lets_go_of_mxotas_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whoever reads mxota's output to the end (a pipe, a CI log) must not wait for the deletion."""
    import os
    import select
    import time

    import analyzer.cache as cache_module
    from analyzer.load.ahead import can_fork, fork_worker

    if not can_fork():
        pytest.skip("deleted in this process where there is no fork")
    monkeypatch.setattr(cache_module, "_delete_folders", lambda folders: time.sleep(5))  # a slow disk
    reading, writing = os.pipe()
    saved = os.dup(1)
    try:
        os.dup2(writing, 1)  # the pipe is mxota's standard output, as in `mxota check ... | cat`
        os.close(writing)
        process, receiver = fork_worker(cache_module._delete_in_background, ["unused"])
        receiver.close()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    try:
        ready, _, _ = select.select([reading], [], [], 3)
        assert ready and os.read(reading, 1) == b"", "the deleting process still holds mxota's output"
        assert process.is_alive()  # and it is still deleting
    finally:
        os.close(reading)
        process.join(timeout=10)


def _prepared_twice(tmp_path: Path, scenario: str) -> tuple[Path, Prepared, DiskUnitStore]:
    """A scenario's HEAD read through a cache and prepared once, which works out its native findings
    and keeps them; the cache and what the first preparation gave."""
    repo = scenario_repo(tmp_path, scenario)
    store = DiskUnitStore(tmp_path / "cache")
    first = prepare(load_source(HEAD, cwd=repo, memo=ReadMemo(store=store)), store=store)
    assert first.snapshot.source.content_key is not None
    return repo, first, store


def test_native_findings_of_a_tree_read_before_are_read_back_as_worked_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, first, _ = _prepared_twice(tmp_path, "c8-offline-module-renamed")
    assert first.native.synced_entities and first.native.reached_documents  # something to keep
    store = DiskUnitStore(tmp_path / "cache")
    snapshot = load_source(HEAD, cwd=repo, memo=ReadMemo(store=store))

    def not_again(graph: object) -> NoReturn:
        raise AssertionError("native findings worked out again")

    with monkeypatch.context() as patched:
        patched.setattr(pipeline_module, "analyze_native", not_again)
        again = prepare(snapshot, store=store)
    assert again.native == analyze_native(again.graph) == first.native
    assert list(again.native.referrers.items()) == list(analyze_native(again.graph).referrers.items())
    # Other graph code, or the other revision's tree, has findings of its own.
    calls: list[object] = []

    def counted(graph: ModelGraph) -> NativeFacts:
        calls.append(graph)
        return analyze_native(graph)

    monkeypatch.setattr(pipeline_module, "analyze_native", counted)
    base = prepare(load_source("git:HEAD~1:app", cwd=repo, memo=ReadMemo(store=store)), store=store)
    assert len(calls) == 1 and base.native != first.native
    monkeypatch.setattr(pipeline_module, "_graph_fingerprint", lambda: "other graph code")
    assert prepare(snapshot, store=store).native == first.native
    assert len(calls) == 2
    assert prepare(load_source(str(tmp_path / "after")), store=store).native == first.native  # no key: worked out
    assert len(calls) == 3


def test_a_damaged_native_findings_record_is_worked_out_again(tmp_path: Path) -> None:
    repo, first, store = _prepared_twice(tmp_path, "c1-synced-attribute-removed")
    snapshot = load_source(HEAD, cwd=repo, memo=ReadMemo(store=store))
    (record,) = (path for path in store.revisions.iterdir() if path.stat().st_size < 5000)  # not the revision's
    intact = record.read_bytes()
    for position in range(len(intact)):
        record.write_bytes(intact[:position] + bytes([intact[position] ^ 0x55]) + intact[position + 1 :])
        assert prepare(snapshot, store=store).native == first.native
        assert record.read_bytes() == intact  # written again
    for cut in range(len(intact)):
        record.write_bytes(intact[:cut])
        assert prepare(snapshot, store=store).native == first.native


@pytest.mark.parametrize(
    "rows",
    [
        None,
        (),
        (True, (), (), (), (), ()),
        ("yes", (), (), (), (), (), ()),
        (True, [], (), (), (), (), ()),
        (True, (1,), (), (), (), (), ()),
        (True, (), (), (), (("id", "Name", "All"),), (), ()),
        (True, (), (), (), (("id", "Name", "All", "yes"),), (), ()),
        (True, (), (), (), ((1, "Name", "All", True),), (), ()),
        (True, (), (), (), (), (), (None,)),
    ],
)
def test_native_findings_rows_of_another_shape_are_refused(tmp_path: Path, rows: object) -> None:
    _, first, _ = _prepared_twice(tmp_path, "d14-ota-enabled")
    with pytest.raises(ValueError, match="unreadable native findings"):
        native_facts_from(first.graph, rows)
    assert native_facts_from(first.graph, findings_rows(first.native)) == first.native
