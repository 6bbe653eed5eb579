"""The fast paths give the reports the plain path gives, and are taken.

Fast paths: a unit both sides hold byte for byte (same git blob, or same bytes) is decoded once and its
elements shared (``analyzer.load.memo``), git blobs already read are not read again, and the diff
passes over shared units. ``CheckOptions(reuse_units=False)`` is the plain path: every unit of both
sides decoded, walked and compared. The corpus pairs are held to the same in ``test_corpus.py``.
"""

from __future__ import annotations

import datetime
import functools
import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer.load.memo import ReadMemo, git_blob_id
from analyzer.load.sources import load_source
from analyzer.model.snapshot import (
    ElementSequence,
    ModelElement,
    MprFormat,
    Reference,
    ReferenceKind,
    Snapshot,
    SnapshotMeta,
    SourceInfo,
    SourceKind,
    Unit,
    UnitModel,
    element_key,
    new_element,
)
from analyzer.pipeline import CheckOptions, run_check
from analyzer.progress import LoadBar, wanted
from analyzer.report.json_report import render_json
from tests.conftest import APPS, corpus_revisions

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fixtures.builder import write_app  # noqa: E402
from fixtures.scenarios import SCENARIOS_BY_NAME  # noqa: E402

TODAY = datetime.date(2026, 11, 27)


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        check=True,
        capture_output=True,
    )


def commit_revisions(repo: Path, apps: list[Path]) -> None:
    """A repository whose ``app/`` folder holds each app in turn, one commit each."""
    repo.mkdir()
    git(repo, "init", "-q")
    for number, app in enumerate(apps):
        shutil.rmtree(repo / "app", ignore_errors=True)
        # Fresh modification times: copies that keep the originals' (``copy2``) can look unchanged to
        # ``git add`` when two revisions of a file have the same size and were written in one second.
        shutil.copytree(app, repo / "app", symlinks=True, copy_function=shutil.copy)
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"revision {number}", "--allow-empty")


def scenario_repo(tmp_path: Path, scenario: str) -> Path:
    """A scenario's two apps written to ``before/`` and ``after/``, and a repository with both."""
    case = SCENARIOS_BY_NAME[scenario]
    write_app(case.before(), tmp_path / "before")
    write_app(case.after(), tmp_path / "after")
    repo = tmp_path / "repo"
    commit_revisions(repo, [tmp_path / "before", tmp_path / "after"])
    return repo


def report(base: str, head: str, cwd: Path, reuse: bool) -> str:
    options = CheckOptions(base=base, head=head, cwd=cwd, reuse_units=reuse, today=TODAY)
    return render_json(run_check(options))


def test_git_blob_id_is_what_git_computes(tmp_path: Path) -> None:
    data = b"unit bytes\x00\x01"
    (tmp_path / "f").write_bytes(data)
    done = subprocess.run(["git", "hash-object", str(tmp_path / "f")], capture_output=True, check=True, text=True)
    assert git_blob_id(data) == done.stdout.strip()


def test_a_memo_shares_the_elements_of_equal_units() -> None:
    memo = ReadMemo()
    before = load_source(str(APPS / "field-service-1.0"), memo=memo)
    after = load_source(str(APPS / "field-service-1.1"), memo=memo)
    assert memo.hits > len(after.units) // 2
    assert after == load_source(str(APPS / "field-service-1.1"))  # shared or not, the same snapshot
    shared = {e.id for e in before.elements} & {e.id for e in after.elements}
    by_id = {e.id: e for e in before.elements}
    assert any(by_id[e.id] is e for e in after.elements if e.id in shared)


@pytest.mark.parametrize(
    "scenario",
    ["c8-offline-module-renamed", "a1-module-native-style", "c1-synced-attribute-removed", "d14-ota-enabled"],
)
def test_git_revisions_check_the_same_with_and_without_fast_paths(tmp_path: Path, scenario: str) -> None:
    """A renamed module leaves its documents' bytes equal but their names new: they are walked again."""
    repo = scenario_repo(tmp_path, scenario)
    fast = report("git:HEAD~1:app", "git:HEAD:app", repo, reuse=True)
    assert fast == report("git:HEAD~1:app", "git:HEAD:app", repo, reuse=False)
    folders = report(str(tmp_path / "before"), str(tmp_path / "after"), tmp_path, reuse=False)
    assert _findings(fast) == _findings(folders)


def _findings(json_text: str) -> list[tuple[str, str, str]]:
    import json

    document = json.loads(json_text)
    return sorted((f["rule"], f["element"]["id"], f["level"]) for f in document["findings"])


@pytest.mark.corpus
def test_corpus_revisions_through_git_check_the_same_with_and_without_fast_paths(
    corpus: Path, tmp_path: Path
) -> None:
    revisions = dict(corpus_revisions(corpus))["SuperBypassUdinnn__SIGARA"][:3]
    repo = tmp_path / "repo"
    commit_revisions(repo, revisions)
    for older in (2, 1):
        base, head = f"git:HEAD~{older}:app", f"git:HEAD~{older - 1}:app"
        assert report(base, head, repo, reuse=True) == report(base, head, repo, reuse=False)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_progress_bar_waits_a_second_then_shows_units_and_megabytes() -> None:
    stream = io.StringIO()
    clock = FakeClock()
    bar = LoadBar(stream, clock)
    bar(1, 100, 2**20, 100 * 2**20)
    clock.now = 0.5
    bar(50, 100, 50 * 2**20, 100 * 2**20)
    assert not bar.shown and stream.getvalue() == ""  # a quick load never sees a bar
    clock.now = 1.5
    bar(60, 100, 60 * 2**20, 100 * 2**20)
    assert bar.shown
    clock.now = 1.55
    bar(100, 100, 100 * 2**20, 100 * 2**20)
    bar.close()
    assert "reading model 1" in stream.getvalue()


@pytest.mark.parametrize(
    ("environ", "terminal", "expected"),
    [
        ({}, True, True),
        ({}, False, False),
        ({"CI": "true"}, True, False),
        ({"TERM": "dumb"}, True, False),
        ({"MXOTA_NO_PROGRESS": "1"}, True, False),
    ],
)
def test_the_progress_bar_is_only_for_a_terminal_outside_ci(
    environ: dict[str, str], terminal: bool, expected: bool
) -> None:
    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return terminal

    assert wanted(Stream(), environ) is expected


def test_machine_output_never_holds_a_progress_bar(tmp_path: Path) -> None:
    """Through the CLI with stderr piped (as in CI): no bar, byte-identical JSON."""
    out = tmp_path / "r.json"
    done = subprocess.run(
        [sys.executable, "-m", "analyzer", "check", str(APPS / "field-service-1.0"), str(APPS / "field-service-1.1"),
         "--format", f"json:{out}"],
        capture_output=True,
        check=False,
        text=True,
    )
    assert done.returncode in (0, 1)
    assert done.stderr == ""
    assert out.read_text().lstrip().startswith("{")


def test_new_element_builds_the_same_frozen_element_as_the_dataclass() -> None:
    import dataclasses
    from types import MappingProxyType

    from analyzer.model.snapshot import ModelElement, PropertyValue, Reference, ReferenceKind, new_element

    properties: MappingProxyType[str, PropertyValue] = MappingProxyType({"Caption": "Save", "Index": 3})
    references = (Reference(property="Page", target="M.P", kind=ReferenceKind.NAME),)
    fast = new_element("e", "Forms$ActionButton", "save", "M.P.save", "p", "Widgets", 2, "u", properties, references)
    plain = ModelElement(
        id="e", type="Forms$ActionButton", name="save", qualified_name="M.P.save", parent="p", slot="Widgets",
        index=2, unit="u", properties=properties, references=references,
    )
    assert fast == plain and repr(fast) == repr(plain)
    assert [f.name for f in dataclasses.fields(ModelElement)] == [
        "id", "type", "name", "qualified_name", "parent", "slot", "index", "unit", "properties", "references"
    ]  # new_element sets these, in this order: a new field must be added there too
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.name = "other"  # type: ignore[misc]


