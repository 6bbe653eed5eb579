"""Read-only views of an app's files, whatever holds them: a directory, a zip package or a git tree.

The model reader and the side-file reader see only this interface, so every source kind is read by
the same code. No view ever writes to what it reads.
"""

from __future__ import annotations

import errno
import io
import lzma
import os
import re
import stat
import struct
import subprocess
import threading
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from analyzer.errors import InputError
from analyzer.load.limits import Limits


class FileTree(Protocol):
    """The files of one app snapshot, by POSIX path relative to the app directory."""

    description: str

    def paths(self) -> tuple[str, ...]:
        """Every regular file, sorted."""
        ...

    def size(self, path: str) -> int:
        """Size in bytes of one file."""
        ...

    def read(self, path: str) -> bytes:
        """The bytes of one file; an :class:`InputError` when it is missing or unreadable."""
        ...

    def read_many(self, paths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """The bytes of several files, in the order asked (lets git stream them in one process)."""
        ...

    def blob_id(self, path: str) -> str | None:
        """The git object id of a file when the tree knows it without reading the file, else None."""
        ...

    @property
    def stable(self) -> bool:
        """Whether a file's bytes are fixed once the tree is open (a git revision, an archive in memory).
        A folder's are not: bytes read from it are keyed by their own hash, never by a blob id it holds."""
        ...


def one_line(text: object) -> str:
    """A library's error text for a one-line message: every line break and run of whitespace -> one space."""
    return " ".join(str(text).split())


def _safe_relative(path: str) -> str | None:
    """Normalise an archive member name; ``None`` when it is absolute or climbs out with ``..``."""
    if not path or path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":"):
        return None
    parts = path.replace("\\", "/").split("/")  # as ``PurePosixPath.parts``, without making one per entry
    if ".." in parts:
        return None
    return "/".join(part for part in parts if part not in ("", "."))


_OPEN_NO_LINK = (
    os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    if hasattr(os, "O_NOFOLLOW") and hasattr(os, "O_NONBLOCK")
    else 0
)
"""How a unit file is opened where the platform can refuse a link and not wait on a FIFO (0: cannot)."""

_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")
"""Characters no app file name has, and that would break a one-line error message."""

_ZIP_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    ValueError,
    EOFError,
    NotImplementedError,
    RuntimeError,  # an encrypted member ("password required")
    zlib.error,
    lzma.LZMAError,
    struct.error,
    IndexError,
    KeyError,
)
"""What :mod:`zipfile` and its decompressors raise on a corrupt archive (none of it is a bug of ours)."""


