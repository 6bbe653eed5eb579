"""What one run has already read, by content, so the second snapshot of a check reuses the first's work.

Two revisions of an app share almost every unit byte for byte. A unit whose bytes (git blob id) and
place in the model (unit id, container, containment, module) equal one read before gives the same
elements, so it is neither decoded nor walked again, and both snapshots hold the very same element
objects: the diff then passes over it without comparing a property (``diff`` checks identity first).
A unit whose bytes differ is decoded and compared as usual, even when only its hash changed.

Keys are git blob ids: given by ``git ls-tree`` for ``git:`` sources (equal blobs are not even read),
computed from the bytes for everything else. The memo lives for one run. Given a :class:`UnitStore`
(the CLI's ``--cache`` directory), walked units also outlive the run: the next run reads their
elements back instead of decoding and walking the unit again. Loading never writes a file itself.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import marshal
import sys
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple, Protocol

import bson
from bson.errors import BSONError

import analyzer.load.units as units_module
import analyzer.model.snapshot as snapshot_module
from analyzer import __version__
from analyzer.errors import InputError
from analyzer.load.units import UnitReader
from analyzer.model.native import WidgetPackage
from analyzer.model.snapshot import (
    ElementKey,
    ModelElement,
    NamedElement,
    UnitModel,
    UnitOutline,
    pack_referring,
)

Progress = Callable[[int, int, int, int], None]
"""Told ``(units read, units in all, bytes read, bytes in all)`` as a load goes; the CLI draws a bar."""

RECORD_FORMAT = 6
"""Bump when the record layout changes, or how a store keeps records (6: in packs, ``analyzer.cache``):
stored records of another format are never read."""


def code_fingerprint(sources: Iterable[Path]) -> str:
    """A hash of mxota's version and these source files, so records written by other code are never read.

    The version number alone would let a development build, or a release that forgot to bump it, read
    records an older walk wrote (say, without in-text references) as if they were its own.
    """
    digest = hashlib.sha256(__version__.encode("utf-8"))
    for source in sources:
        digest.update(source.name.encode("utf-8") + b"\0")
        try:
            digest.update(source.read_bytes())
        except OSError:
            digest.update(b"unreadable")
    return digest.hexdigest()[:16]


def source_of(module: ModuleType) -> Path:
    """The ``.py`` file a module runs from, or was compiled from (setup.py compiles the walk with mypyc).

    Records are keyed by source, not by build: two builds of one source are not byte-identical, and a
    compiled walk finds what its source finds (a test holds it to that), so each build reads the
    records any other build of the same source wrote, a CI cache included."""
    path = Path(str(module.__file__))
    return path if path.suffix == ".py" else path.with_name(f"{path.name.split('.')[0]}.py")


READER = code_fingerprint(source_of(module) for module in (units_module, snapshot_module, sys.modules[__name__]))
"""The code that turns a unit into an outline."""

_NAMED = functools.partial(tuple.__new__, NamedElement)
"""A :class:`NamedElement` from a row of four (its ``_make`` without a Python call per row)."""


def git_blob_id(data: bytes) -> str:
    """The id git gives these bytes as a blob (SHA-1 of ``blob <size>\\0`` and the bytes)."""
    digest = hashlib.sha1(b"blob %d\x00" % len(data), usedforsecurity=False)
    digest.update(data)
    return digest.hexdigest()


class UnitPlace(NamedTuple):
    """Where a unit sits: with equal bytes, an equal place gives equal elements.

    A named tuple, not a dataclass: a cached load makes one for each of tens of thousands of units and
    hashes and compares it as a dict key; a tuple does both in C.
    """

    unit_id: str
    parent: str | None
    containment: str
    name_prefix: str | None
    qualify: bool
    max_depth: int


class UnitStore(Protocol):
    """Records of walked units that outlive a run, by key (the CLI keeps them on disk)."""

    def get(self, key: str) -> bytes | None:
        """The record stored under ``key``, or None."""
        ...

    def put(self, key: str, record: bytes) -> None:
        """Keep a record; a store that cannot keep it forgets it (it is only a cache)."""
        ...

    def get_revision(self, key: str) -> bytes | None:
        """The revision record stored under ``key`` (``analyzer.load.revision``), or None."""
        ...

    def put_revision(self, key: str, record: bytes) -> None:
        """Keep a revision record; a store may forget the least recently used ones (one is kept per
        git tree read, so they are many more than the units a release changes)."""
        ...


@functools.cache
def _key_prefix(reader: str) -> hashlib._Hash:
    return hashlib.sha256(f"mxota {reader} record {RECORD_FORMAT}\0".encode())


def store_key(blob: str, unit_id: str) -> str:
    """The store key of a unit's bytes: the blob, the unit, and what reads it (code and format)."""
    digest = _key_prefix(READER).copy()  # the hash of the whole text, the prefix hashed once
    digest.update(f"{blob}\0{unit_id}".encode())
    return digest.hexdigest()