def test_a_cache_directory_gives_the_same_snapshot_and_is_read_back(tmp_path: Path) -> None:
    from analyzer.cache import DiskUnitStore

    app = str(APPS / "field-service-1.1")
    plain = load_source(app)
    first = ReadMemo(store=DiskUnitStore(tmp_path / "cache"))
    assert load_source(app, memo=first) == plain
    assert first.stored == 0
    second = ReadMemo(store=DiskUnitStore(tmp_path / "cache"))
    assert load_source(app, memo=second) == plain
    assert second.stored == len(plain.units)  # nothing decoded: every unit came from the cache
    (pack,) = (tmp_path / "cache").rglob("*.pack")
    pack.write_bytes(b"garbage" + pack.read_bytes()[7:])  # the first record written: a unit's
    third = ReadMemo(store=DiskUnitStore(tmp_path / "cache"))
    assert load_source(app, memo=third) == plain  # a damaged record is a miss, never another model
    assert third.stored == len(plain.units) - 1


def _records(count: int) -> dict[str, bytes]:
    """Keys as ``store_key`` makes them, and records of different sizes (the store does not read them)."""
    return {f"{number:02x}" * 32: bytes([number]) * (100 + 37 * number) for number in range(count)}


def test_a_cache_record_that_is_not_in_a_plain_pack_within_the_limit_is_a_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record over the limit, a pack or index that is a FIFO or a folder, a key that is not a store
    key: each a miss (never a hang, never a read of the whole limit); a plain record reads back whole."""
    import os

    import analyzer.cache as cache_module
    from analyzer.cache import DiskUnitStore
    from analyzer.load.memo import READER

    store = DiskUnitStore(tmp_path)
    records = _records(3)
    for key, record in records.items():
        store.put(key, record)
    assert {key: store.get(key) for key in records} == records
    store.put("a key", b"not kept")  # not 64 hex digits: not a store key
    assert store.get("a key") is None
    monkeypatch.setattr(cache_module, "MAX_RECORD_BYTES", 120)
    assert [store.get(key) for key in records] == [records["00" * 32], None, None]
    monkeypatch.undo()
    (pack,) = store.root.glob("*.pack")
    index = pack.with_suffix(".keys")
    build = READER
    os.mkfifo(store.root / f"{build}-fifo.keys")  # an index that is a FIFO, beside a pack
    (store.root / f"{build}-fifo.pack").write_bytes(b"x" * 1000)
    os.mkfifo(store.root / f"{build}-other.pack")  # a pack that is a FIFO, beside an index
    (store.root / f"{build}-other.keys").write_bytes(index.read_bytes())
    (store.root / f"{build}-folder.keys").mkdir()
    assert DiskUnitStore(tmp_path).record_count() == 3  # only the plain pack's records
    index.rename(store.root / f"{build}-moved.keys")  # its pack is gone: the index names nothing
    assert DiskUnitStore(tmp_path).record_count() == 0


def test_pack_rows_that_are_damaged_or_name_what_the_pack_does_not_hold_are_misses(tmp_path: Path) -> None:
    """Every single-byte change of an index, and every length of a pack cut short (a run killed while
    writing): each record reads back whole and right, or is a miss; never the bytes of another."""
    from analyzer.cache import DiskUnitStore

    records = _records(4)
    writer = DiskUnitStore(tmp_path / "cache")
    for key, record in records.items():
        writer.put(key, record)
    writer.close()
    (pack,) = (tmp_path / "cache").rglob("*.pack")
    index, whole_pack = pack.with_suffix(".keys"), pack.read_bytes()
    whole_index = index.read_bytes()

    def read_back() -> dict[str, bytes | None]:
        store = DiskUnitStore(tmp_path / "cache")
        try:
            return {key: store.get(key) for key in records}
        finally:
            store.close()

    for position in range(len(whole_index)):
        damaged = bytearray(whole_index)
        damaged[position] ^= 0x41
        index.write_bytes(bytes(damaged))
        found = read_back()
        assert all(found[key] in (None, records[key]) for key in records), position
        assert sum(value is None for value in found.values()) == 1, position  # only the damaged row
    index.write_bytes(whole_index[:-5])  # the last row cut short
    assert [value is None for value in read_back().values()] == [False, False, False, True]
    index.write_bytes(whole_index)
    for length in range(len(whole_pack)):
        pack.write_bytes(whole_pack[:length])
        found = read_back()
        assert all(found[key] in (None, records[key]) for key in records), length
        ends = [sum(len(record) for record in list(records.values())[: number + 1]) for number in range(4)]
        assert [value is not None for value in found.values()] == [end <= length for end in ends]


def test_many_packs_are_merged_into_a_new_runs_own_and_every_record_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``MAX_PACKS``, a run's first write copies the records of every settled pack but the largest
    into its own and removes them; a pack written to lately (a run may still be at it) stays."""
    import os

    import analyzer.cache as cache_module
    from analyzer.cache import DiskUnitStore

    monkeypatch.setattr(cache_module, "MAX_PACKS", 4)
    records = _records(8)
    keys = list(records)
    packs: list[Path] = []
    for number, key in enumerate(keys[:5]):  # five earlier runs, one pack each, the first the largest
        run = DiskUnitStore(tmp_path)
        run.put(key, records[key] * (20 if number == 0 else 1))
        if number == 0:
            records[key] *= 20
        run.close()
        (new,) = set(tmp_path.rglob("*.pack")).difference(packs)
        packs.append(new)
    for pack in packs[:4]:
        for path in (pack, pack.with_suffix(".keys")):
            os.utime(path, (1000, 1000))  # written long ago
    reader = DiskUnitStore(tmp_path)
    assert {key: reader.get(key) for key in keys[:5]} == {key: records[key] for key in keys[:5]}
    run = DiskUnitStore(tmp_path)
    run.put(keys[5], records[keys[5]])  # the first write merges
    left = sorted(tmp_path.rglob("*.pack"))
    assert packs[0] in left and packs[4] in left and len(left) == 3  # the largest, the recent, its own
    merged = DiskUnitStore(tmp_path)
    assert {key: merged.get(key) for key in keys[:6]} == {key: records[key] for key in keys[:6]}
    assert merged.record_count() == 6
    assert {key: reader.get(key) for key in keys[:5]} == {key: records[key] for key in keys[:5]}  # kept open


