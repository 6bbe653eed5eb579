"""The ``--cache DIR`` directory: walked units kept on disk between runs (the CLI's side of the memo).

Each unit's outline (names, references, element ids and types) is stored under a key made of its
bytes' git blob id, its unit id and the reading code's version (``analyzer.load.memo.store_key``). The
record starts with the CRC-32 of its contents. A later run that meets the same bytes reads the record
instead of decoding and walking the unit: a pull-request gate whose base is the released revision then
decodes only what the branch changed. Widget packages are kept the same way, each under its bytes, its
path, the limits and the reading code (``analyzer.load.native.widget_key``). A cache is only ever a
speed-up: a missing, unreadable or damaged record is a miss, a cache that cannot be written is skipped,
and the reports are the same with or without one (the tests hold that).

Unit records are kept in packs, as git keeps objects: each run appends the records it writes to one
pack file of its own (``<name>.pack``), and the key, place and length of each to an index beside it
(``<name>.keys``, rows of fixed size, each behind its CRC-32). A file per record had cost a first run at
scale 25,834 file creations: 20.5 s against 9.7 s without a cache. Appending costs nothing measurable,
and a warm run reads a few index files instead of opening tens of thousands of records (see the
README's performance section). A row is appended only once its record is written, and a row whose
record lies past the end of its pack is not used, so a reader never takes half a record from a run
still writing, or killed. A pack is named by the reading code's fingerprint (``memo.READER``, also in
every key): a run reads only its own build's packs, and its first write removes the packs of builds no
run has read for :data:`UNUSED_DAYS`, so an upgrade does not leave a full cache behind for ever.

The directory must be as trusted as mxota itself: whoever can write it can change what mxota sees.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import stat
import struct
import tempfile
import time
import weakref
import zlib
from pathlib import Path
from typing import Any

import analyzer.load.memo as memo_module
from analyzer.load.ahead import can_fork, fork_worker
from analyzer.load.memo import RECORD_FORMAT
from analyzer.load.revision import REVISION_FORMAT

MAX_RECORD_BYTES = 256 * 1024 * 1024
"""A record larger than this is not read (a damaged cache must not exhaust memory)."""

MAX_INDEX_BYTES = 256 * 1024 * 1024
"""An index file larger than this (over five million rows) is not read."""

MAX_REVISIONS = 64
"""Revision records kept: two per git tree read, its revision record (about 210 bytes a unit: 5.4 MB
for 25,834 units) and its native findings (a few kB; ``analyzer.pipeline``). Past this the least
recently used are removed, so a cache kept between CI runs does not grow by two for every commit ever
checked."""

MAX_PACKS = 16
"""Packs kept before a run's first write merges the smaller ones into its own (every run that walks a
new unit adds a pack, most of them small: a gate's branch changes a few dozen units)."""

UNUSED_DAYS = 14
"""Packs another build of mxota wrote are removed once no run of that build has read them for this long
(each run marks the packs of its own build as used): an upgrade's first run writes a full pack again,
and the old build's pack would otherwise stay for ever."""

MERGE_AFTER_SECONDS = 3600
"""A pack is merged only when no run has written to it for this long (a run still writing keeps its
pack; a check takes minutes at most)."""

_ROW = struct.Struct("<32sQII")
"""An index row: the key's 32 bytes, the record's offset and length in the pack, the CRC-32 of the
first three fields."""

_FORMAT_FOLDER = re.compile(r"(units|revisions)-([0-9]+)")
"""A folder of records of one format; those of formats older than this mxota's are removed."""

_OPEN_RECORD = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
"""A record is opened without waiting on whatever might sit at its name (a FIFO is a miss)."""

_APPEND = os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
"""A run's own pack and index: new files, only ever appended to (the pack is also read back)."""

_Place = tuple[int, int, int]
"""Where a record is: the open pack's descriptor, the offset and the length."""


