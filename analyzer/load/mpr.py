"""Read a Mendix model (``.mpr``) of either storage format into units and elements.

SQLite is opened read-only and immutable, so a file that Studio Pro holds open, or a file on a
read-only medium, is read as it is and never touched.
"""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bson
from bson.errors import BSONError

from analyzer.errors import InputError
from analyzer.load.files import FileTree, one_line
from analyzer.load.limits import Limits
from analyzer.load.units import UnitReader, guid
from analyzer.model.snapshot import ModelElement, MprFormat, SnapshotMeta, Unit

SQLITE_HEADER = b"SQLite format 3\x00"
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"
MODULE_TYPE = "Projects$ModuleImpl"
FOLDER_TYPE = "Projects$Folder"
PROJECT_TYPE = "Projects$Project"


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
                raise InputError(
                    location,
                    f"model is larger than {limits.max_model_bytes} bytes (raise with --limit max_model_bytes=N)",
                )
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


def unit_file(unit_id: str) -> str:
    """Where MPR v2 keeps a unit: ``mprcontents/53/6b/536b21ae-....mxunit``."""
    return f"mprcontents/{unit_id[0:2]}/{unit_id[2:4]}/{unit_id}.mxunit"


def unit_contents(
    tables: MprTables, tree: FileTree, mpr_path: str, limits: Limits
) -> Iterator[tuple[UnitRow, str, bytes]]:
    """Each unit row with where its BSON lives and the BSON bytes, in unit-id order."""
    if tables.meta.mpr_format is MprFormat.V1:
        for row in tables.rows:
            assert row.contents is not None
            yield row, mpr_path, row.contents
        return
    by_path = {unit_file(row.id): row for row in tables.rows}
    for path in by_path:
        # refuse a huge unit file before reading it, not after
        if tree.size(path) > limits.max_unit_bytes:
            raise InputError(
                f"{tree.description}:{path}",
                f"unit is {tree.size(path)} bytes, over the limit (raise with --limit max_unit_bytes=N)",
            )
    for path, data in tree.read_many(by_path):
        yield by_path[path], path, data


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


def build_units_and_elements(
    tables: MprTables, tree: FileTree, mpr_path: str, location: str, limits: Limits
) -> tuple[tuple[Unit, ...], tuple[ModelElement, ...]]:
    """Decode every unit, then walk each with names qualified through the containment tree.

    The walk allocates hundreds of thousands of objects that all live to the end of the run, so
    the cyclic garbage collector is paused for it: it would only rescan them (a third of the time).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _build_units_and_elements(tables, tree, mpr_path, location, limits)
    finally:
        if was_enabled:
            gc.enable()


def _build_units_and_elements(
    tables: MprTables, tree: FileTree, mpr_path: str, location: str, limits: Limits
) -> tuple[tuple[Unit, ...], tuple[ModelElement, ...]]:
    decoded: dict[str, tuple[UnitRow, str, dict[str, Any]]] = {}
    total = 0
    for row, path, data in unit_contents(tables, tree, mpr_path, limits):
        total += len(data)
        if total > limits.max_model_bytes:
            raise InputError(
                location, f"model is larger than {limits.max_model_bytes} bytes (raise with --limit max_model_bytes=N)"
            )
        decoded[row.id] = (row, path, decode_unit(data, _unit_location(location, mpr_path, path, row), limits))
    types = {unit_id: str(doc.get("$Type", "")) for unit_id, (_, _, doc) in decoded.items()}
    names = {unit_id: doc.get("Name") for unit_id, (_, _, doc) in decoded.items()}
    module_of = _modules(decoded, types, names)
    units: list[Unit] = []
    elements: list[ModelElement] = []
    for unit_id in sorted(decoded):
        row, path, document = decoded[unit_id]
        where = _unit_location(location, mpr_path, path, row)
        unit_type = types[unit_id]
        units.append(
            Unit(
                id=row.id,
                type=unit_type,
                container=None if row.container in (None, row.id) else row.container,
                containment=row.containment,
                contents_hash=row.contents_hash,
                path=path,
            )
        )
        module = module_of.get(unit_id)
        if unit_type == MODULE_TYPE:
            prefix, qualify = None, True
        elif unit_type == FOLDER_TYPE:
            prefix, qualify = module, False
        else:
            prefix, qualify = module, True
        reader = UnitReader(row.id, where, limits.max_depth)
        parent = None if row.container in (None, row.id) else row.container
        try:
            read = reader.read(document, parent=parent, slot=row.containment, name_prefix=prefix, qualify=qualify)
        except RecursionError:
            raise InputError(
                where, "objects nested too deeply to read (lower than --limit max_depth allows)"
            ) from None
        elements.extend(read)
        if len(elements) > limits.max_elements:
            raise InputError(
                location, f"model has more than {limits.max_elements} elements (raise with --limit max_elements=N)"
            )
    return tuple(units), tuple(elements)


def _unit_location(location: str, mpr_path: str, path: str, row: UnitRow) -> str:
    """Where a unit's BSON is, for messages: its ``.mxunit`` file (v2) or its row of the ``.mpr`` (v1)."""
    if path != mpr_path:
        return f"{location}:{path}"
    return f"{location}/{mpr_path} (unit {row.id})"


def _modules(
    decoded: dict[str, tuple[UnitRow, str, dict[str, Any]]],
    types: dict[str, str],
    names: dict[str, Any],
) -> dict[str, str]:
    """The module name of every unit that sits inside a module, found by walking up ``ContainerID``."""
    result: dict[str, str] = {}
    for unit_id in decoded:
        seen: set[str] = set()
        current: str | None = unit_id
        while current is not None and current in decoded and current not in seen:
            seen.add(current)
            if types[current] == MODULE_TYPE:
                name = names[current]
                if isinstance(name, str):
                    result[unit_id] = name
                break
            container = decoded[current][0].container
            current = None if container == current else container
    return result