def test_packs_of_another_build_are_never_read_and_go_once_unused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Packs are named by the reading code: a run reads only its own build's, marks them used, and its
    first write removes another build's packs that no run of that build has read for ``UNUSED_DAYS``
    (and a pack left without its index an hour ago)."""
    import os
    import time

    import analyzer.cache as cache_module
    import analyzer.load.memo as memo_module
    from analyzer.cache import DiskUnitStore

    records = _records(3)
    keys = list(records)
    for build, key in (("old-build", keys[0]), ("other-build", keys[1])):
        monkeypatch.setattr(memo_module, "READER", build)
        writer = DiskUnitStore(tmp_path)
        writer.put(key, records[key])
        writer.put(keys[2], records[keys[2]])  # the same key in both builds' packs
        writer.close()
    monkeypatch.undo()
    days = 86400 * cache_module.UNUSED_DAYS
    old_index = next(tmp_path.rglob("old-build-*.keys"))
    other_index = next(tmp_path.rglob("other-build-*.keys"))
    os.utime(old_index, (time.time() - days - 60,) * 2)  # no run of that build for longer
    os.utime(other_index, (time.time() - days + 3600,) * 2)
    current = DiskUnitStore(tmp_path)
    assert [current.get(key) for key in keys] == [None, None, None]
    assert old_index.exists()  # reading alone removes nothing
    orphan = current.root / "killed-while-merging.pack"  # its index removed, the run killed before the pack
    orphan.write_bytes(b"records")
    os.utime(orphan, (time.time() - cache_module.MERGE_AFTER_SECONDS - 60,) * 2)
    opening = current.root / "opening.pack"  # a run between opening its pack and its index
    opening.write_bytes(b"")
    current.put(keys[0], records[keys[0]])
    assert not old_index.exists() and not old_index.with_suffix(".pack").exists()
    assert not orphan.exists() and opening.exists()
    assert other_index.exists() and other_index.with_suffix(".pack").exists()
    assert DiskUnitStore(tmp_path).record_count() == 1
    monkeypatch.setattr(memo_module, "READER", "other-build")
    assert DiskUnitStore(tmp_path).get(keys[1]) == records[keys[1]]  # and marked used again
    assert other_index.stat().st_mtime > time.time() - 60


def test_packs_are_read_where_the_system_has_no_pread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows has no ``os.pread``: records are read by seeking instead, and read back the same."""
    import os

    from analyzer.cache import DiskUnitStore

    records = _records(3)
    writer = DiskUnitStore(tmp_path)
    for key, record in records.items():
        writer.put(key, record)
    monkeypatch.delattr(os, "pread")
    reader = DiskUnitStore(tmp_path)
    assert {key: reader.get(key) for key in reversed(list(records))} == records


def test_after_a_failed_write_a_run_writes_no_more(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk can leave part of a record at the end of the pack: the run stops writing there, even
    once there is room again, so no row ever names bytes that are not its record."""
    import os

    import analyzer.cache as cache_module
    from analyzer.cache import DiskUnitStore

    records = _records(3)
    keys = list(records)
    store = DiskUnitStore(tmp_path)
    store.put(keys[0], records[keys[0]])
    write_all = cache_module._write_all

    def half_then_full(descriptor: int, data: bytes | memoryview) -> None:
        os.write(descriptor, bytes(data)[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_module, "_write_all", half_then_full)
    store.put(keys[1], records[keys[1]])
    assert not store.writable
    monkeypatch.setattr(cache_module, "_write_all", write_all)
    store.put(keys[2], records[keys[2]])  # room again: still nothing written
    reader = DiskUnitStore(tmp_path)
    assert [reader.get(key) for key in keys] == [records[keys[0]], None, None]


def test_a_forked_process_never_writes_its_parents_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker forked after the run's pack was opened inherits it; only the run that opened it appends."""
    import os

    from analyzer.cache import DiskUnitStore

    records = _records(2)
    (first, second) = records
    store = DiskUnitStore(tmp_path)
    store.put(first, records[first])
    parent = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: parent + 1)  # as seen in a forked process
    store.put(second, records[second])
    monkeypatch.undo()
    assert DiskUnitStore(tmp_path).record_count() == 1
    assert len(list(tmp_path.rglob("*.pack"))) == 1


def test_two_runs_writing_at_once_each_keep_their_records(tmp_path: Path) -> None:
    from analyzer.cache import DiskUnitStore

    records = _records(6)
    runs = [DiskUnitStore(tmp_path), DiskUnitStore(tmp_path)]
    for number, (key, record) in enumerate(records.items()):
        runs[number % 2].put(key, record)  # interleaved, each into its own pack
    assert len(list(tmp_path.rglob("*.pack"))) == 2
    reader = DiskUnitStore(tmp_path)
    assert {key: reader.get(key) for key in records} == records
    assert all(run.get(key) == record for run in runs for key, record in records.items())


def test_a_cache_that_cannot_be_written_is_skipped(tmp_path: Path) -> None:
    from analyzer.cache import DiskUnitStore

    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache would go", encoding="utf-8")
    store = DiskUnitStore(blocked)
    app = str(APPS / "field-service-1.0")
    assert load_source(app, memo=ReadMemo(store=store)) == load_source(app)
    assert not store.writable


def test_check_with_a_cache_reports_the_same_on_every_run(tmp_path: Path) -> None:
    outputs = []
    for run in range(3):
        out = tmp_path / f"r{run}.json"
        cache = ["--cache", str(tmp_path / "cache")] if run else []
        done = subprocess.run(
            [sys.executable, "-m", "analyzer", "check", str(APPS / "field-service-1.0"),
             str(APPS / "field-service-1.1"), "--format", f"json:{out}", *cache],
            capture_output=True, check=False, text=True,
        )
        assert done.returncode in (0, 1) and done.stderr == ""
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]  # no cache, cold cache, warm cache
    assert any((tmp_path / "cache").rglob("*"))


@pytest.mark.corpus
@pytest.mark.parametrize("project", ["SuperBypassUdinnn__SIGARA", "TimvanSteenbergen__LocationService"])
def test_corpus_pairs_check_the_same_from_a_warm_cache(corpus: Path, tmp_path: Path, project: str) -> None:
    """Cold cache, warm cache and no cache: the same report for a real pair (v2 SIGARA, v1 LocationService)."""
    base, head = (str(path) for path in dict(corpus_revisions(corpus))[project][:2])
    from analyzer.cache import DiskUnitStore

    def checked(store: DiskUnitStore | None, reuse: bool) -> str:
        options = CheckOptions(base=base, head=head, cwd=tmp_path, reuse_units=reuse, today=TODAY, unit_store=store)
        return render_json(run_check(options))

    plain = checked(None, reuse=False)
    assert checked(DiskUnitStore(tmp_path / "cache"), reuse=True) == plain  # fills the cache
    assert DiskUnitStore(tmp_path / "cache").record_count() > 100
    assert checked(DiskUnitStore(tmp_path / "cache"), reuse=True) == plain


def test_records_written_by_another_reader_are_never_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store key holds a hash of the reading code: a changed walk never takes an old walk's records."""
    import analyzer.load.memo as memo_module
    from analyzer.cache import DiskUnitStore

    app = str(APPS / "field-service-1.0")
    load_source(app, memo=ReadMemo(store=DiskUnitStore(tmp_path)))
    monkeypatch.setattr(memo_module, "READER", "another reader")
    other = ReadMemo(store=DiskUnitStore(tmp_path))
    assert load_source(app, memo=other) == load_source(app)
    assert other.stored == 0


def test_a_unit_record_with_any_byte_damaged_or_cut_short_is_a_miss() -> None:
    """Every single-byte change and every truncation of a record fails its CRC-32 (or its shape)."""
    from analyzer.load.memo import UnitPlace, decode_record, encode_record

    snapshot = load_source(str(APPS / "field-service-1.0"))
    model = min((m for m in snapshot.elements.models if m.outline.referring), key=lambda m: m.outline.count)
    place = UnitPlace(model.unit_id, None, "Documents", "Shop", True, 256)
    record = encode_record(model.outline.root_type, "Doc", place, model.outline)
    assert decode_record(record, model.unit_id)[3] == model.outline
    for position in range(len(record)):
        for flip in (0x01, 0x80, 0xFF):
            damaged = record[:position] + bytes([record[position] ^ flip]) + record[position + 1 :]
            with pytest.raises(ValueError):
                decode_record(damaged, model.unit_id)
    for cut in range(len(record)):
        with pytest.raises(ValueError):
            decode_record(record[:cut], model.unit_id)