class DiskUnitStore:
    """Unit records in packs in ``DIR/units-<format>/`` (read from every pack there, appended to one of
    this run's own), revision records in ``DIR/revisions-<format>/<key>``; read defensively."""

    def __init__(self, root: Path) -> None:
        self.root = root / f"units-{RECORD_FORMAT}"
        self.revisions = root / f"revisions-{REVISION_FORMAT}"
        self._build = memo_module.READER
        """The reading code's fingerprint: its packs are named by it, and only they are read."""
        self.writable = True
        self._pruned = False
        self.pruning: Any = None
        """The forked process deleting older formats' records, if one was started (tests wait for it)."""
        self._index: dict[bytes, _Place] | None = None
        """Every record the packs hold, by key: read on the first ``get``, then kept up to date."""
        self._descriptors: list[int] = []
        self._own: tuple[int, int, int] | None = None
        """This run's pack and index, and the process that opened them (a forked one never writes)."""
        self._own_size = 0
        self._closer = weakref.finalize(self, _close_all, self._descriptors)

    def get(self, key: str) -> bytes | None:
        index = self._index if self._index is not None else self._read_indexes()
        found = index.get(_raw_key(key))
        if found is None:
            return None
        descriptor, offset, length = found
        if length > MAX_RECORD_BYTES:
            return None
        try:
            return _read_at(descriptor, length, offset)  # a short read fails the record's checksum
        except OSError:
            return None

    def put(self, key: str, record: bytes) -> None:
        raw = _raw_key(key)
        if not raw or len(record) > MAX_RECORD_BYTES or not self.writable:
            return  # after a failed write too: the pack may end in part of a record
        own = self._own_pack()
        if own is not None:
            self._append(own, raw, record)

    def record_count(self) -> int:
        """How many records (units' and widget packages') this build's packs hold as they are now."""
        return len(self._read_indexes())

    def close(self) -> None:
        """Let go of the open packs (a process that exits need not)."""
        self._closer()
        self._index, self._own = None, None

    def _append(self, own: tuple[int, int, int], raw: bytes, record: bytes | memoryview) -> None:
        """Append a record to this run's pack, then its row to the index beside it."""
        pack, keys, _ = own
        offset = self._own_size
        head = _ROW.pack(raw, offset, len(record), 0)[:-4]
        try:
            _write_all(pack, record)
            self._own_size += len(record)
            _write_all(keys, head + zlib.crc32(head).to_bytes(4, "little"))
        except OSError:
            self.writable = False  # a full disk: run on without the cache
            return
        if self._index is not None:
            self._index[raw] = (pack, offset, len(record))

    def _own_pack(self) -> tuple[int, int, int] | None:
        """This run's pack and index, opened on its first write; None when the cache cannot be written."""
        own = self._own
        if own is not None:
            return own if own[2] == os.getpid() else None
        if not self.writable:
            return None
        name = f"{self._build}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}-{secrets.token_hex(4)}"
        pack = keys = -1
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            pack = os.open(self.root / f"{name}.pack", _APPEND | os.O_RDWR, 0o600)
            keys = os.open(self.root / f"{name}.keys", _APPEND | os.O_WRONLY, 0o600)
        except OSError:
            self.writable = False  # a read-only disk, or a file where the cache would go
            if pack >= 0:
                os.close(pack)
                (self.root / f"{name}.pack").unlink(missing_ok=True)
            return None
        self._descriptors += (pack, keys)
        self._own = own = (pack, keys, os.getpid())
        self._remove_unused_packs()
        self._merge_packs(own, name)
        self._prune_once()
        return own

    def _read_indexes(self) -> dict[bytes, _Place]:
        """Every valid row of every pack's index: rows whose CRC fails, or whose record would lie past
        the end of its pack (a run still writing, or killed), are left out."""
        index: dict[bytes, _Place] = {}
        for name in _pack_names(self.root, self._build):
            opened = self._open_pack(name)
            if opened is not None:
                for key, offset, length in opened[1]:
                    index[key] = (opened[0], offset, length)
                with contextlib.suppress(OSError):
                    os.utime(self.root / f"{name}.keys")  # used by this build (see UNUSED_DAYS)
        self._index = index
        return index

    def _open_pack(self, name: str) -> tuple[int, list[tuple[bytes, int, int]]] | None:
        """A pack opened for reading (kept open) and its valid rows; None when it is not a plain file."""
        rows = _read_record(str(self.root / f"{name}.keys"), MAX_INDEX_BYTES)
        if not rows:
            return None
        try:
            pack = os.open(self.root / f"{name}.pack", _OPEN_RECORD)
        except OSError:
            return None
        try:
            status = os.fstat(pack)
        except OSError:
            status = None
        if status is None or not stat.S_ISREG(status.st_mode):
            os.close(pack)
            return None
        self._descriptors.append(pack)
        return pack, _valid_rows(rows, status.st_size)

    def _remove_unused_packs(self) -> None:
        """Remove the packs of other builds that no run of theirs has read for :data:`UNUSED_DAYS`, and
        packs left without an index (a run killed while merging) once settled."""
        unused = time.time() - UNUSED_DAYS * 86400
        for name in _pack_names(self.root):
            if name.startswith(f"{self._build}-"):
                continue
            with contextlib.suppress(OSError):  # another run removed it first
                if (self.root / f"{name}.keys").stat().st_mtime < unused:
                    for suffix in (".keys", ".pack"):
                        (self.root / f"{name}{suffix}").unlink(missing_ok=True)
        settled = time.time() - MERGE_AFTER_SECONDS  # a run opens its pack a moment before its index
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.root):
                name = entry.name
                if name.endswith(".pack") and not os.path.lexists(self.root / f"{name[: -len('.pack')]}.keys"):
                    with contextlib.suppress(OSError):
                        if entry.stat(follow_symlinks=False).st_mtime < settled:
                            Path(entry.path).unlink()

    def _merge_packs(self, own: tuple[int, int, int], own_name: str) -> None:
        """Past :data:`MAX_PACKS` packs, copy the records of all but the largest into this run's own pack
        and remove them. A pack written to in the last hour is left alone (a run may still be writing
        it); a run reading a removed pack keeps it open, and a run that lists it too late has a miss."""
        names = [name for name in _pack_names(self.root, self._build) if name != own_name]
        if len(names) < MAX_PACKS:
            return
        sizes: dict[str, tuple[int, float]] = {}
        for name in names:
            with contextlib.suppress(OSError):
                status = (self.root / f"{name}.pack").stat()
                sizes[name] = (status.st_size, status.st_mtime)
        largest = max(sizes, key=lambda name: sizes[name][0], default=None)
        settled = time.time() - MERGE_AFTER_SECONDS
        for name, (_, written) in sorted(sizes.items()):
            if name == largest or written > settled:
                continue
            opened = self._open_pack(name)
            if opened is None:
                continue
            for key, offset, length in opened[1]:
                try:
                    record = _read_at(opened[0], length, offset)
                except OSError:
                    break
                if len(record) != length:
                    break
                self._append(own, key, record)
                if not self.writable:
                    return
            for suffix in (".keys", ".pack"):  # the index first: a pack without one is never read
                with contextlib.suppress(OSError):
                    (self.root / f"{name}{suffix}").unlink()

    def get_revision(self, key: str) -> bytes | None:
        path = self.revisions / key
        record = _read_record(str(path))
        if record is not None and self.writable:
            with contextlib.suppress(OSError):
                os.utime(path)  # used now: the last to be removed
        return record

    def put_revision(self, key: str, record: bytes) -> None:
        self._write(self.revisions / key, record)
        if not self.writable:
            return
        try:
            kept = sorted(
                (entry.stat().st_mtime_ns, entry.name)
                for entry in os.scandir(self.revisions)
                if entry.is_file() and not entry.name.startswith(".tmp-")  # another run's record being written
            )
            for _, name in kept[: max(0, len(kept) - MAX_REVISIONS)]:
                (self.revisions / name).unlink(missing_ok=True)
        except OSError:
            pass  # another run removed it first, or the folder went away: only a cache

    def _write(self, path: Path, record: bytes) -> None:
        if not self.writable:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(handle, "wb") as stream:
                    stream.write(record)
                Path(temporary).replace(path)  # readers never see half a record
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError:
            self.writable = False  # a read-only or full disk: run on without the cache
            return
        self._prune_once()

    def _prune_once(self) -> None:
        if not self._pruned:
            self._pruned = True
            self._remove_older_formats()

    def _remove_older_formats(self) -> None:
        """Remove the record folders of older formats, which no run of this mxota reads again (after an
        upgrade a CI cache held 141 MB of them beside 149 MB in use). Only ``units-N`` and
        ``revisions-N`` with a smaller N go, on the first write of a run: a newer mxota sharing the
        folder keeps its records, and nothing else in the folder is touched.

        Deleting tens of thousands of files takes as long as writing them did (12 s for 25,834 records
        on this project's machine), so the check does not wait: each folder is renamed out of the way
        at once (``.trash-...``), and a forked process deletes it while the check goes on. Trash a run
        left behind (a process killed first) is deleted by the next run's first write."""
        current = {"units": RECORD_FORMAT, "revisions": REVISION_FORMAT}
        cache = self.root.parent
        trash: list[str] = []
        try:
            entries = list(os.scandir(cache))
        except OSError:
            return
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            found = _FORMAT_FOLDER.fullmatch(entry.name)
            if found is not None and int(found[2]) < current[found[1]]:
                moved = cache / f"{_TRASH}{entry.name}-{os.getpid()}"
                with contextlib.suppress(OSError):  # another run moved it first
                    Path(entry.path).rename(moved)
                    trash.append(str(moved))
            elif entry.name.startswith(_TRASH):
                trash.append(entry.path)
        if not trash:
            return
        if can_fork():
            self.pruning, receiver = fork_worker(_delete_in_background, trash)
            receiver.close()  # nothing is sent back
        else:
            _delete_folders(trash)


