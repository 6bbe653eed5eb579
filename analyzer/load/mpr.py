"""Read a Mendix model (``.mpr``) of either storage format into units and elements.

SQLite is opened read-only and immutable, so a file that Studio Pro holds open, or a file on a
read-only medium, is read as it is and never touched.
"""

from __future__ import annotations

import functools
import gc
import queue
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import bson
from bson.errors import BSONError

from analyzer.errors import InputError
from analyzer.load.ahead import can_fork, fork_worker, start_digests
from analyzer.load.files import DirectoryTree, FileTree, one_line
from analyzer.load.limits import Limits
from analyzer.load.memo import (
    Progress,
    ReadMemo,
    UnitPlace,
    decode_record,
    encode_record,
    git_blob_id,
    unit_model,
)
from analyzer.load.revision import RevisionUnit
from analyzer.load.units import UnitOutliner, guid
from analyzer.model.snapshot import (
    ElementSequence,
    MprFormat,
    SnapshotMeta,
    Unit,
    UnitModel,
    UnitOutline,
    unit_file,
)

SQLITE_HEADER = b"SQLite format 3\x00"
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"
MODULE_TYPE = "Projects$ModuleImpl"
FOLDER_TYPE = "Projects$Folder"
PROJECT_TYPE = "Projects$Project"


def model_too_large(location: str, limits: Limits) -> InputError:
    """The one wording of the model-size limit, wherever the total is counted."""
    return InputError(
        location, f"model is larger than {limits.max_model_bytes} bytes (raise with --limit max_model_bytes=N)"
    )


def too_many_elements(location: str, limits: Limits) -> InputError:
    """The one wording of the element-count limit."""
    return InputError(
        location, f"model has more than {limits.max_elements} elements (raise with --limit max_elements=N)"
    )


def check_mpr_header(head: bytes, location: str) -> None:
    """Refuse anything that is not an SQLite file, with a hint for the usual suspects."""
    if head.startswith(SQLITE_HEADER):
        return
    if head.startswith(LFS_POINTER):
        raise InputError(location, "is a Git LFS pointer, not the model; run 'git lfs pull' first")
    if not head:
        raise InputError(location, "is empty, not a Mendix model (SQLite) file")
    raise InputError(location, "is not a Mendix model: not an SQLite database")


@dataclass(frozen=True, slots=True)
class UnitRow:
    """A row of the ``Unit`` table before its contents are decoded."""

    id: str
    container: str | None
    containment: str
    contents_hash: str
    contents: bytes | None


@dataclass(frozen=True, slots=True)
class MprTables:
    """What the SQLite file holds: metadata and unit rows (with contents for MPR v1)."""

    meta: SnapshotMeta
    rows: tuple[UnitRow, ...]


def read_tables(mpr_file: Path, location: str, limits: Limits) -> MprTables:
    """Read ``_MetaData`` and ``Unit`` from an ``.mpr`` on disk, never writing to it."""
    try:
        with mpr_file.open("rb") as handle:
            check_mpr_header(handle.read(len(LFS_POINTER)), location)
    except OSError as exc:
        raise InputError(location, f"cannot read: {exc.strerror}") from None
    uri = mpr_file.resolve().as_uri() + "?mode=ro&immutable=1"
    try:
        connection = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise InputError(location, f"cannot open as SQLite ({one_line(exc)})") from None
    try:
        return _read_tables(connection, mpr_file.name, location, limits)
    except sqlite3.DatabaseError as exc:
        raise InputError(location, f"corrupt SQLite database ({one_line(exc)})") from None
    finally:
        connection.close()