def test_a_unit_record_whose_rows_have_another_shape_is_a_miss() -> None:
    """A record that passes its checksum but holds outline rows of another shape (a hand-made or
    foreign record) is refused as unreadable, never turned into half-built rows."""
    import marshal

    from analyzer.load.memo import UnitPlace, decode_record, encode_record, seal_record

    snapshot = load_source(str(APPS / "field-service-1.0"))
    model = next(m for m in snapshot.elements.models if m.outline.named and m.outline.referring)
    place = UnitPlace(model.unit_id, None, "Documents", "Shop", True, 256)
    record = encode_record(model.outline.root_type, "Doc", place, model.outline)
    decoded = decode_record(record, model.unit_id)[3]
    assert isinstance(decoded.referring_stored, bytes)  # unpacked only when asked for
    assert decoded.names_used == model.outline.names_used and decoded.naming_ids == model.outline.naming_ids
    assert (decoded.named, decoded.referring) == (model.outline.named, model.outline.referring)
    assert decoded == model.outline

    def reshaped(change: int, row: tuple[object, ...]) -> bytes:
        value = marshal.loads(record[4:])
        lines = list(value[4])
        lines[change] = (row, *lines[change][1:])
        payload = marshal.dumps((*value[:4], tuple(lines)))
        return seal_record(payload)

    with pytest.raises(ValueError, match="unreadable"):
        decode_record(reshaped(5, ("id", "type", "Shop.Doc")), model.unit_id)
    # Referring rows stay packed until asked for; rows of another shape are refused then.
    value = marshal.loads(record[4:])
    lines = list(value[4])
    lines[6] = marshal.dumps((("id", "type"),))
    payload = marshal.dumps((*value[:4], tuple(lines)))
    packed = decode_record(seal_record(payload), model.unit_id)[3]
    with pytest.raises(ValueError, match="unreadable referring rows"):
        _ = packed.referring


@pytest.fixture
def split_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """Walk half the units in a forked worker even for a small app (the path large apps take)."""
    import analyzer.load.mpr as mpr_module

    monkeypatch.setattr(mpr_module, "SPLIT_MIN_BYTES", 0)


@pytest.mark.skipif(sys.platform != "linux", reason="the split walk forks, on Linux only")
def test_a_split_walk_gives_the_same_snapshot(split_always: None, tmp_path: Path) -> None:
    from analyzer.cache import DiskUnitStore

    for app in ("field-service-1.0", "field-service-1.1", "field-service-1.0-v1"):
        plain = load_source(str(APPS / app))
        memo = ReadMemo(store=DiskUnitStore(tmp_path / app))
        assert load_source(str(APPS / app), memo=memo) == plain
        assert load_source(str(APPS / app), memo=ReadMemo(store=DiskUnitStore(tmp_path / app))) == plain


@pytest.mark.skipif(sys.platform != "linux", reason="the split walk forks, on Linux only")
def test_a_split_walk_reports_the_first_broken_unit_in_walk_order(split_always: None, tmp_path: Path) -> None:
    from analyzer.errors import InputError

    app = tmp_path / "app"
    shutil.copytree(APPS / "field-service-1.0", app)
    units = sorted(app.glob("mprcontents/*/*/*.mxunit"))
    import bson

    containers = {"Projects$Project", "Projects$ModuleImpl", "Projects$Folder"}
    for unit in units:  # every leaf broken: the serial walk's first one must be named, whoever met it
        data = unit.read_bytes()
        if bson.decode(data)["$Type"] not in containers:
            unit.write_bytes(data[:-3])
    with pytest.raises(InputError) as split:
        load_source(str(app))
    import analyzer.load.mpr as mpr_module

    mpr_module.SPLIT_MIN_BYTES = 1 << 62
    with pytest.raises(InputError) as serial:
        load_source(str(app))
    assert str(split.value) == str(serial.value)


@pytest.mark.corpus
@pytest.mark.skipif(sys.platform != "linux", reason="the split walk forks, on Linux only")
def test_a_split_walk_of_a_real_app_gives_the_same_snapshot(corpus: Path, split_always: None) -> None:
    app = str(dict(corpus_revisions(corpus))["SuperBypassUdinnn__SIGARA"][0])
    split = load_source(app, memo=ReadMemo())
    import analyzer.load.mpr as mpr_module

    mpr_module.SPLIT_MIN_BYTES = 1 << 62
    assert split == load_source(app)


# ------------------------------------------------------------------------------------ lazy elements


def test_a_check_builds_elements_only_for_the_units_it_looks_into() -> None:
    """Graph, native facts and diff run on outlines: only changed units and the few documents the
    native analysis reads (navigation, domain models of synced entities) get their elements built."""
    from analyzer.model.levels import Level
    from analyzer.pipeline import check_snapshots, load_rules, prepare

    memo = ReadMemo()
    before = load_source(str(APPS / "field-service-1.0"), memo=memo)
    after = load_source(str(APPS / "field-service-1.1"), memo=memo)
    assert not any(model.built for model in after.elements.models)  # a load builds nothing
    base, head = prepare(before), prepare(after)
    report = check_snapshots(base, head, load_rules(), Level.DATA_RISK)
    assert report.findings
    changed = {
        unit.id
        for unit in after.units
        if base.index.unit_models.get(unit.id) is not head.index.unit_models.get(unit.id)
    }
    looked_into = {"Navigation$NavigationDocument", "DomainModels$DomainModel", "Projects$Project", "Projects$Folder"}
    built = {model.unit_id for model in after.elements.models if model.built}
    assert {unit for unit in built if head.index.unit_types[unit] not in looked_into} <= changed
    assert len(built) < len(after.elements.models) // 3


def test_an_outline_answers_as_the_built_elements_do() -> None:
    """Every unit of the example apps: the outline read at load equals the one of its built elements."""
    from analyzer.model.snapshot import outline_of

    for app in ("field-service-1.0", "field-service-1.1", "field-service-1.0-v1"):
        snapshot = load_source(str(APPS / app))
        for model in snapshot.elements.models:
            assert outline_of(model.elements) == model.outline, model.unit_id


def _unit(
    unit_id: str, unit_type: str, named: tuple[tuple[str, str], ...], refers_to: str | None = None
) -> UnitModel:
    """A document's unit model: its root and one named member per (id, qualified name); ``refers_to``:
    a member that names that qualified name."""
    root = new_element(unit_id, unit_type, unit_id, f"Shop.{unit_id}", "m", "Documents", 0, unit_id, {}, ())
    members = [
        new_element(eid, "Forms$TextBox", qname.rsplit(".", 1)[-1], qname, unit_id, "Widgets", i, unit_id, {}, ())
        for i, (eid, qname) in enumerate(named)
    ]
    if refers_to is not None:
        reference = Reference(property="Attribute", target=refers_to, kind=ReferenceKind.NAME)
        members.append(
            new_element(f"{unit_id}-ref", "Forms$TextBox", None, None, unit_id, "Widgets", 9, unit_id, {}, (reference,))
        )
    return UnitModel.of(unit_id, (root, *members))


@functools.cache
def _module() -> UnitModel:
    """Module ``m`` (Shop): one unit model, as both loads of a check share a unit with equal bytes."""
    return UnitModel.of(
        "m", (new_element("m", "Projects$ModuleImpl", "Shop", "Shop", None, "Modules", 0, "m", {}, ()),)
    )


def _placed_snapshot(rows: list[tuple[UnitModel, str | None]]) -> Snapshot:
    """A snapshot of the given unit models under the given containers, in canonical order."""
    meta = SnapshotMeta(
        mpr_name="a.mpr", mpr_format=MprFormat.V2, format_version=2, product_version="10.0.0",
        build_version="1", schema_hash="",
    )
    ordered = sorted(rows, key=lambda row: row[0].unit_id)
    units = tuple(
        Unit(id=model.unit_id, type=model.outline.root_type, container=container, containment="Documents",
             contents_hash="", path="")
        for model, container in ordered
    )
    return Snapshot(meta=meta, units=units, elements=ElementSequence(model for model, _ in ordered), files=(),
                    source=SourceInfo(kind=SourceKind.APP_DIRECTORY, location="test"))