_TRASH = ".trash-"
"""Record folders of older formats, moved out of the way to be deleted (see ``_remove_older_formats``)."""


def _delete_folders(folders: list[str]) -> None:
    """Delete the folders, whatever fails."""
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def _delete_in_background(_sender: object, folders: list[str]) -> None:
    """In the forked process: let go of mxota's standard streams first, so that whoever reads them to
    the end (a pipe, ``subprocess.run(capture_output=True)``, a CI log) is not kept waiting for the
    deletion after mxota has exited (a piped check of a small app had taken 15 s so), then delete."""
    quiet = os.open(os.devnull, os.O_RDWR)
    for stream in (0, 1, 2):
        os.dup2(quiet, stream)
    os.close(quiet)
    _delete_folders(folders)


def _read_record(path: str, limit: int | None = None) -> bytes | None:
    """A record's bytes, or None when there is none: a missing file, or anything but a plain file within
    ``limit`` (default :data:`MAX_RECORD_BYTES`; a FIFO is not waited on)."""
    try:
        descriptor = os.open(path, _OPEN_RECORD)
    except OSError:
        return None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode) or status.st_size > (MAX_RECORD_BYTES if limit is None else limit):
            return None
        record = os.read(descriptor, status.st_size)
    except OSError:
        return None
    finally:
        os.close(descriptor)
    return record  # a short read is a damaged record: its checksum fails and it is a miss


