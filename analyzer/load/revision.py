"""A ``git:`` revision's model, kept in the ``--cache`` store whole, under the id of its tree.

A git tree id names every byte under it, so a revision read before is the same model again: its Unit
table, where each unit sits in the model (``UnitPlace``), its side files and native settings. This
record keeps all of that, but no unit contents: each unit's outline comes from its own unit record
(``analyzer.load.memo``), and its elements are built from its blob when a check looks into it. A later
run that meets the same tree neither lists the tree (``git ls-tree``) nor copies and queries the
``.mpr``, orders the units, hashes the side files or parses the widget packages again.

The record is ``marshal`` bytes, not deflated: repeated texts (types, containments, containers, modules)
are written once and referred to, and a unit's path is left out where MPR v2 puts it (5.4 MB at 25,834
units, against 4.0 MB deflated that took 0.14 s to deflate on every new tree and 0.04 s to inflate on
every known one). Like a unit record, the record starts with the CRC-32 of the rest (``memo.seal_record``;
the SHA-256 of format 6 took 13-15 ms a revision, a check reads two), and its key names the reading
code (every module of ``analyzer.load`` and ``analyzer.model``), the record format and the limits, so
a record is never read by code that would have read the tree differently. A missing or damaged record,
or one whose units the store no longer holds, is a miss: the revision is read as if it were new.
"""

from __future__ import annotations

import functools
import marshal
from dataclasses import astuple, dataclass
from typing import Any, NamedTuple

from analyzer.load.limits import Limits
from analyzer.load.memo import UnitPlace, loader_fingerprint, open_record, record_key, seal_record, slot_setters
from analyzer.model.native import NativeSetting
from analyzer.model.snapshot import MprFormat, SideFile, SnapshotMeta, Unit, unit_file

REVISION_FORMAT = 7
"""Bump when the record layout changes (the code fingerprint changes with it anyway)."""

MAX_REVISION_BYTES = 1 << 30
"""A record larger than this is refused (a damaged cache must not exhaust memory)."""


def revision_key(tree_id: str, limits: Limits) -> str:
    """The store key of a revision's record: its tree, the limits it was read under, the reading code."""
    return record_key("revision", REVISION_FORMAT, loader_fingerprint(), tree_id, repr(astuple(limits)))


class RevisionUnit(NamedTuple):
    """One unit of a revision as its walk left it: the row, the blob, its place and its root's name.

    A walk places a unit under its row's container and containment, as the :class:`Unit` names them,
    so the record keeps those once (the place's module prefix, qualifying and depth limit beside)."""

    unit: Unit
    blob: str
    size: int
    place: UnitPlace
    name: str | None
    """The root object's ``Name`` when it is text (a module's name qualifies what is inside it)."""


@dataclass(frozen=True, slots=True)
class RevisionModel:
    """Everything a load of one tree found, except the units' outlines and contents."""

    meta: SnapshotMeta
    units: tuple[RevisionUnit, ...]
    """In the snapshot's order (by unit id)."""
    files: tuple[SideFile, ...]
    native: tuple[NativeSetting, ...]
    file_blobs: tuple[str, ...] = ()
    """The git blob id of each of :attr:`files`, in order: a later tree holding the same blob at any path
    then has its size and SHA-256 without reading it (a new HEAD beside a known BASE: 1,490 side files
    at scale, 0.12 s). Empty when the record has none."""


def encode_revision(model: RevisionModel) -> bytes:
    """The record of a revision: ``marshal`` bytes of plain values, sealed as a unit record is.

    Equal texts are made one object first, so ``marshal`` writes each once and refers to it after (and
    the reader gets one object for them); a path where MPR v2 keeps the unit is stored as ``""``.
    """
    meta = model.meta
    texts: dict[str | None, str | None] = {}
    one = texts.setdefault
    units = tuple(
        (
            u.unit.id, one(u.unit.type, u.unit.type), one(u.unit.container, u.unit.container),
            one(u.unit.containment, u.unit.containment), u.unit.contents_hash,
            "" if u.unit.path == unit_file(u.unit.id) else u.unit.path,
            u.blob, u.size, one(u.place.name_prefix, u.place.name_prefix), u.place.qualify, u.place.max_depth,
            u.name,
        )
        for u in model.units
    )
    heading = (
        meta.mpr_name, meta.mpr_format.value, meta.format_version, meta.product_version, meta.build_version,
        meta.schema_hash,
    )
    blobs = model.file_blobs if len(model.file_blobs) == len(model.files) else ("",) * len(model.files)
    files = tuple((f.path, f.size, f.sha256, blob) for f, blob in zip(model.files, blobs, strict=True))
    native = tuple((s.kind, s.key, s.value, s.detail) for s in model.native)
    payload = marshal.dumps((REVISION_FORMAT, heading, units, files, native))
    return seal_record(payload)


