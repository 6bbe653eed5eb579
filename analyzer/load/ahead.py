"""Hash an app folder's unit files in a forked process while this one does one-core work.

A check loads HEAD first, then BASE, and prepares HEAD (index, graph, native facts) in between, one
core's work while the other idles. When BASE is an app folder, its load must read and hash every unit
file to learn which units equal HEAD's: at scale, 25,834 files and 2.5 s, all in this process. So
:func:`start_digests` forks a process that reads and hashes them (the git blob id of each file's bytes,
and its size) while HEAD is prepared, and the BASE load takes those ids as a git tree gives its blob
ids: a unit the memo knows by them is not read at all. The same worker hashes a folder HEAD while a
``git:`` BASE is read from a cache (``analyzer.pipeline``), and half of a large folder while this
process hashes the other half (``analyzer.load.mpr``).

What the worker saw is only a hint, never a reason to pass: it reads through the same
:class:`~analyzer.load.files.DirectoryTree` checks (links out of the app, FIFOs, size limits) and skips
whatever it cannot read, which the load then reads and refuses itself. Bytes the load reads are keyed
by their own hash, and a unit built from its file later is refused when the file no longer has the
hash the worker saw (the folder changed while the check ran).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from analyzer.errors import InputError
from analyzer.load.files import DirectoryTree
from analyzer.load.limits import Limits
from analyzer.load.memo import git_blob_id

UNIT_FOLDER = "mprcontents"


def can_fork() -> bool:
    """A second core, and ``fork`` (Linux: the worker inherits the tree and the limits it needs)."""
    return sys.platform == "linux" and (os.cpu_count() or 1) > 1


def fork_worker(work: Callable[..., None], *args: object) -> tuple[Any, Any]:
    """Run ``work(sender, *args)`` in a forked process; its process and the receiving end of its pipe.

    The worker inherits what this process has read (no pickling of trees, rows or limits) and sends
    its results through ``sender``; however ``work`` ends, the worker leaves at once: no interpreter
    shutdown, no flushing of streams whose locks another thread of the parent (the progress bar's)
    may have held at the fork.
    """
    import multiprocessing  # here: a check that forks no worker does without it (7 ms to import)

    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_leave_after, args=(work, sender, *args), daemon=True)
    process.start()
    sender.close()
    return process, receiver


def _leave_after(work: Callable[..., None], sender: Any, *args: object) -> None:
    try:
        work(sender, *args)
    finally:
        sender.close()
        os._exit(0)


class UnitDigests:
    """Size and git blob id of each unit file of one app folder, being computed in a forked worker."""

    def __init__(self, root: Path, process: Any, receiver: Any, hold: int | None = None) -> None:
        self.root = root
        """The app folder, as the load's :class:`DirectoryTree` names it (the digests are for no other)."""
        self._process = process
        self._receiver = receiver
        self._hold = hold
        """The writing end of the pipe a held worker waits on (:meth:`release`); None once it runs."""
        self._taken: dict[str, tuple[int, str]] | None = None

    def release(self) -> None:
        """Let a worker started held begin hashing (nothing for one that already runs)."""
        if self._hold is not None:
            with contextlib.suppress(OSError):
                os.write(self._hold, b"g")
            self._let_go()

    def _let_go(self) -> None:
        if self._hold is not None:
            with contextlib.suppress(OSError):
                os.close(self._hold)  # a worker still held reads the end of the pipe and leaves
            self._hold = None

    def take(self) -> Mapping[str, tuple[int, str]]:
        """Path → (size, blob id) of every unit file the worker could read; waits for it to finish.

        A worker that died or sent something else gives no digests: the load then reads every file.
        """
        if self._taken is None:
            found: Any = None
            with contextlib.suppress(EOFError, OSError):
                found = self._receiver.recv()
            self._taken = {
                path: (size, blob)
                for path, (size, blob) in (found.items() if isinstance(found, dict) else ())
                if isinstance(path, str) and isinstance(size, int) and isinstance(blob, str) and len(blob) == 40
            }
            self.close()
        return self._taken

    def close(self) -> None:
        """Stop the worker if it still runs (the check failed first) and release the pipe."""
        self._let_go()
        if self._process.is_alive() and self._taken is None:
            self._process.terminate()
        self._process.join()
        self._receiver.close()


def start_digests(
    root: Path, limits: Limits, paths: list[str] | None = None, *, held: bool = False
) -> UnitDigests | None:
    """Start hashing the unit files under ``root/mprcontents`` (``paths``: these files of ``root``
    only); None where that cannot help (no unit folder, one core, no ``fork``).

    ``held``: the worker waits for :meth:`UnitDigests.release` before it reads a file. A check forks it
    before HEAD's load, while this process is small, and lets it go after: forked after the load, the
    worker shares every page of HEAD's model, and each page the parent then touches (an object's
    reference count is a write) is copied first: HEAD's index at scale took 0.45 s instead of 0.23 s.
    """
    if not can_fork() or not (root / UNIT_FOLDER).is_dir():
        return None
    wait, hold = os.pipe() if held else (None, None)
    try:
        process, receiver = fork_worker(_digest, root, limits, paths, wait, hold)
    finally:
        if wait is not None:
            os.close(wait)  # the worker's own copy is the one it waits on
    return UnitDigests(root, process, receiver, hold)


def _digest(sender: Any, root: Path, limits: Limits, paths: list[str] | None, wait: int | None,
            hold: int | None) -> None:
    """In the forked worker: wait to be let go if held, then read and hash every unit file it may, and
    send the digests in one message."""
    if wait is not None and hold is not None:
        os.close(hold)  # only the parent's copy may keep the pipe open
        if os.read(wait, 1) != b"g":
            return  # the parent closed it without letting go: the check ended first
    with contextlib.suppress(BaseException):  # the parent then reads every file itself
        sender.send(unit_digests(root, limits, paths))


def unit_digests(root: Path, limits: Limits, paths: list[str] | None = None) -> dict[str, tuple[int, str]]:
    """Path → (size, git blob id) of the unit files under ``root/mprcontents`` (or of ``paths``) that
    read cleanly, in order; files over the size limits are left to the load, which refuses them."""
    tree = DirectoryTree(root)
    names: list[str] = list(paths) if paths is not None else []
    for folder, subfolders, files in os.walk(root / UNIT_FOLDER) if paths is None else ():
        subfolders.sort()
        inside = Path(folder).relative_to(root).as_posix()
        names.extend(f"{inside}/{name}" for name in sorted(files))
    found: dict[str, tuple[int, str]] = {}
    total = 0
    for path in names:
        try:
            size = tree.size(path)
            if size > limits.max_unit_bytes or total + size > limits.max_model_bytes:
                continue
            data = tree.read(path)
        except InputError:
            continue
        total += len(data)
        found[path] = (len(data), git_blob_id(data))
    return found