def _snapshot_of(models: list[UnitModel]) -> Snapshot:
    """A snapshot of module ``m`` (Shop) and the given documents, in canonical order."""
    return _placed_snapshot([(_module(), None), *((model, "m") for model in models)])


def _graph_facts(graph: object) -> tuple[object, ...]:
    from analyzer.graph.build import ModelGraph

    assert isinstance(graph, ModelGraph)
    return (
        dict(graph.names),
        dict(graph.dangling),
        {source: graph.links(source) for source, _, _ in graph.referring},
        graph.name_references,
        graph.referring,
        dict(graph.element_units),
        sorted(graph.graph.edges(data="kind")),
        graph.sound,
    )


def _assert_reached_referrers(graph: object) -> None:
    """Where a blast radius starts (the reached documents that refer to an element) is the map of every
    document referring to it, cut to the reached ones; working that out turns no map around."""
    from analyzer.graph.build import ModelGraph
    from analyzer.graph.queries import _Referrers, analyze_native

    assert isinstance(graph, ModelGraph)
    facts = analyze_native(graph)
    assert isinstance(facts.referrers, _Referrers)  # turned around on first use, sound graph or not
    assert facts.referrers._turned is None
    reached = facts.reached_documents
    cut = {element: units & reached for element, units in facts.referrers.items() if units & reached}
    assert dict(facts.reached_referrers) == cut
    assert not reached or cut  # a reached document refers to something in every app tested


def _index_facts(index: object) -> tuple[object, ...]:
    """Everything an index answers, in the order it answers it (dicts compared as item lists)."""
    from analyzer.graph.index import SnapshotIndex

    assert isinstance(index, SnapshotIndex)
    named = index.elements._named  # the roots and named elements, by unit
    return (
        list(index.units.items()),
        list(index.document_labels.items()),
        list(index.modules.items()),
        list(index.unit_types.items()),
        list(index.unit_models.items()),
        {element_id: model.unit_id for element_id, model in named.items()},
    )


@pytest.mark.parametrize(
    "scenario", ["c8-offline-module-renamed", "c1-synced-attribute-removed", "a1-module-native-style"]
)
def test_a_graph_built_like_the_other_side_equals_one_built_alone(tmp_path: Path, scenario: str) -> None:
    """Units both sides share keep their links from the other side's graph only when every name they
    refer to resolves as before (a module rename re-resolves them all; a removed attribute its users);
    the index taken over from the other side's equals one built alone."""
    from analyzer.diff.diff import _shared_models, _unchanged_units
    from analyzer.graph.build import build_graph
    from analyzer.graph.index import index_snapshot

    case = SCENARIOS_BY_NAME[scenario]
    write_app(case.before(), tmp_path / "before")
    write_app(case.after(), tmp_path / "after")
    memo = ReadMemo()
    after = load_source(str(tmp_path / "after"), memo=memo)
    before = load_source(str(tmp_path / "before"), memo=memo)
    head = build_graph(after)
    like = build_graph(before, like=head)
    assert _graph_facts(like) == _graph_facts(build_graph(before, lazy=False))
    shared = sum(1 for unit_id, piece in like.pieces.items() if head.pieces.get(unit_id) is piece)
    assert shared > 0  # units outside the renamed module, or untouched by the change
    taken_over = index_snapshot(before, like=head.index)
    assert _index_facts(taken_over) == _index_facts(index_snapshot(before))
    _assert_reached_referrers(like)
    # The diff takes the units whose model is the very same from how the index found they differ.
    renamed_module = scenario == "c8-offline-module-renamed"  # every unit of the module differs
    assert (_shared_models(taken_over, head.index) is None) == renamed_module == (taken_over.lent is None)
    unchanged = _unchanged_units(index_snapshot(before), index_snapshot(after))
    assert _unchanged_units(taken_over, head.index) == unchanged
    assert _unchanged_units(head.index, taken_over) == unchanged


def test_a_shared_unit_is_resolved_again_when_a_name_it_uses_changes() -> None:
    """The page is the very same unit model on both sides, but the attribute it names is gone from the
    other side's domain model: its links are resolved again (the reference now dangles), not taken over."""
    from analyzer.graph.build import build_graph

    def element(eid: str, etype: str, name: str | None, qname: str | None, parent: str | None, unit: str,
                references: tuple[Reference, ...] = ()) -> ModelElement:
        return new_element(eid, etype, name, qname, parent, "Members", 0, unit, {}, references)

    def domain_model(with_attribute: bool) -> UnitModel:
        members = [
            element("d", "DomainModels$DomainModel", None, None, "m", "d"),
            element("e", "DomainModels$EntityImpl", "Order", "Shop.Order", "d", "d"),
        ]
        if with_attribute:
            members.append(element("x", "DomainModels$Attribute", "Total", "Shop.Order.Total", "e", "d"))
        return UnitModel.of("d", tuple(members))

    page = UnitModel.of("p", (
        element("p", "Forms$Page", "Cart", "Shop.Cart", "m", "p"),
        element("w", "Forms$TextBox", "box", "Shop.Cart.box", "p", "p",
                (Reference(property="AttributeRef.Attribute", target="Shop.Order.Total", kind=ReferenceKind.NAME),)),
    ))

    def snapshot(with_attribute: bool) -> Snapshot:
        return _snapshot_of([domain_model(with_attribute), page])

    before, after = snapshot(True), snapshot(False)
    head = build_graph(before)
    assert head.links("w") and not head.dangling
    like = build_graph(after, like=head)
    assert _graph_facts(like) == _graph_facts(build_graph(after, lazy=False))
    assert like.dangling == {"Shop.Order.Total": ("w",)}
    assert like.pieces["p"] is not head.pieces["p"] and like.pieces["m"] is head.pieces["m"]


@pytest.mark.parametrize("scenario", ["c1-synced-attribute-removed", "a1-module-native-style"])
def test_git_revisions_from_a_warm_cache_read_built_units_by_blob_id(tmp_path: Path, scenario: str) -> None:
    """With every unit's outline in the cache, a `git:` check reads no unit until it looks into one;
    the units it builds are then read from the repository by blob id, and the report is the same."""
    from analyzer.cache import DiskUnitStore
    from analyzer.load.files import GitTree

    repo = scenario_repo(tmp_path, scenario)
    plain = report("git:HEAD~1:app", "git:HEAD:app", repo, reuse=False)

    def cached() -> str:
        options = CheckOptions(
            base="git:HEAD~1:app", head="git:HEAD:app", cwd=repo, today=TODAY,
            unit_store=DiskUnitStore(tmp_path / "cache"),
        )
        return render_json(run_check(options))

    assert cached() == plain  # fills the cache
    reads: list[str] = []
    original = GitTree.read_many

    def counted(self: GitTree, paths: object) -> object:
        wanted = list(paths)  # type: ignore[call-overload]
        reads.extend(path for path in wanted if path.endswith(".mxunit"))
        return original(self, wanted)

    GitTree.read_many = counted  # type: ignore[method-assign, assignment]
    try:
        assert cached() == plain
    finally:
        GitTree.read_many = original  # type: ignore[method-assign]
    units = len(list((tmp_path / "after").glob("mprcontents/*/*/*.mxunit")))
    assert 0 < len(reads) < units // 2  # only the units the check looked into