def record_key(kind: str, version: int, code: str, *parts: str) -> str:
    """The store key of a record of more than one unit's outline (a revision, a widget package, a tree's
    native findings): its kind and layout version, the fingerprint of the code that wrote it, and what
    it was made of, so a record is only ever read by code that would have made the same one."""
    text = "\0".join((f"mxota {code} {kind} {version}", *parts))
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def encode_record(type_name: str, name: object, place: UnitPlace, outline: UnitOutline) -> bytes:
    """A unit's root type and name, its place and its outline, as ``marshal`` bytes (plain values only).

    The unit's bytes are not kept: a unit is built from the bytes its source holds (read anyway for a
    folder, by blob id from the repository for a ``git:`` revision), only when a check looks into it.
    """
    head = (place.parent, place.containment, place.name_prefix, place.qualify, place.max_depth)
    keys: bytes | tuple[ElementKey, ...] = outline.keys
    if not isinstance(keys, bytes) and all(key.__class__ is bytes and len(key) == 16 for key in keys):
        keys = b"".join(keys)  # type: ignore[arg-type]  # one string, not a million small ones
    referring = outline.referring_stored
    lines = (
        outline.root_id,
        outline.root_type,
        outline.root_name,
        outline.root_qualified_name,
        outline.count,
        tuple(tuple(named) for named in outline.named),
        referring if isinstance(referring, bytes) else pack_referring(referring),  # unpacked when asked
        keys,
        tuple(sorted(outline.types)),
        tuple(sorted(outline.foreign_pointers)),
        outline.naming,
        outline.naming_ids,
        tuple(sorted(outline.names_used)),
    )
    payload = marshal.dumps((RECORD_FORMAT, type_name, name if isinstance(name, str) else None, head, lines))
    return seal_record(payload)


def seal_record(payload: bytes) -> bytes:
    """The payload behind its CRC-32, so a truncated or damaged record file is a miss.

    The check is against damage, not tampering (a cache must be as trusted as mxota; README): CRC-32
    finds every error burst of up to 32 bits and misses other damage once in four billion, and a
    record that passes must still unmarshal into rows of the right shape. It is 5x cheaper than the
    SHA-256 of format 4, which cost 0.2 s of a warm check at scale (25,834 records, 75 MB)."""
    return zlib.crc32(payload).to_bytes(4, "little") + payload


def open_record(record: bytes, what: str) -> memoryview:
    """The payload of a sealed record (:func:`seal_record`), not a copy of it (70 MB for a large app's
    unit records); ValueError naming ``what`` when the record is cut short or damaged."""
    payload = memoryview(record)[4:]
    if len(record) < 5 or zlib.crc32(payload) != int.from_bytes(record[:4], "little"):
        raise ValueError(f"{what} record is damaged")
    return payload


@functools.cache
def loader_fingerprint() -> str:
    """A hash of every module that reads a source or defines what it becomes (``analyzer.load`` and
    ``analyzer.model``): what keys a record of anything more than one unit's outline."""
    package = Path(__file__).resolve().parent
    return code_fingerprint(
        module for folder in (package, package.parent / "model") for module in sorted(folder.glob("*.py"))
    )


_NEW_PLACE = functools.partial(tuple.__new__, UnitPlace)
"""A :class:`UnitPlace` from a row of six (without the named tuple's Python-level ``__new__``)."""


def slot_setters(cls: type[Any]) -> tuple[Callable[[Any, Any], None], ...]:
    """The setter of each slot of a frozen dataclass, in field order, for code that makes tens of
    thousands of them from a record (its ``__init__`` sets each field through ``object.__setattr__``).
    Unpacked into as many names as there are fields, so a new field fails there, loudly, until it is set
    too."""
    return tuple(getattr(cls, field.name).__set__ for field in dataclasses.fields(cls))