def _read_tables(connection: sqlite3.Connection, name: str, location: str, limits: Limits) -> MprTables:
    tables = {row[0] for row in connection.execute("select name from sqlite_master where type = 'table'")}
    for needed in ("_MetaData", "Unit"):
        if needed not in tables:
            raise InputError(location, f"is not a Mendix model: no {needed} table")
    cursor = connection.execute("select * from _MetaData")
    columns = [d[0] for d in cursor.description]
    meta_rows = cursor.fetchall()
    if len(meta_rows) != 1:
        raise InputError(location, f"_MetaData has {len(meta_rows)} rows, expected one")
    meta = dict(zip(columns, meta_rows[0], strict=True))
    unit_columns = {row[1] for row in connection.execute("pragma table_info(Unit)")}
    mpr_format = MprFormat.V1 if "Contents" in unit_columns else MprFormat.V2
    format_version = meta.get("_FormatVersion")
    if format_version is not None and not isinstance(format_version, int):
        raise InputError(location, f"_MetaData._FormatVersion is {format_version!r}, not a number")
    product = meta.get("_ProductVersion")
    if not isinstance(product, str) or not product:
        raise InputError(location, "_MetaData has no _ProductVersion")
    snapshot_meta = SnapshotMeta(
        mpr_name=name,
        mpr_format=mpr_format,
        format_version=format_version,
        product_version=product,
        build_version=str(meta.get("_BuildVersion") or ""),
        schema_hash=str(meta.get("_SchemaHash") or ""),
    )
    select = "UnitID, ContainerID, ContainmentName, ContentsHash" + (
        ", Contents" if mpr_format is MprFormat.V1 else ", NULL"
    )
    rows: list[UnitRow] = []
    seen: set[bytes] = set()
    total = 0
    for unit_id, container, containment, hash_text, contents in connection.execute(f"select {select} from Unit"):
        if not isinstance(unit_id, bytes) or len(unit_id) != 16:
            raise InputError(location, "a Unit row has no 16-byte UnitID")
        if unit_id in seen:  # UnitID is the primary key in Mendix's schema; a hostile file may lack it
            raise InputError(location, f"two Unit rows have the UnitID {guid(unit_id)}")
        seen.add(unit_id)
        if contents is not None and not isinstance(contents, bytes):
            raise InputError(location, f"unit {guid(unit_id)} has contents that are not BSON bytes")
        if contents is not None:
            total += len(contents)
            if total > limits.max_model_bytes:
                raise model_too_large(location, limits)
        rows.append(
            UnitRow(
                id=guid(unit_id),
                container=guid(container) if isinstance(container, bytes) and len(container) == 16 else None,
                containment=str(containment or ""),
                contents_hash=str(hash_text or ""),
                contents=contents,
            )
        )
    if mpr_format is MprFormat.V1 and any(row.contents is None for row in rows):
        raise InputError(location, "a unit of this MPR v1 model has no contents")
    rows.sort(key=lambda row: row.id)
    return MprTables(meta=snapshot_meta, rows=tuple(rows))


def decode_unit(data: bytes, location: str, limits: Limits) -> dict[str, Any]:
    """Decode one unit's BSON; anything but one whole, valid document is an input error."""
    if len(data) > limits.max_unit_bytes:
        raise InputError(
            location, f"unit is {len(data)} bytes, over the limit (raise with --limit max_unit_bytes=N)"
        )
    if len(data) < 5:
        raise InputError(location, "unit is empty or truncated (not a BSON document)")
    declared = int.from_bytes(data[:4], "little")
    if declared != len(data):
        raise InputError(location, f"BSON length prefix says {declared} bytes but the unit has {len(data)}")
    try:
        document = bson.decode(data)
    except (BSONError, RecursionError, ValueError, OverflowError, TypeError, UnicodeError) as exc:
        if isinstance(exc, RecursionError) or "recursion" in str(exc):
            raise InputError(location, "corrupt BSON: objects nested too deeply to decode") from None
        raise InputError(location, f"corrupt BSON ({type(exc).__name__}: {one_line(exc)})") from None
    if not isinstance(document, dict):
        raise InputError(location, "unit is not a BSON document")
    return document


class WalkedUnits(NamedTuple):
    """The units of a model and their elements, and what a revision record keeps of them."""

    units: tuple[Unit, ...]
    elements: ElementSequence
    revision: tuple[RevisionUnit, ...] | None
    """Each unit's blob and place (``analyzer.load.revision``); None unless every unit has a blob id
    its tree gave (a ``git:`` tree), as a record keyed by a tree id must hold nothing else."""


