"""The ``--cache DIR`` directory: walked units kept on disk between runs (the CLI's side of the memo).

Each unit's outline (names, references, element ids and types) is stored under a key made of its
bytes' git blob id, its unit id and the reading code's version (``analyzer.load.memo.store_key``), in a
file that starts with the CRC-32 of its contents. A later run that meets the same bytes reads the file
instead of decoding and walking the unit: a pull-request gate whose base is the released revision then
decodes only what the branch changed. A cache is only ever a speed-up: a missing, unreadable or damaged
file is a miss, a cache that cannot be written is skipped, and the reports are the same with or without
one (the tests hold that).

The directory must be as trusted as mxota itself: whoever can write it can change what mxota sees.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

from analyzer.load.ahead import can_fork, fork_worker
from analyzer.load.memo import RECORD_FORMAT
from analyzer.load.revision import REVISION_FORMAT

MAX_RECORD_BYTES = 256 * 1024 * 1024
"""A record larger than this is not read (a damaged cache must not exhaust memory)."""

MAX_REVISIONS = 32
"""Revision records kept (one per git tree read, about 160 bytes a unit: 4 MB for 25,000 units); past
this the least recently used are removed, so a cache kept between CI runs does not grow by one for
every commit ever checked."""

_FORMAT_FOLDER = re.compile(r"(units|revisions)-([0-9]+)")
"""A folder of records of one format; those of formats older than this mxota's are removed."""

_OPEN_RECORD = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
"""A record is opened without waiting on whatever might sit at its name (a FIFO is a miss)."""


class DiskUnitStore:
    """Unit records in ``DIR/units-<format>/<2 hex>/<key>``, revision records in
    ``DIR/revisions-<format>/<key>``; written atomically, read defensively."""

    def __init__(self, root: Path) -> None:
        self.root = root / f"units-{RECORD_FORMAT}"
        self.revisions = root / f"revisions-{REVISION_FORMAT}"
        self._prefix = str(self.root) + os.sep
        self.writable = True
        self._pruned = False
        self.pruning: Any = None
        """The forked process deleting older formats' records, if one was started (tests wait for it)."""

    def get(self, key: str) -> bytes | None:
        # Plain ``os`` calls on a string path, and one ``read`` of the size the open file has: a warm run
        # reads tens of thousands of records, pathlib's parsing was a fifth of that, and a buffered
        # ``read(limit)`` set aside the whole limit for every record (2-5 s for 51,670 records, 0.5 s so).
        return _read_record(f"{self._prefix}{key[:2]}{os.sep}{key}")

    def put(self, key: str, record: bytes) -> None:
        self._write(self.root / key[:2] / key, record)

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


def _read_record(path: str) -> bytes | None:
    """A record's bytes, or None when there is none: a missing file, or anything but a plain file within
    :data:`MAX_RECORD_BYTES` (a FIFO is not waited on)."""
    try:
        descriptor = os.open(path, _OPEN_RECORD)
    except OSError:
        return None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode) or status.st_size > MAX_RECORD_BYTES:
            return None
        record = os.read(descriptor, status.st_size)
    except OSError:
        return None
    finally:
        os.close(descriptor)
    return record  # a short read is a damaged record: its checksum fails and it is a miss