(_ROOT_ID, _ROOT_TYPE, _ROOT_NAME, _ROOT_QUALIFIED, _COUNT, _NAMED_ROWS, _REFERRING, _KEYS, _TYPES, _FOREIGN,
 _NAMING, _NAMING_IDS, _NAMES_USED) = slot_setters(UnitOutline)


def _new_outline(
    root_id: str, root_type: str, root_name: str | None, root_qualified: str | None, count: int,
    named: tuple[NamedElement, ...], referring: bytes, keys: bytes | tuple[ElementKey, ...], types: frozenset[str],
    foreign: frozenset[str], naming: tuple[int, ...], naming_ids: tuple[str, ...], names_used: frozenset[str],
) -> UnitOutline:
    """An outline read back, its fields set through its slots: the frozen dataclass's ``__init__`` sets
    each through ``object.__setattr__`` (3.3 µs an outline, against 1.4 µs so)."""
    outline = object.__new__(UnitOutline)
    _ROOT_ID(outline, root_id)
    _ROOT_TYPE(outline, root_type)
    _ROOT_NAME(outline, root_name)
    _ROOT_QUALIFIED(outline, root_qualified)
    _COUNT(outline, count)
    _NAMED_ROWS(outline, named)
    _REFERRING(outline, referring)
    _KEYS(outline, keys)
    _TYPES(outline, types)
    _FOREIGN(outline, foreign)
    _NAMING(outline, naming)
    _NAMING_IDS(outline, naming_ids)
    _NAMES_USED(outline, names_used)
    return outline


def decode_record(record: bytes, unit_id: str) -> tuple[str, object, UnitPlace, UnitOutline]:
    """Root type, name, place and outline of a stored record; ValueError when it is not one.

    The record starts with the CRC-32 of the rest (:func:`seal_record`), so a truncated or damaged
    file is a miss, never a different model.
    """
    payload = open_record(record, "unit")
    try:
        value: Any = marshal.loads(payload)
        version, type_name, name, head, lines = value
        if version != RECORD_FORMAT or not isinstance(type_name, str):
            raise ValueError("not a record of this format")
        parent, containment, prefix, qualify, max_depth = head
        place = _NEW_PLACE((unit_id, parent, containment, prefix, bool(qualify), int(max_depth)))
        (
            root_id,
            root_type,
            root_name,
            root_qualified,
            count,
            named,
            referring,
            keys,
            types,
            foreign,
            naming,
            naming_ids,
            names_used,
        ) = lines
        if not set(map(len, named)) <= {4} or not isinstance(referring, bytes) or len(naming) != len(naming_ids):
            raise ValueError("outline rows of another shape")
        outline = _new_outline(
            root_id,
            root_type,
            root_name,
            root_qualified,
            int(count),
            tuple(map(_NAMED, named)),
            referring,  # its rows are unpacked if a check asks for them (a few percent)
            keys if isinstance(keys, bytes) else tuple(keys),
            frozenset(types),
            frozenset(foreign),
            tuple(naming),
            tuple(naming_ids),
            frozenset(names_used),
        )
        if len(outline.keys) != (16 * outline.count if isinstance(outline.keys, bytes) else outline.count):
            raise ValueError("element count and ids disagree")
    except (ValueError, TypeError, EOFError, KeyError, IndexError) as exc:
        raise ValueError(f"unreadable unit record ({type(exc).__name__})") from None
    return type_name, name, place, outline


def unit_model(
    place: UnitPlace, outline: UnitOutline, source: bytes | Callable[[], bytes], location: str
) -> UnitModel:
    """A unit model whose elements are built when first asked for, from ``source``: the unit's bytes,
    or a way to read them again (a ``git:`` blob, which its id keeps from changing)."""

    def build() -> tuple[ModelElement, ...]:
        data = source if isinstance(source, bytes) else source()
        try:
            document = bson.decode(data)
            reader = UnitReader(place.unit_id, location, place.max_depth)
            elements = tuple(
                reader.read(
                    document,
                    parent=place.parent,
                    slot=place.containment,
                    name_prefix=place.name_prefix,
                    qualify=place.qualify,
                )
            )
        except (BSONError, RecursionError, ValueError) as exc:  # read once already: only a damaged cache
            raise InputError(location, f"unit can no longer be read ({type(exc).__name__})") from None
        if len(elements) != outline.count or elements[0].id != outline.root_id:
            raise InputError(location, "unit does not match what was read of it before (a damaged cache?)")
        return elements

    return UnitModel(place.unit_id, outline, build=build)