class DirectoryTree:
    """An app directory on disk. Symbolic links that lead out of it are refused, not followed."""

    def __init__(self, root: Path, subtrees: tuple[str, ...] | None = None) -> None:
        self.root = root
        self.description = str(root)
        self._real_root = root.resolve()
        self._prefix = "" if str(root) == "." else str(root).rstrip("/") + "/"
        self._subtrees = subtrees
        self._paths: tuple[str, ...] | None = None
        self._sizes: dict[str, int] = {}
        self._blobs: dict[str, str] = {}
        self._folders_inside: dict[str, bool] = {"": True}

    @property
    def stable(self) -> bool:
        return False

    def adopt_digests(self, digests: Mapping[str, tuple[int, str]]) -> None:
        """Take sizes and blob ids read ahead (:mod:`analyzer.load.ahead`): the files are not stat-ed
        before reading, and units a memo knows by those ids are not read at all."""
        for path, (size, blob) in digests.items():
            self._sizes[path] = size
            self._blobs[path] = blob

    def _inside(self, path: Path) -> bool:
        try:
            path.resolve().relative_to(self._real_root)
        except (ValueError, OSError):
            return False
        return True

    def paths(self) -> tuple[str, ...]:
        if self._paths is None:
            found: list[str] = []
            tops = self._subtrees if self._subtrees is not None else ("",)
            for top in tops:
                base = self.root / top if top else self.root
                if not base.is_dir():
                    continue
                if top and not self._folder_inside(top):
                    raise InputError(str(base), "symbolic link points outside the app directory")
                for dirpath, dirnames, filenames in os.walk(base, onerror=self._walk_error):
                    dirnames.sort()
                    here = Path(dirpath)
                    for name in sorted(filenames):
                        full = here / name
                        try:
                            st = full.lstat()
                        except OSError as exc:
                            raise InputError(str(full), f"cannot read: {exc.strerror}") from None
                        if stat.S_ISLNK(st.st_mode):
                            if not self._inside(full):
                                raise InputError(str(full), "symbolic link points outside the app directory")
                            st = full.stat()
                        if not stat.S_ISREG(st.st_mode):
                            continue
                        rel = full.relative_to(self.root).as_posix()
                        self._sizes[rel] = st.st_size
                        found.append(rel)
            self._paths = tuple(sorted(found))
        return self._paths

    @staticmethod
    def _walk_error(exc: OSError) -> None:
        raise InputError(str(exc.filename), f"cannot read directory: {exc.strerror}")

    def size(self, path: str) -> int:
        if path not in self._sizes:
            self._sizes[path] = self._stat(path).st_size
        return self._sizes[path]

    def _folder_inside(self, folder: str) -> bool:
        """Whether a folder of the app (``mprcontents/53/6b``) resolves inside it; one check per folder.

        A folder inside a folder that is inside stays inside unless it is itself a link, so only
        links are resolved: one ``lstat`` per folder instead of a path resolution per file.
        """
        known = self._folders_inside.get(folder)
        if known is None:
            parent = folder.rpartition("/")[0]
            if not self._folder_inside(parent):
                known = False
            else:
                try:
                    is_link = stat.S_ISLNK(os.lstat(f"{self._prefix}{folder}").st_mode)
                except OSError:
                    is_link = False  # a missing folder holds nothing to read: the read says so
                known = self._inside(self.root / folder) if is_link else True
            self._folders_inside[folder] = known
        return known

    # Unit files are read by the tens of thousands: plain strings and ``os`` calls, not ``Path``
    # objects, whose construction cost more than the reads.
    def _stat(self, path: str) -> os.stat_result:
        full = f"{self._prefix}{path}"
        try:
            st = os.lstat(full)
            # a link in the file's own name or in a folder above it must stay inside the app
            if stat.S_ISLNK(st.st_mode) or not self._folder_inside(path.rpartition("/")[0]):
                if not self._inside(Path(full)):
                    raise InputError(full, "symbolic link points outside the app directory")
                st = os.stat(full)  # noqa: PTH116
        except FileNotFoundError:
            raise InputError(full, "file is missing") from None
        except OSError as exc:
            raise InputError(full, f"cannot read: {exc.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            raise InputError(full, "is not a regular file")
        return st

    def read(self, path: str) -> bytes:
        full = f"{self._prefix}{path}"
        if _OPEN_NO_LINK and self._folder_inside(path.rpartition("/")[0]):
            # One open that refuses a link in the file's own name and never waits on a FIFO, then the
            # open file's own stat: no separate lstat per file (tens of thousands of unit files).
            try:
                descriptor = os.open(full, _OPEN_NO_LINK)
            except FileNotFoundError:
                raise InputError(full, "file is missing") from None
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise InputError(full, f"cannot read: {exc.strerror}") from None
            else:
                with open(descriptor, "rb") as handle:  # noqa: PTH123 - closes the descriptor
                    try:
                        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                            raise InputError(full, "is not a regular file")
                        return handle.read()
                    except OSError as exc:
                        raise InputError(full, f"cannot read: {exc.strerror}") from None
        self._stat(path)  # a link (resolved and checked), or a folder that is one
        try:
            with open(full, "rb") as handle:  # noqa: PTH123
                return handle.read()
        except OSError as exc:
            raise InputError(full, f"cannot read: {exc.strerror}") from None

    def read_many(self, paths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        for path in paths:
            yield path, self.read(path)

    def blob_id(self, path: str) -> str | None:
        return self._blobs.get(path)


@dataclass(frozen=True, slots=True)
class _ZipMember:
    info: zipfile.ZipInfo


class ZipTree:
    """A zip archive held in memory, read with limits on size, count, ratio and member paths."""

    def __init__(self, data: bytes, description: str, limits: Limits, prefix: str = "") -> None:
        self.description = description
        self._limits = limits
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self._zip.infolist()
        except _ZIP_ERRORS as exc:
            raise InputError(description, f"not a readable zip archive ({one_line(exc)})") from None
        if len(infos) > limits.max_archive_entries:
            raise InputError(
                description,
                f"archive has {len(infos)} entries, over the limit of {limits.max_archive_entries} "
                "(raise with --limit max_archive_entries=N)",
            )
        members: dict[str, _ZipMember] = {}
        total = 0
        for info in infos:
            if _CONTROL.search(info.filename):
                raise InputError(description, f"archive entry {info.filename!r} has a control character in its name")
            name = _safe_relative(info.filename)
            if name is None:
                raise InputError(description, f"archive entry {info.filename!r} has an absolute or '..' path")
            mode = (info.external_attr >> 16) & 0xFFFF
            if stat.S_ISLNK(mode):
                raise InputError(description, f"archive entry {info.filename!r} is a symbolic link")
            if info.is_dir():
                continue
            total += info.file_size
            if total > limits.max_archive_bytes:
                raise InputError(
                    description,
                    f"archive expands to more than {limits.max_archive_bytes} bytes "
                    "(raise with --limit max_archive_bytes=N)",
                )
            compressed = max(info.compress_size, 1)
            if info.file_size > 1024 * 1024 and info.file_size / compressed > limits.max_archive_ratio:
                raise InputError(
                    description,
                    f"archive entry {info.filename!r} expands {info.file_size // compressed}x, "
                    f"over the ratio limit of {limits.max_archive_ratio} (a zip bomb?; "
                    "raise with --limit max_archive_ratio=N)",
                )
            if prefix:
                if not name.startswith(prefix + "/"):
                    continue
                name = name[len(prefix) + 1 :]
            members[name] = _ZipMember(info)
        self._members = members

    @staticmethod
    def top_level_names(data: bytes, description: str) -> list[str]:
        """Names of an archive's entries, for finding the app directory inside it."""
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return archive.namelist()
        except _ZIP_ERRORS as exc:
            raise InputError(description, f"not a readable zip archive ({one_line(exc)})") from None

    def paths(self) -> tuple[str, ...]:
        return tuple(sorted(self._members))

    def size(self, path: str) -> int:
        return self._member(path).info.file_size

    def fingerprint(self, path: str) -> str:
        """Size and CRC-32 of a member from the archive directory, without inflating it."""
        info = self._member(path).info
        return f"{info.file_size}:{info.CRC:08x}"

    def _member(self, path: str) -> _ZipMember:
        member = self._members.get(path)
        if member is None:
            raise InputError(f"{self.description}!{path}", "file is missing from the archive")
        return member

    def read(self, path: str) -> bytes:
        member = self._member(path)
        try:
            with self._zip.open(member.info) as handle:
                data = handle.read(member.info.file_size + 1)
        except _ZIP_ERRORS as exc:
            raise InputError(f"{self.description}!{path}", f"corrupt archive entry ({one_line(exc)})") from None
        if len(data) != member.info.file_size:
            raise InputError(f"{self.description}!{path}", "archive entry size does not match its header")
        return data

    def read_many(self, paths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        for path in paths:
            yield path, self.read(path)

    def blob_id(self, path: str) -> str | None:
        return None

    @property
    def stable(self) -> bool:
        return True



def run_git(args: list[str], cwd: Path, what: str) -> bytes:
    """Run a read-only git command; its failure is an input error naming ``what``."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, check=False, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        raise InputError(what, "git is not installed") from None
    if done.returncode != 0 and args[0] == "rev-parse" and "--quiet" in args and not done.stderr.strip():
        return b""  # ``rev-parse --verify --quiet`` answers "no such revision" with silence, not an error
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InputError(what, message[-1] if message else f"git {args[0]} failed")
    return done.stdout


class GitTree:
    """A tree of a git revision, read with ``git ls-tree`` and ``git cat-file`` (no checkout)."""

    def __init__(self, repo: Path, revision: str, subdir: str, description: str) -> None:
        self.description = description
        self._repo = repo
        prefix = subdir.strip("/")
        listing = run_git(
            ["ls-tree", "-r", "-z", "--long", "--full-tree", revision, "--", *( [prefix] if prefix else [])],
            repo,
            description,
        )
        self._blobs: dict[str, tuple[str, int]] = {}
        for record in listing.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            mode, kind, sha, size = meta.split()
            path = raw_path.decode("utf-8", "surrogateescape")
            if prefix:
                if not path.startswith(prefix + "/"):
                    continue
                path = path[len(prefix) + 1 :]
            if kind != b"blob" or mode == b"120000":
                continue
            self._blobs[path] = (sha.decode("ascii"), int(size))

    @classmethod
    def of_blobs(cls, repo: Path, blobs: dict[str, tuple[str, int]], description: str) -> GitTree:
        """A tree of only these files (path → blob id and size), as a revision record lists its units:
        nothing is listed, and each file is read by its blob id when asked for. The tree keeps ``blobs``
        (not a copy: 25,834 entries at scale); the caller hands it over."""
        tree = cls.__new__(cls)
        tree.description = description
        tree._repo = repo
        tree._blobs = blobs
        return tree

    def blob_id(self, path: str) -> str:
        """The git object id of a file: equal ids mean equal bytes, without reading them."""
        return self._entry(path)[0]

    @property
    def stable(self) -> bool:
        return True

    def paths(self) -> tuple[str, ...]:
        return tuple(sorted(self._blobs))

    def _entry(self, path: str) -> tuple[str, int]:
        entry = self._blobs.get(path)
        if entry is None:
            raise InputError(f"{self.description}:{path}", "file is missing from the revision")
        return entry

    def size(self, path: str) -> int:
        return self._entry(path)[1]

    def read(self, path: str) -> bytes:
        for _, data in self.read_many([path]):
            return data
        raise InputError(f"{self.description}:{path}", "file is missing from the revision")

    def read_many(self, paths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        wanted = list(paths)
        shas = [self._entry(path)[0] for path in wanted]
        if not wanted:
            return
        process = subprocess.Popen(
            ["git", "cat-file", "--batch"],
            cwd=self._repo,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert process.stdin is not None and process.stdout is not None
        stdin, stdout = process.stdin, process.stdout

        def feed() -> None:
            try:
                for sha in shas:
                    stdin.write(sha.encode("ascii") + b"\n")
                stdin.close()
            except (BrokenPipeError, OSError):
                pass

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        try:
            for path in wanted:
                header = stdout.readline().split()
                if len(header) != 3 or header[1] != b"blob":
                    raise InputError(f"{self.description}:{path}", "git could not read this file")
                size = int(header[2])
                data = stdout.read(size)
                stdout.read(1)
                if len(data) != size:
                    raise InputError(f"{self.description}:{path}", "git returned a truncated file")
                yield path, data
        finally:
            stdout.close()
            process.wait()
            writer.join()