def _raw_key(key: str) -> bytes:
    """The 32 bytes of a store key (64 hex digits, as ``store_key`` makes them); empty for any other."""
    if len(key) != 64:
        return b""
    try:
        return bytes.fromhex(key)
    except ValueError:
        return b""


def _pack_names(folder: Path, build: str | None = None) -> list[str]:
    """The packs in a folder (of one build's, when given), by the name of their index."""
    try:
        return sorted(
            entry.name[: -len(".keys")]
            for entry in os.scandir(folder)
            if entry.name.endswith(".keys")
            and not entry.name.startswith(".")
            and (build is None or entry.name.startswith(f"{build}-"))
        )
    except OSError:
        return []


def _valid_rows(rows: bytes, pack_size: int) -> list[tuple[bytes, int, int]]:
    """The rows of an index whose CRC holds and whose record lies inside the pack as it is now."""
    view = memoryview(rows)
    size = _ROW.size
    whole = len(rows) - len(rows) % size
    crc32 = zlib.crc32
    return [
        (key, offset, length)
        for start, (key, offset, length, crc) in zip(range(0, whole, size), _ROW.iter_unpack(view[:whole]), strict=True)
        if crc == crc32(view[start : start + size - 4]) and offset + length <= pack_size
    ]


def _read_at(descriptor: int, length: int, offset: int) -> bytes:
    """``length`` bytes of an open pack from ``offset`` (``pread`` where the system has it; Windows has
    not, and a run reads its packs from one thread)."""
    if hasattr(os, "pread"):
        return os.pread(descriptor, length, offset)
    os.lseek(descriptor, offset, os.SEEK_SET)
    return os.read(descriptor, length)


def _write_all(descriptor: int, data: bytes | memoryview) -> None:
    """Write all of ``data`` (``os.write`` may write less to a file only when interrupted or full)."""
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        if written <= 0:
            raise OSError("nothing written")
        view = view[written:]


def _close_all(descriptors: list[int]) -> None:
    for descriptor in descriptors:
        with contextlib.suppress(OSError):
            os.close(descriptor)
    descriptors.clear()