def build_units_and_elements(
    tables: MprTables,
    tree: FileTree,
    mpr_path: str,
    location: str,
    limits: Limits,
    memo: ReadMemo | None = None,
    progress: Progress | None = None,
) -> WalkedUnits:
    """Decode every unit and outline it, with names qualified through the containment tree.

    Units are visited containers first, so each unit's module is known when it is walked and its
    decoded document can be dropped straight after. Each unit becomes a :class:`UnitModel`: its
    outline (names, references, ids, types) now, its elements only when a check looks into it, built
    from the bytes it keeps. Units the ``memo`` has read at the same place before are taken from it,
    not decoded.

    The walk allocates hundreds of thousands of objects that all live to the end of the run, so
    the cyclic garbage collector is paused for it: it would only rescan them (a third of the time).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _UnitWalk(tables, tree, mpr_path, location, limits, memo, progress).run()
    finally:
        if was_enabled:
            gc.enable()


def units_from_revision(
    revision: tuple[RevisionUnit, ...],
    tree: FileTree,
    location: str,
    limits: Limits,
    memo: ReadMemo,
    progress: Progress | None = None,
) -> WalkedUnits | None:
    """The units of a revision read before (``analyzer.load.revision``), their outlines taken from the
    memo and its store as a walk would take them; None when one of them is not there any more.

    Nothing is decoded: each unit's elements are built from its blob, read by id, when a check looks
    into it, exactly as for a unit the store knew during a walk.
    """
    found: list[tuple[RevisionUnit, UnitModel | None, UnitOutline]] = []
    count = size = 0
    known = memo.known
    for kept in revision:
        held = known(kept.blob, kept.place)
        if held is None:
            return None
        model = held if isinstance(held, UnitModel) else None
        outline = held.outline if isinstance(held, UnitModel) else held
        found.append((kept, model, outline))
        count += outline.count
        size += kept.size
    # The limits are part of the record's key; checked again all the same, as a walk checks them.
    if size > limits.max_model_bytes:
        raise model_too_large(location, limits)
    if count > limits.max_elements:
        raise too_many_elements(location, limits)
    models: list[UnitModel] = []
    for kept, model, outline in found:
        if model is None:
            unit = kept.unit
            where = f"{location}:{unit.path}"
            source = functools.partial(_read_known, tree, unit.path, kept.blob, where)
            model = unit_model(kept.place, outline, source, where)
            memo.remember(kept.blob, kept.place, unit.type, kept.name, model, store=False)
        models.append(model)
    if progress is not None:
        progress(len(revision), len(revision), size, size)
    elements = ElementSequence(models)
    memo.lending = (revision, elements.models)
    return WalkedUnits(tuple(kept.unit for kept in revision), elements, revision)


class _UnitWalk:
    """One pass over the units of a model; a class only to keep the pass's shared state in one place."""

    def __init__(
        self,
        tables: MprTables,
        tree: FileTree,
        mpr_path: str,
        location: str,
        limits: Limits,
        memo: ReadMemo | None,
        progress: Progress | None,
    ) -> None:
        self.tables = tables
        self.tree = tree
        self.mpr_path = mpr_path
        self.location = location
        self.limits = limits
        self.memo = memo
        self.progress = progress
        self.v1 = tables.meta.mpr_format is MprFormat.V1
        self.rows = {row.id: row for row in tables.rows}
        self.roots: dict[str, tuple[str, object]] = {}
        """Unit id → ``$Type`` and ``Name`` of its root object, for the units walked so far."""
        self.walked: dict[str, UnitModel] = {}
        self.paths: dict[str, str] = {}
        """Unit id → where its BSON is (``mprcontents/..`` or the ``.mpr``)."""
        self.sizes: dict[str, int] = {}
        self.blobs: dict[str, str | None] = {}
        """Unit id → git blob id when the tree names it without reading (a ``git:`` tree)."""
        self.known: dict[str, str] = {}
        """Unit id → key of the units the memo has read before (not read again)."""
        self.pre_read: dict[str, tuple[bytes, str]] = {}
        """Unit id → bytes and blob id of units read ahead to decide the split (walked from these)."""
        self.places: dict[str, tuple[str | None, UnitPlace]] = {}
        """Unit id → the key its bytes had (None: none computed) and its place, for a revision record."""
        self.lent: dict[str, RevisionUnit] = {}
        """Unit id → the unit the tree read before in this run holds alike (taken with its model, not walked)."""
        self.element_count = 0
        self._done = 0
        self._current: UnitRow | None = None
        self._read_bytes = 0
        self._total_units = 0
        self._total_bytes = 0

    def run(self) -> WalkedUnits:
        order = self._containers_first()
        paths = self.paths = {row.id: self._path(row) for row in order}
        sizes = self.sizes = self._check_sizes(order, paths)
        # A git tree names each unit's blob without reading it: units the memo knows are not read.
        # Anything else is read and its bytes hashed (``_walk``): the ContentsHash in the Unit table is
        # not proof that a file is intact, and a broken unit must stop the check, not pass for its twin.
        blobs = self.blobs = {row.id: self._content_key(paths[row.id]) for row in order}
        self._total_units, self._total_bytes = len(order), sum(sizes.values())
        lent = self.lent = self._lend(order)
        rest = [row for row in order if row.id not in lent] if lent else order
        splittable = self._total_bytes >= SPLIT_MIN_BYTES and can_fork()
        keys = {row.id: blobs[row.id] for row in rest}
        if splittable and self.memo is not None and self.memo.may_know() and not self.v1:
            # Which units must be decoded decides the split: hash the files the tree has no blob id
            # for first (a read from the page cache), so units the memo or cache holds stay here.
            self._hash_first([row for row in rest if blobs[row.id] is None], keys)
        known = self.known = {
            unit_id: key
            for unit_id, key in keys.items()
            if key is not None and self.memo is not None and self.memo.knows(key, unit_id)
        }
        containers = {row.container for row in order if row.container is not None and row.container != row.id}
        leaves = [row for row in rest if row.id not in known and row.id not in containers]
        if splittable and sum(sizes[row.id] for row in leaves) >= SPLIT_MIN_BYTES:
            self._run_split(rest, leaves)
        else:
            self._serial(rest)
        if self.element_count > self.limits.max_elements:
            raise too_many_elements(self.location, self.limits)
        units = tuple(
            lent[unit_id].unit if unit_id in lent else self._unit(self.rows[unit_id], paths[unit_id])
            for unit_id in sorted(self.walked)
        )
        elements = ElementSequence(self.walked[unit_id] for unit_id in sorted(self.walked))
        revision = self._revision(units)
        if self.memo is not None and revision is not None:
            self.memo.lending = (revision, elements.models)  # a tree read next lends its units from here
        return WalkedUnits(units, elements, revision)

    def _revision(self, units: tuple[Unit, ...]) -> tuple[RevisionUnit, ...] | None:
        """What a revision record keeps of each unit, when the tree named every unit's blob."""
        if self.v1 or not self.tree.stable:
            return None
        kept: list[RevisionUnit] = []
        lent = self.lent
        for unit in units:
            lent_unit = lent.get(unit.id)
            if lent_unit is not None:
                kept.append(lent_unit)
                continue
            blob, place = self.places[unit.id]
            if blob is None or blob != self.blobs.get(unit.id):
                return None
            if (place.parent, place.containment) != (unit.container, unit.containment):
                return None  # the record keeps these once, as the unit names them
            name = self.roots[unit.id][1]
            kept.append(RevisionUnit(unit, blob, self.sizes[unit.id], place, name if isinstance(name, str) else None))
        return tuple(kept)

    def _lend(self, order: list[UnitRow]) -> dict[str, RevisionUnit]:
        """Take the units that the revision the memo lends from (``ReadMemo.lending``) holds alike as its
        load left them, with their models, unwalked: the same blob and row, under containers it holds
        alike too. Returns them by unit id; the others are walked after, in order. (A run reads both
        trees under the same limits, and a revision record's key holds them, so its places have this
        walk's depth limit; MPR v2 keeps a unit's file by its id, so the path is the same too.)

        A unit's place depends only on its row, its root's type and the names of its containers up to
        its module, so such a unit has the same place, outline and model. A new HEAD beside a BASE the
        cache knows (the first check of a new commit) takes all its units but the changed ones so, and
        without a cache a ``git:`` BASE takes them from HEAD's walk; the index, graph and diff then meet
        the very same objects (``analyzer.graph``).
        """
        memo = self.memo
        if memo is None or not memo.lending[0] or self.v1:
            return {}
        revision, models = memo.lending
        lending: dict[str, tuple[RevisionUnit, UnitModel]] = {
            kept.unit.id: (kept, model) for kept, model in zip(revision, models, strict=True)
        }
        sizes, blobs = self.sizes, self.blobs
        roots, walked, places = self.roots, self.walked, self.places
        lent: dict[str, RevisionUnit] = {}
        for row in order:  # containers first: a unit's container is decided before it
            found = lending.get(row.id)
            if found is None:
                continue
            kept, model = found
            unit = kept.unit
            container = None if row.container in (None, row.id) else row.container
            if (
                kept.blob != blobs[row.id]
                or (container is not None and container not in lent)
                or unit.container != container
                or unit.containment != row.containment
                or unit.contents_hash != row.contents_hash
            ):
                continue
            lent[row.id] = kept
            roots[row.id] = (unit.type, kept.name)
            walked[row.id] = model
            places[row.id] = (kept.blob, kept.place)
            self.element_count += model.outline.count
        memo.hits += len(lent)
        self._read_bytes += sum(sizes[unit_id] for unit_id in lent)
        if self._read_bytes > self.limits.max_model_bytes:
            raise model_too_large(self.location, self.limits)
        if self.element_count > self.limits.max_elements:
            raise too_many_elements(self.location, self.limits)
        self._tell(len(lent))
        return lent

    def _hash_first(self, rows: list[UnitRow], keys: dict[str, str | None]) -> None:
        """Key ``rows`` by the hash of their bytes before the walk; in an app folder a forked worker
        hashes the second half (:mod:`analyzer.load.ahead`), so tens of thousands of files take half
        the time. Bytes read here are kept and walked; a unit the worker hashed is read again only if
        the memo does not know it (and keyed then by what was read) or its elements are built."""
        paths = self.paths
        half = len(rows) // 2
        digests = (
            start_digests(self.tree.root, self.limits, [paths[row.id] for row in rows[half:]])
            if isinstance(self.tree, DirectoryTree) and half
            else None
        )
        ours = rows if digests is None else rows[:half]
        try:
            for row, (_, data) in zip(ours, self.tree.read_many(paths[row.id] for row in ours), strict=True):
                key = keys[row.id] = git_blob_id(data)
                self.pre_read[row.id] = (data, key)  # the bytes hashed are the bytes walked
        except BaseException:
            if digests is not None:
                digests.close()  # a broken file stops the load: the worker's half is not waited for
            raise
        found = digests.take() if digests is not None else {}
        for row in rows[half:] if digests is not None else ():
            digest = found.get(paths[row.id])
            if digest is not None:
                keys[row.id] = digest[1]

    def _serial(self, rows: list[UnitRow], between: Callable[[], None] | None = None) -> None:
        """Read and walk ``rows`` in order in this process (``between``: called before each)."""
        paths, sizes, blobs, known, pre_read = self.paths, self.sizes, self.blobs, self.known, self.pre_read
        to_read = [paths[row.id] for row in rows if row.id not in known and row.id not in pre_read]
        contents = self.tree.read_many(to_read) if not self.v1 else iter(())
        for row in rows:
            self._current = row
            if between is not None:
                between()
            path = paths[row.id]
            data: bytes | None
            # Known units come from the memo by their key; read ones are keyed by the bytes just read.
            if self.v1:
                data, blob = row.contents, blobs.get(row.id)
            elif row.id in pre_read:
                data, blob = pre_read.pop(row.id)
            elif row.id in known:
                data, blob = None, known[row.id]
            else:
                data, blob = next(contents)[1], blobs.get(row.id) if self.tree.stable else None
            self._read_bytes += sizes[row.id]
            if self._read_bytes > self.limits.max_model_bytes:
                raise model_too_large(self.location, self.limits)
            self._walk(row, path, data, blob)
            self._tell(1)

    def _tell(self, units: int) -> None:
        self._done += units
        if self.progress is not None:
            self.progress(self._done, self._total_units, self._read_bytes, self._total_bytes)

    def _run_split(self, order: list[UnitRow], leaves: list[UnitRow]) -> None:
        """Walk half of the leaf units in a forked worker while this process walks the other half.

        Containers (modules, folders) are walked here first, so the worker knows every module name; it
        sends each unit back as a checksummed record (``memo.encode_record``), which is rebuilt here. The
        earliest broken unit in walk order is reported, whichever process met it, as a serial walk would.
        """
        if self._total_bytes > self.limits.max_model_bytes:
            raise model_too_large(self.location, self.limits)
        position = {row.id: index for index, row in enumerate(order)}
        leaf_ids = {row.id for row in leaves}
        sizes = self.sizes
        self._serial([row for row in order if row.id not in leaf_ids])
        # Shares by bytes (WORKER_SHARE), so both processes finish at about the same time.
        theirs: list[UnitRow] = []
        ours: list[UnitRow] = []
        their_bytes = our_bytes = 0
        for row in leaves:
            if their_bytes * WORKER_SHARE[1] <= our_bytes * WORKER_SHARE[0]:
                theirs.append(row)
                their_bytes += sizes[row.id]
            else:
                ours.append(row)
                our_bytes += sizes[row.id]
        worker, receiver = fork_worker(self._worker, theirs)
        for row in theirs:
            self.pre_read.pop(row.id, None)  # the worker sends these bytes back with their outlines
        messages: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        drain = threading.Thread(target=_drain, args=(receiver, messages), daemon=True)
        drain.start()
        errors: list[tuple[int, InputError]] = []
        finished = [False]

        def take_ready() -> None:  # rebuild what has arrived, so it never piles up in memory
            while not finished[0] and not messages.empty():
                finished[0] = self._take(messages.get(), position, errors)

        try:
            self._serial(ours, take_ready)
        except InputError as error:
            assert self._current is not None
            errors.append((position[self._current.id], error))
        while not finished[0]:
            finished[0] = self._take(messages.get(), position, errors)
        drain.join()
        worker.join()
        receiver.close()
        if errors:
            raise min(errors, key=lambda found: found[0])[1]

    def _worker(self, sender: Any, rows: list[UnitRow]) -> None:
        """In the forked worker: read, decode and walk ``rows``; send records back in batches."""
        self.memo, self.progress = None, None  # the parent remembers and tells what comes back
        batch: list[tuple[str, str, bytes, bytes]] = []
        row: UnitRow | None = None
        paths, blobs, pre_read = self.paths, self.blobs, self.pre_read
        try:
            unread = (paths[r.id] for r in rows if r.id not in pre_read)
            contents = self.tree.read_many(unread) if not self.v1 else iter(())
            for row in rows:
                data = row.contents if self.v1 else pre_read[row.id][0] if row.id in pre_read else next(contents)[1]
                assert data is not None
                place = self._walk(row, paths[row.id], data, None)
                type_name, name = self.roots[row.id]
                record = encode_record(type_name, name, place, self.walked.pop(row.id).outline)
                blob = blobs.get(row.id) if self.tree.stable else None
                batch.append((row.id, blob or git_blob_id(data), record, data))
                if len(batch) >= 256:
                    sender.send(("units", batch))
                    batch = []
            sender.send(("units", batch))
            sender.send(("done",))
        except InputError as error:
            sender.send(("units", batch))
            sender.send(("error", row.id if row is not None else "", error.location, error.problem))
        except BaseException as error:
            sender.send(("crash", f"{type(error).__name__}: {error}"))

    def _take(
        self,
        message: tuple[Any, ...],
        position: dict[str, int],
        errors: list[tuple[int, InputError]],
    ) -> bool:
        """Rebuild one message of the worker and remember its units; True when the worker is done."""
        if message[0] == "units":
            for unit_id, blob, record, data in message[1]:
                type_name, name, place, outline = decode_record(record, unit_id)
                self.roots[unit_id] = (type_name, name)
                row = self.rows[unit_id]
                where = _unit_location(self.location, self.mpr_path, self._path(row), row)
                model = unit_model(place, outline, data, where)
                self.walked[unit_id] = model
                self.places[unit_id] = (blob, place)
                self.element_count += outline.count
                if self.memo is not None:
                    self.memo.remember(blob, place, type_name, name, model, record)
                self._read_bytes += self.sizes[unit_id]
                self._tell(1)
            return False
        if message[0] == "error":
            _, unit_id, location, problem = message
            errors.append((position.get(unit_id, len(position)), InputError(location, problem)))
            return True
        if message[0] == "crash":
            raise RuntimeError(f"unit reader worker failed: {message[1]}")
        if message[0] == "lost":
            raise RuntimeError("unit reader worker ended without finishing its units")
        return True

    def _content_key(self, path: str) -> str | None:
        return None if self.v1 else self.tree.blob_id(path)

    def _path(self, row: UnitRow) -> str:
        return self.mpr_path if self.v1 else unit_file(row.id)

    def _check_sizes(self, order: list[UnitRow], paths: dict[str, str]) -> dict[str, int]:
        """Every unit's size, refusing a huge unit file before reading it, not after."""
        sizes: dict[str, int] = {}
        for row in order:
            if self.v1:
                assert row.contents is not None
                sizes[row.id] = len(row.contents)
                continue
            size = self.tree.size(paths[row.id])
            if size > self.limits.max_unit_bytes:
                raise InputError(
                    f"{self.tree.description}:{paths[row.id]}",
                    f"unit is {size} bytes, over the limit (raise with --limit max_unit_bytes=N)",
                )
            sizes[row.id] = size
        return sizes

    def _containers_first(self) -> list[UnitRow]:
        """Units in breadth-first containment order (rows in a container cycle last, by id)."""
        children: dict[str, list[UnitRow]] = {}
        queue: deque[UnitRow] = deque()
        for row in self.tables.rows:  # sorted by id
            if row.container is None or row.container == row.id or row.container not in self.rows:
                queue.append(row)
            else:
                children.setdefault(row.container, []).append(row)
        order: list[UnitRow] = []
        seen: set[str] = set()
        while queue:
            row = queue.popleft()
            if row.id in seen:
                continue
            seen.add(row.id)
            order.append(row)
            queue.extend(children.get(row.id, ()))
        order.extend(row for row in self.tables.rows if row.id not in seen)
        return order

    def _module(self, row: UnitRow) -> str | None:
        """The name of the module around a unit, from the containers walked before it."""
        seen = {row.id}
        current = row.container
        while current is not None and current in self.roots and current not in seen:
            seen.add(current)
            type_name, name = self.roots[current]
            if type_name == MODULE_TYPE:
                return name if isinstance(name, str) else None
            container = self.rows[current].container
            current = None if container == current else container
        return None

    def _walk(self, row: UnitRow, path: str, data: bytes | None, blob: str | None) -> UnitPlace:
        where = _unit_location(self.location, self.mpr_path, path, row)
        memo = self.memo
        document: dict[str, Any] | None = None
        if memo is not None and blob is None:
            assert data is not None
            blob = git_blob_id(data)
        if memo is not None and blob is not None and memo.knows(blob, row.id):
            type_name, name = memo.root(blob, row.id)
        else:
            assert data is not None
            document = decode_unit(data, where, self.limits)
            type_name, name = str(document.get("$Type", "")), document.get("Name")
        self.roots[row.id] = (type_name, name)
        if type_name == MODULE_TYPE:
            prefix, qualify = None, True
        elif type_name == FOLDER_TYPE:
            prefix, qualify = self._module(row), False
        else:
            prefix, qualify = self._module(row), True
        parent = None if row.container in (None, row.id) else row.container
        place = UnitPlace(row.id, parent, row.containment, prefix, qualify, self.limits.max_depth)
        held = memo.known(blob, place) if memo is not None and blob is not None else None
        model = held if isinstance(held, UnitModel) else None
        if model is None:
            outline = held if isinstance(held, UnitOutline) else None
            fresh = outline is None
            if outline is None:
                if document is None:  # known bytes at a new place (a module renamed): read them after all
                    assert blob is not None
                    data = _read_known(self.tree, path, blob, where)
                    document = decode_unit(data, where, self.limits)
                outliner = UnitOutliner(where, self.limits.max_depth)
                try:
                    outline = outliner.read(document, parent=parent, name_prefix=prefix, qualify=qualify)
                except RecursionError:
                    raise InputError(
                        where, "objects nested too deeply to read (lower than --limit max_depth allows)"
                    ) from None
            # Built later from the bytes read now, or read again by blob id (a git tree) when not read.
            if data is None:
                assert blob is not None
                model = unit_model(place, outline, functools.partial(_read_known, self.tree, path, blob, where), where)
            else:
                model = unit_model(place, outline, data, where)
            if memo is not None and blob is not None:
                memo.remember(blob, place, type_name, name, model, store=fresh)
        self.walked[row.id] = model
        self.places[row.id] = (blob, place)
        self.element_count += model.outline.count
        if self.element_count > self.limits.max_elements:
            raise too_many_elements(self.location, self.limits)
        return place

    def _unit(self, row: UnitRow, path: str) -> Unit:
        type_name = self.roots[row.id][0]
        return Unit(
            id=row.id,
            type=type_name,
            container=None if row.container in (None, row.id) else row.container,
            containment=row.containment,
            contents_hash=row.contents_hash,
            path=path,
        )