def test_a_graph_built_like_the_other_side_follows_names_held_twice() -> None:
    """Real apps hold some qualified names twice; the first in canonical order is the one a name resolves
    to. Taking a unit out or putting one in changes which one that is, and the graph built like the other
    side's must say so, as one built alone does."""
    from analyzer.graph.build import _names_like, build_graph

    b = _unit("b", "Forms$Page", (("x1", "Shop.X"),))
    c = _unit("c", "Forms$Page", (("x2", "Shop.X"), ("y1", "Shop.Y")))
    d = _unit("d", "Forms$Page", (), refers_to="Shop.X")
    e = _unit("e", "Forms$Page", (), refers_to="Shop.Y")
    others = [_unit(f"z{i}", "Forms$Snippet", ((f"z{i}w", f"Shop.z{i}.w"),)) for i in range(12)]
    before = _snapshot_of([b, c, d, e, *others])
    # After: b no longer holds X (c's X is now the first), and a new unit "a" holds Y before c does.
    a = _unit("a", "Forms$Page", (("y2", "Shop.Y"),))
    after = _snapshot_of([_unit("b", "Forms$Page", ()), c, d, e, a, *others])
    head = build_graph(before)
    assert head.names["Shop.X"] == "x1" and head.names["Shop.Y"] == "y1"
    assert _names_like(after.elements.models, head) is not None
    like = build_graph(after, like=head)
    assert _graph_facts(like) == _graph_facts(build_graph(after, lazy=False))
    assert like.names["Shop.X"] == "x2" and like.names["Shop.Y"] == "y2"
    assert [link.target for link in like.links("d-ref")] == ["x2"]
    assert [link.target for link in like.links("e-ref")] == ["y2"]
    assert like.pieces["z0"] is head.pieces["z0"]  # untouched units keep their links


def test_a_graph_built_like_the_other_side_of_a_damaged_model_equals_one_built_alone() -> None:
    """An element id held by two units (a damaged model): which unit it belongs to follows canonical
    order, so the lookups are gathered anew rather than taken over, and the graph says it is not sound
    (document links are then read reference by reference)."""
    from analyzer.graph.build import build_graph

    def referring(unit_id: str, element_id: str, target: str) -> UnitModel:
        root = new_element(unit_id, "Forms$Page", unit_id, f"Shop.{unit_id}", "m", "Documents", 0, unit_id, {}, ())
        reference = Reference(property="Attribute", target=target, kind=ReferenceKind.NAME)
        member = new_element(element_id, "Forms$TextBox", None, None, unit_id, "Widgets", 0, unit_id, {}, (reference,))
        return UnitModel.of(unit_id, (root, member))

    others = [_unit(f"z{i}", "Forms$Snippet", ((f"z{i}w", f"Shop.z{i}.w"),)) for i in range(12)]
    first = referring("b", "dup", "Shop.z0.w")
    before = _snapshot_of([first, referring("c", "c-w", "Shop.z1.w"), *others])
    after = _snapshot_of([first, referring("c", "dup", "Shop.z1.w"), *others])
    head = build_graph(before)
    assert head.sound
    like = build_graph(after, like=head)
    alone = build_graph(after, lazy=False)
    assert _graph_facts(like) == _graph_facts(alone)
    assert like.element_units["dup"] == "b" and not like.sound


def _placed(unit_id: str, unit_type: str, name: str, container: str | None) -> UnitModel:
    """A unit whose root is named ``name`` (a module's name is its qualified name too)."""
    qualified: str | None = {"Projects$ModuleImpl": name, "Projects$Folder": None}.get(unit_type, f"X.{name}")
    root = new_element(unit_id, unit_type, name, qualified, container, "Documents", 0, unit_id, {}, ())
    return UnitModel.of(unit_id, (root,))


def test_an_index_taken_over_from_the_other_side_equals_one_built_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Modules, labels, root types and named ids are taken over from the other side's index with the
    units that differ taken out and put in: a page moved to another module, one added, one removed; a
    module renamed changes the module of everything in it, and is built anew. The graph built on such
    an index takes over how the units differ from it."""
    from analyzer.graph import build as build_module
    from analyzer.graph.build import build_graph
    from analyzer.graph.index import index_snapshot, unit_changes

    shop = _placed("m1", "Projects$ModuleImpl", "Shop", None)
    admin = _placed("m2", "Projects$ModuleImpl", "Admin", None)
    folder = _placed("f", "Projects$Folder", "Screens", "m2")
    pages = {f"p{i}": _placed(f"p{i}", "Forms$Page", f"Page{i}", "f") for i in range(20)}
    before = _placed_snapshot([(shop, None), (admin, None), (folder, "m2"), *((p, "f") for p in pages.values())])
    head = index_snapshot(before)
    moved = _placed("p1", "Forms$Page", "Page1", "m1")  # the same page, now in Shop: another unit model
    rows = [(shop, None), (admin, None), (folder, "m2"), (moved, "m1")]
    rows += [(p, "f") for unit_id, p in pages.items() if unit_id not in ("p1", "p2")]  # p2 removed
    rows.append((_placed("p0a", "Forms$Page", "New", "f"), "f"))  # added
    after = _placed_snapshot(rows)
    changes = unit_changes(after.elements.models, before.elements.models)
    assert changes is not None and {m.unit_id for m in changes.new} == {"p1", "p0a"}
    patched = index_snapshot(after, like=head)
    assert _index_facts(patched) == _index_facts(index_snapshot(after))
    assert patched.modules["p1"] == "Shop" and patched.modules["p0a"] == "Admin" and "p2" not in patched.modules
    head_graph = build_graph(before, head)

    def again(*_: object) -> None:
        raise AssertionError("the graph asks again how the units differ")

    monkeypatch.setattr(build_module, "unit_changes", again)  # the index found it already
    assert _graph_facts(build_graph(after, patched, like=head_graph)) == _graph_facts(build_graph(after, lazy=False))
    renamed = _placed_snapshot([(shop, None), (_placed("m2", "Projects$ModuleImpl", "Office", None), None),
                                (folder, "m2"), *((p, "f") for p in pages.values())])
    patched = index_snapshot(renamed, like=head)
    assert _index_facts(patched) == _index_facts(index_snapshot(renamed))
    assert patched.modules["p3"] == "Office" and patched.document_labels["f"] == "Office/Screens"


@pytest.mark.corpus
@pytest.mark.parametrize("project", ["openwallet-foundation-labs__farmworker-wallet-os", "SuperBypassUdinnn__SIGARA"])
def test_corpus_graphs_built_like_the_other_side_equal_ones_built_alone(corpus: Path, project: str) -> None:
    """Every consecutive pair of a real app: the second side's graph taken over from the first (names
    patched unit by unit, links of shared units kept) equals one built alone, and the documents' links
    read unit by unit equal the ones read reference by reference."""
    from itertools import pairwise

    from analyzer.graph.build import _names_like, build_graph
    from analyzer.graph.index import index_snapshot
    from analyzer.graph.queries import _links, _links_by_element

    patched = 0
    for before_path, after_path in pairwise(dict(corpus_revisions(corpus))[project]):
        memo = ReadMemo()
        after = load_source(str(after_path), memo=memo)
        before = load_source(str(before_path), memo=memo)
        head = build_graph(after)
        patched += _names_like(before.elements.models, head) is not None
        like = build_graph(before, like=head)
        assert _graph_facts(like) == _graph_facts(build_graph(before, lazy=False))
        assert like.naming_units == build_graph(before).naming_units
        assert _index_facts(index_snapshot(before, like=head.index)) == _index_facts(index_snapshot(before))
        for graph in (head, like):
            _assert_reached_referrers(graph)
            doc_links, doc_targets, referrers = _links(graph)
            assert (doc_links, doc_targets, dict(referrers)) == (lambda r: (r[0], r[1], dict(r[2])))(
                _links_by_element(graph)
            )
    assert patched > 0


# ------------------------------------------------------------------------- a folder base read ahead


@pytest.fixture
def forks() -> None:
    """Skip where no worker can be forked (not Linux, or one core): nothing is read ahead there."""



def _app_copy(tmp_path: Path, name: str) -> Path:
    copy = tmp_path / name
    shutil.copytree(APPS / name, copy)
    return copy


def _counting_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The unit files read through a :class:`DirectoryTree` from now on, in this process."""
    from analyzer.load.files import DirectoryTree

    reads: list[str] = []
    read = DirectoryTree.read

    def counted(tree: DirectoryTree, path: str) -> bytes:
        if path.startswith("mprcontents/"):
            reads.append(path)
        return read(tree, path)

    monkeypatch.setattr(DirectoryTree, "read", counted)
    return reads