@dataclass(slots=True)
class _UnitEntry:
    type: str
    name: object
    walks: dict[UnitPlace, UnitModel] = field(default_factory=dict)
    stored: tuple[UnitPlace, UnitOutline] | None = None
    """The outline a store kept, until a walk at its place turns it into a unit model."""


@dataclass(slots=True)
class ReadMemo:
    """Units already decoded and walked, by blob id: in this run, and in ``store`` when given."""

    store: UnitStore | None = None
    _units: dict[tuple[str, str], _UnitEntry | None] = field(default_factory=dict)
    file_digests: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Git blob id → size and SHA-256 of a side file hashed before."""
    widgets: dict[tuple[str, str], WidgetPackage] = field(default_factory=dict)
    """(Path, SHA-256 of the bytes) → the widget package read from them."""
    revision_rows: dict[tuple[object, ...], Any] = field(default_factory=dict)
    """The units of the ``git:`` revision records decoded so far (``analyzer.load.revision.RevisionRows``)."""
    lending: tuple[tuple[Any, ...], tuple[UnitModel, ...]] = ((), ())
    """The units (``analyzer.load.revision.RevisionUnit``) of the last ``git:`` tree this run read, from
    the store or walked, and their models in the same order: a tree walked after it takes each unit it
    holds alike from there, unwalked (``analyzer.load.mpr``)."""
    hits: int = 0
    """How many units were taken from the memo instead of decoded (benchmarks print it)."""
    stored: int = 0
    """How many of those came from the store."""

    def _entry(self, blob: str, unit_id: str) -> _UnitEntry | None:
        key = (blob, unit_id)
        if key in self._units:
            return self._units[key]
        entry: _UnitEntry | None = None
        record = self.store.get(store_key(blob, unit_id)) if self.store is not None else None
        if record is not None:
            try:
                type_name, name, place, outline = decode_record(record, unit_id)
            except ValueError:
                pass  # a damaged record is a miss: the unit is read again and the record rewritten
            else:
                entry = _UnitEntry(type=type_name, name=name, stored=(place, outline))
        self._units[key] = entry
        return entry

    def may_know(self) -> bool:
        """Whether any unit could be known: one was read before in this run, or a store is there."""
        return self.store is not None or bool(self._units)

    def knows(self, blob: str, unit_id: str) -> bool:
        """Whether this unit's bytes were read before (its root type and name are then known)."""
        return self._entry(blob, unit_id) is not None

    def root(self, blob: str, unit_id: str) -> tuple[str, object]:
        """``$Type`` and ``Name`` of a unit read before."""
        entry = self._entry(blob, unit_id)
        assert entry is not None
        return entry.type, entry.name

    def known(self, blob: str, place: UnitPlace) -> UnitModel | UnitOutline | None:
        """The unit model of a unit read before at the same place, else the outline the store kept for
        these bytes at this place, else None."""
        entry = self._entry(blob, place.unit_id)
        if entry is None:
            return None
        found = entry.walks.get(place)
        if found is not None:
            self.hits += 1
            return found
        stored = entry.stored
        if stored is None or stored[0] != place:
            return None
        self.hits += 1
        self.stored += 1
        return stored[1]

    def remember(
        self,
        blob: str,
        place: UnitPlace,
        type_name: str,
        name: object,
        model: UnitModel,
        record: bytes | None = None,
        *,
        store: bool = True,
    ) -> None:
        """Keep a unit's walk for the other snapshot of the check, and in the store for later runs
        (``record``: the walk already encoded, by a worker; ``store``: False for what came from it)."""
        entry = self._units.get((blob, place.unit_id))
        if entry is None:
            entry = self._units[(blob, place.unit_id)] = _UnitEntry(type=type_name, name=name)
        entry.walks[place] = model
        if self.store is not None and store:
            self.store.put(
                store_key(blob, place.unit_id), record or encode_record(type_name, name, place, model.outline)
            )