_UNIT_ID, _UNIT_TYPE, _CONTAINER, _CONTAINMENT, _CONTENTS_HASH, _PATH = slot_setters(Unit)


def _new_unit(unit_id: str, type_name: str, container: str | None, containment: str, contents_hash: str,
              path: str) -> Unit:
    """A :class:`Unit` read back, its fields set through its slots (0.9 µs, against 1.7 µs through the
    frozen dataclass's ``__init__``: one per unit of the first revision a check reads)."""
    unit = object.__new__(Unit)
    _UNIT_ID(unit, unit_id)
    _UNIT_TYPE(unit, type_name)
    _CONTAINER(unit, container)
    _CONTAINMENT(unit, containment)
    _CONTENTS_HASH(unit, contents_hash)
    _PATH(unit, path)
    return unit


_new_revision_unit = functools.partial(tuple.__new__, RevisionUnit)
_new_place = functools.partial(tuple.__new__, UnitPlace)
"""Rows made without the named tuples' Python-level ``__new__`` (one per unit of a revision)."""


RevisionRows = dict[tuple[object, ...], RevisionUnit]
"""The units of the revisions decoded in one run, by the row their record stores."""


def decode_revision(record: bytes, decoded: RevisionRows | None = None) -> RevisionModel:
    """The revision a record holds; ValueError when it is damaged or not a record of this format.

    ``decoded``: units of revisions decoded before in this run. A unit stored alike is taken from there
    (the two revisions of a check share almost every unit: the second of a check at scale 0.16 -> 0.12 s,
    and what is built from them after is faster as well: the shared units are the very same objects),
    and the others are added to it.
    """
    payload = open_record(record, "revision")
    if len(payload) > MAX_REVISION_BYTES:
        raise ValueError("revision record is too large")
    known: RevisionRows = decoded if decoded is not None else {}
    try:
        value: Any = marshal.loads(payload)
        version, meta, units, files, native = value
        if version != REVISION_FORMAT:
            raise ValueError("not a revision record of this format")
        name, mpr_format, format_version, product, build, schema = meta
        rows: list[RevisionUnit] = []
        for row in units:
            kept = known.get(row)
            if kept is None:
                (unit_id, type_name, container, containment, contents_hash, path, blob, size, prefix, qualify,
                 max_depth, root_name) = row
                kept = known[row] = _new_revision_unit(
                    (
                        _new_unit(unit_id, type_name, container, containment, contents_hash,
                                  path or unit_file(unit_id)),
                        blob,
                        int(size),
                        _new_place((unit_id, container, containment, prefix, bool(qualify), int(max_depth))),
                        root_name if isinstance(root_name, str) else None,
                    )
                )
            rows.append(kept)
        return RevisionModel(
            meta=SnapshotMeta(
                mpr_name=str(name),
                mpr_format=MprFormat(mpr_format),
                format_version=format_version if isinstance(format_version, int) else None,
                product_version=str(product),
                build_version=str(build),
                schema_hash=str(schema),
            ),
            units=tuple(rows),
            files=tuple(SideFile(path=path, size=int(size), sha256=digest) for path, size, digest, _ in files),
            native=tuple(
                NativeSetting(kind=kind, key=key, value=text, detail=detail) for kind, key, text, detail in native
            ),
            file_blobs=tuple(str(blob) for *_, blob in files) if any(row[3] for row in files) else (),
        )
    except (ValueError, TypeError, EOFError, KeyError, IndexError) as exc:
        raise ValueError(f"unreadable revision record ({type(exc).__name__})") from None