def test_unit_digests_are_the_blob_ids_of_the_unit_files_that_read_cleanly(tmp_path: Path) -> None:
    """What the worker hashes goes through the tree's own checks; what it cannot read it leaves out."""
    import dataclasses
    import os

    from analyzer.load.ahead import unit_digests
    from analyzer.load.limits import DEFAULT_LIMITS

    app = _app_copy(tmp_path, "field-service-1.1")
    units = sorted(app.glob("mprcontents/*/*/*.mxunit"))
    expected = {
        path.relative_to(app).as_posix(): (len(path.read_bytes()), git_blob_id(path.read_bytes())) for path in units
    }
    outside = tmp_path / "outside.mxunit"
    outside.write_bytes(b"not of this app")
    (units[0].parent / "link.mxunit").symlink_to(outside)
    os.mkfifo(units[0].parent / "fifo.mxunit")
    assert unit_digests(app, DEFAULT_LIMITS) == expected
    largest = max(size for size, _ in expected.values())
    small = dataclasses.replace(DEFAULT_LIMITS, max_unit_bytes=largest - 1)
    assert unit_digests(app, small) == {path: found for path, found in expected.items() if found[0] < largest}


def test_a_folder_base_read_ahead_is_not_read_again_where_head_holds_its_units(
    forks: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analyzer.load.sources import read_ahead

    base, head = str(APPS / "field-service-1.0"), str(APPS / "field-service-1.1")
    plain = load_source(base)
    memo = ReadMemo()
    load_source(head, memo=memo)
    ahead = read_ahead(base)
    assert ahead is not None
    head_units = {unit.path for unit in load_source(head).units}
    old, new = APPS / "field-service-1.0", APPS / "field-service-1.1"
    not_in_head = sorted(
        unit.path for unit in plain.units
        if unit.path not in head_units or (old / unit.path).read_bytes() != (new / unit.path).read_bytes()
    )
    reads = _counting_reads(monkeypatch)
    try:
        read = load_source(base, memo=memo, ahead=ahead)
    finally:
        ahead.close()
    assert read == plain
    assert 0 < len(not_in_head) < len(plain.units) // 2
    assert sorted(reads) == not_in_head  # the rest known by the digests: not read in this process
    assert read_ahead("git:HEAD") is None and read_ahead(str(APPS / "no-such-app")) is None


def test_a_unit_file_changed_after_it_was_hashed_ahead_is_refused_when_built(forks: None, tmp_path: Path) -> None:
    """A folder that changes while the check reads it: the unit built later is not the unit hashed."""
    from analyzer.cache import DiskUnitStore
    from analyzer.errors import InputError
    from analyzer.load.sources import read_ahead

    app = _app_copy(tmp_path, "field-service-1.1")
    load_source(str(app), memo=ReadMemo(store=DiskUnitStore(tmp_path / "cache")))  # every unit stored
    ahead = read_ahead(str(app))
    assert ahead is not None
    ahead.take()
    page = next(path for path in sorted(app.glob("mprcontents/*/*/*.mxunit")) if b"Forms$Page" in path.read_bytes())
    hashed = page.read_bytes()
    page.write_bytes(hashed.replace(b"Documentation\x00", b"Documentatiom\x00", 1))  # after it was hashed
    assert page.read_bytes() != hashed
    memo = ReadMemo(store=DiskUnitStore(tmp_path / "cache"))
    snapshot = load_source(str(app), memo=memo, ahead=ahead)
    assert memo.stored == len(snapshot.units)  # nothing read: every unit known by the digests
    model = next(m for m in snapshot.elements.models if m.unit_id == page.stem)
    with pytest.raises(InputError, match="changed while mxota was reading the app"):
        _ = model.elements
    # Not known to the memo: read here, and kept under the hash of the bytes read, not the digest's.
    fresh = ReadMemo()
    load_source(str(app), memo=fresh, ahead=ahead)
    assert fresh.knows(git_blob_id(page.read_bytes()), page.stem)
    assert not fresh.knows(git_blob_id(hashed), page.stem)


def test_a_read_ahead_whose_worker_died_leaves_every_file_to_the_load(
    forks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analyzer.load.sources import read_ahead

    base = str(APPS / "field-service-1.0")
    ahead = read_ahead(base)
    assert ahead is not None
    ahead._process.kill()  # a worker killed (out of memory) before it sent anything
    ahead._process.join()
    assert ahead.take() == {}
    reads = _counting_reads(monkeypatch)
    assert load_source(base, memo=ReadMemo(), ahead=ahead) == load_source(base)
    assert len(reads) >= len(load_source(base).units)


def test_a_held_read_ahead_reads_nothing_until_let_go(forks: None) -> None:
    """A check forks the worker before HEAD's load and lets it go once HEAD is walked: until then it
    must not read (it would take the core HEAD's walk uses)."""
    from analyzer.load.ahead import start_digests, unit_digests
    from analyzer.load.limits import DEFAULT_LIMITS

    app = APPS / "field-service-1.0"
    ahead = start_digests(app, DEFAULT_LIMITS, held=True)
    assert ahead is not None
    try:
        assert not ahead._receiver.poll(0.5)  # held: nothing sent
        assert ahead._process.is_alive()
        ahead.release()
        ahead.release()  # once is enough; again is nothing
        assert ahead.take() == unit_digests(app, DEFAULT_LIMITS)
    finally:
        ahead.close()
    unused = start_digests(app, DEFAULT_LIMITS, held=True)
    assert unused is not None
    unused.close()  # the check ended before HEAD was walked: the worker leaves without reading
    assert not unused._process.is_alive() and unused.take() == {}


def test_a_load_says_when_its_units_are_walked(tmp_path: Path) -> None:
    """The pipeline lets the worker hashing BASE go at this moment: once, after the walk, before the
    side files and native half, whose reading leaves the second core idle."""
    import analyzer.load.sources as sources_module

    told: list[str] = []
    side_files = sources_module.side_files

    def counted(*args: object) -> object:
        told.append("side files")
        return side_files(*args)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(sources_module, "side_files", counted)
        snapshot = load_source(str(APPS / "field-service-1.1"), walked=lambda: told.append("walked"))
    assert told == ["walked", "side files"]
    assert snapshot == load_source(str(APPS / "field-service-1.1"))


def test_a_folder_base_read_ahead_reads_its_side_files_before_it_waits_for_the_digests(
    forks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import analyzer.load.sources as sources_module
    from analyzer.load.ahead import UnitDigests

    base = str(APPS / "field-service-1.0")
    order: list[str] = []
    side_files, take = sources_module.side_files, UnitDigests.take

    def counted_files(*args: object) -> object:
        order.append("side files")
        return side_files(*args)  # type: ignore[arg-type]

    def counted_take(digests: UnitDigests) -> object:
        order.append("digests")
        return take(digests)

    monkeypatch.setattr(sources_module, "side_files", counted_files)
    monkeypatch.setattr(UnitDigests, "take", counted_take)
    ahead = sources_module.read_ahead(base)
    assert ahead is not None
    try:
        read = load_source(base, memo=ReadMemo(), ahead=ahead)
    finally:
        ahead.close()
    assert order == ["side files", "digests"]
    assert read == load_source(base)


# --------------------------------------------------------------------- unnamed ids, without the map


def test_an_unnamed_id_is_found_by_search_in_the_unit_the_map_would_give(tmp_path: Path) -> None:
    """A check asks for few unnamed ids (a changed widget, a side file no unit holds): each unit's ids
    are searched instead of making the map of every id, and the answer is the map's, for ids kept as
    tuples (a fresh walk) and as one string of GUIDs (read back from a cache)."""
    from analyzer.cache import DiskUnitStore
    from analyzer.graph.index import ElementLookup

    app = str(APPS / "field-service-1.1")
    fresh = load_source(app)
    load_source(app, memo=ReadMemo(store=DiskUnitStore(tmp_path)))
    stored = load_source(app, memo=ReadMemo(store=DiskUnitStore(tmp_path)))
    assert all(isinstance(model.outline.keys, bytes) for model in stored.elements.models)
    absent = ["javascriptsource/x/y.js", "native:dependency:react-native-ble", "00000000-0000-0000-0000-000000000000"]
    for snapshot in (fresh, stored):
        models = snapshot.elements.models
        ids = [element.id for element in snapshot.elements] + absent
        mapped = ElementLookup(models)
        where = mapped._where
        searched = ElementLookup(models)
        for element_id in ids:
            expected = where.get(element_key(element_id)) or where.get(element_id)
            assert searched._scan(element_id) is expected, element_id
        assert searched._where_map is None
    # An id held by two units (a damaged model): the last in canonical order, as in the map.
    twice = [
        UnitModel.of(unit_id, (
            new_element(unit_id, "Forms$Page", unit_id, f"Shop.{unit_id}", "m", "Documents", 0, unit_id, {}, ()),
            new_element("twice", "Forms$TextBox", None, None, unit_id, "Widgets", 0, unit_id, {}, ()),
        ))
        for unit_id in ("p1", "p2")
    ]
    lookup = ElementLookup(_snapshot_of(twice).elements.models)
    assert lookup.unit_of("twice") == "p2" == ElementLookup(_snapshot_of(twice).elements.models)._where["twice"].unit_id


def test_many_lookups_of_unnamed_ids_make_the_map_once() -> None:
    from analyzer.graph.index import SCANS_BEFORE_MAP, ElementLookup

    snapshot = load_source(str(APPS / "field-service-1.1"))
    lookup = ElementLookup(snapshot.elements.models)
    unnamed = [element.id for element in snapshot.elements if not lookup.is_named(element.id)]
    assert len(unnamed) > SCANS_BEFORE_MAP
    for element_id in unnamed[:SCANS_BEFORE_MAP]:
        assert lookup.unit_of(element_id) is not None
    assert lookup._where_map is None
    for element_id in unnamed[SCANS_BEFORE_MAP:]:
        assert lookup.unit_of(element_id) is not None
    assert lookup._where_map is not None


def test_a_search_of_ids_kept_as_one_string_never_matches_across_two_ids() -> None:
    import dataclasses
    import uuid

    from analyzer.graph.index import ElementLookup

    first, second = "11111111-2222-3333-4444-555555555555", "66666666-7777-8888-9999-aaaaaaaaaaaa"
    model = UnitModel.of("p1", (
        new_element(first, "Forms$Page", "P", "Shop.P", "m", "Documents", 0, "p1", {}, ()),
        new_element(second, "Forms$TextBox", None, None, first, "Widgets", 0, "p1", {}, ()),
    ))
    first_key, second_key = element_key(first), element_key(second)
    assert isinstance(first_key, bytes) and isinstance(second_key, bytes)
    joined = first_key + second_key
    packed = UnitModel("p1", dataclasses.replace(model.outline, keys=joined), elements=model.elements)
    lookup = ElementLookup((packed,))
    straddling = joined[8:24]  # the second half of one id and the first half of the next
    text = str(uuid.UUID(bytes_le=straddling))
    assert element_key(text) == straddling
    assert lookup._scan(second) is packed
    assert lookup._scan(text) is None


def test_a_folder_with_a_cache_is_hashed_half_here_and_half_in_a_worker(
    forks: None, split_always: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the walk, a large folder's units are keyed by their hash to find what the cache holds:
    this process reads the first half, a worker hashes the second, and the units the cache knows from
    the worker's half are read here only when built."""
    from analyzer.cache import DiskUnitStore

    app = str(APPS / "field-service-1.1")
    plain = load_source(app)
    load_source(app, memo=ReadMemo(store=DiskUnitStore(tmp_path)))  # the cache knows every unit
    reads = _counting_reads(monkeypatch)
    memo = ReadMemo(store=DiskUnitStore(tmp_path))
    loaded = load_source(app, memo=memo)
    read_before_building = len(reads)
    assert memo.stored == len(plain.units)
    assert read_before_building == len(plain.units) // 2
    assert loaded == plain  # builds every unit: the worker's half is read now, and checked
    assert len(reads) == len(plain.units)


def test_a_git_base_with_a_cache_is_loaded_first_and_the_folder_head_reads_only_what_it_lacks(
    forks: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/ci.md's gate, ``git:BASE .`` with a cache: BASE first, HEAD hashed by a worker meanwhile."""
    from analyzer.cache import DiskUnitStore

    repo = scenario_repo(tmp_path, "c1-synced-attribute-removed")
    before, after = tmp_path / "before", tmp_path / "after"
    lacking = sorted(
        path.relative_to(after).as_posix()
        for path in after.glob("mprcontents/*/*/*.mxunit")
        if not (before / path.relative_to(after)).is_file()
        or (before / path.relative_to(after)).read_bytes() != path.read_bytes()
    )
    plain = report("git:HEAD~1:app", str(repo / "app"), repo, reuse=False)
    reads = _counting_reads(monkeypatch)
    options = CheckOptions(
        base="git:HEAD~1:app", head=str(repo / "app"), cwd=repo, today=TODAY,
        unit_store=DiskUnitStore(tmp_path / "cache"),
    )
    assert render_json(run_check(options)) == plain
    assert lacking and sorted(reads) == lacking


def test_a_broken_unit_met_while_hashing_half_and_half_is_reported_as_a_serial_load_reports_it(
    forks: None, split_always: None, tmp_path: Path
) -> None:
    from analyzer.cache import DiskUnitStore
    from analyzer.errors import InputError

    app = _app_copy(tmp_path, "field-service-1.0")
    units = sorted(app.glob("mprcontents/*/*/*.mxunit"))
    for broken in (units[0], units[-1]):  # one at a time, wherever it falls in the two halves
        original = broken.read_bytes()
        broken.write_bytes(original[:-3])
        with pytest.raises(InputError) as hashed:
            load_source(str(app), memo=ReadMemo(store=DiskUnitStore(tmp_path / "cache")))
        with pytest.raises(InputError) as serial:
            load_source(str(app))
        assert str(hashed.value) == str(serial.value)
        broken.write_bytes(original)


def test_a_blast_radius_starts_from_the_reached_referrers_and_turns_no_map_around() -> None:
    """The example app's check reaches native pages from its changes (the golden reports show them);
    working them out asks only where each reached document refers, never for every document's."""
    from analyzer.graph.queries import _Referrers
    from analyzer.pipeline import check_snapshots, load_rules, prepare

    memo = ReadMemo()
    after = prepare(load_source(str(APPS / "field-service-1.1"), memo=memo))
    before = prepare(load_source(str(APPS / "field-service-1.0"), memo=memo), like=after)
    report = check_snapshots(before, after, load_rules())
    assert any(finding.impacts for finding in report.findings)
    for side in (before, after):
        assert side.graph.naming_units is not None and not side.graph.whole.done  # nothing gathered
        assert isinstance(side.native.referrers, _Referrers)
        assert side.native.referrers._turned is None
        _assert_reached_referrers(side.graph)