SPLIT_MIN_BYTES = 8 * 1024 * 1024
"""Unit bytes to decode above which part of the units is walked in a forked worker. Measured on this
2-core machine, serial against split (fastest of five loads, one process): 3.7 MB of units 0.13 s both
ways, 13.7 MB 0.70 → 0.51 s, 29 MB (farmworker) 2.05 → 1.46 s, 317 MiB about 25.6 → 11 s; below a few
MB the fork costs more than it saves (a 1 MB app 14 → 28 ms)."""

WORKER_SHARE = (0.44, 0.56)
"""Shares of the leaf bytes for the worker and for this process, so both finish at about the same time.
The worker also hashes, encodes and sends back each unit with its bytes, and with both cores busy each
runs slower than alone: measured at scale (317 MiB of units), 0.44 left the cold load at 10.6 s, halves
at 12.6 s and 0.38 at 12.2 s."""


def _read_known(tree: FileTree, path: str, blob: str, where: str) -> bytes:
    """The bytes of a unit known by its blob id, read now (its elements are built, or it moved): refused
    when they are no longer those bytes, as when an app folder changes while the check reads it."""
    data = tree.read(path)
    if git_blob_id(data) != blob:
        raise InputError(where, "unit file changed while mxota was reading the app; run the check again")
    return data


def _drain(receiver: Any, into: queue.SimpleQueue[tuple[Any, ...]]) -> None:
    """Read the worker's messages as they come, so it never blocks on a full pipe."""
    while True:
        try:
            message = receiver.recv()
        except (EOFError, OSError):
            into.put(("lost",))  # the worker died without its last word (killed, out of memory)
            return
        into.put(message)
        if message[0] != "units":
            return


def _unit_location(location: str, mpr_path: str, path: str, row: UnitRow) -> str:
    """Where a unit's BSON is, for messages: its ``.mxunit`` file (v2) or its row of the ``.mpr`` (v1)."""
    if path != mpr_path:
        return f"{location}:{path}"
    return f"{location}/{mpr_path} (unit {row.id})"
