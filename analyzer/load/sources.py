"""One entry point from a source string to a :class:`Snapshot`, whatever the source is.

``load_source`` accepts an app directory, a ``.mpr`` file, a ``.mpk`` app package, ``git:REV[:SUBDIR]``
and an exported XML snapshot. This is the only module (with its helpers in ``analyzer.load``) that reads
input files; nothing here writes to an input.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from analyzer.errors import InputError
from analyzer.load.ahead import UnitDigests, start_digests
from analyzer.load.files import DirectoryTree, FileTree, GitTree, ZipTree, run_git
from analyzer.load.limits import DEFAULT_LIMITS, Limits
from analyzer.load.memo import Progress, ReadMemo
from analyzer.load.mpr import (
    SQLITE_HEADER,
    build_units_and_elements,
    check_mpr_header,
    read_tables,
    units_from_revision,
)
from analyzer.load.native import read_native
from analyzer.load.native_settings import native_settings
from analyzer.load.revision import RevisionModel, decode_revision, encode_revision, revision_key
from analyzer.model.native import NativeSetting
from analyzer.model.snapshot import SideFile, Snapshot, SourceInfo, SourceKind

SIDE_FILE_ROOTS = ("theme", "themesource", "javascriptsource", "widgets", "nativemobile", "resources")
"""Folders beside the model whose files can reach a native app (DESIGN.md section 2)."""

IGNORED_SIDE_PREFIXES = ("nativemobile/builds/",)
"""Build output the Native Mobile Builder writes; git-ignored by Mendix and never part of a release."""

ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"


@dataclass(frozen=True, slots=True)
class _Reading:
    """How to read: the limits, the run's memo of what was read already, and whom to tell progress."""

    limits: Limits
    memo: ReadMemo | None
    progress: Progress | None
    ahead: UnitDigests | None = None
    walked: Callable[[], None] | None = None


def load_source(
    spec: str,
    *,
    cwd: Path | None = None,
    limits: Limits = DEFAULT_LIMITS,
    native_template: str | None = None,
    memo: ReadMemo | None = None,
    progress: Progress | None = None,
    ahead: UnitDigests | None = None,
    walked: Callable[[], None] | None = None,
) -> Snapshot:
    """Read one snapshot of an app from the source the user named.

    ``native_template`` names a Native Template folder for apps that do not keep theirs inside the app
    directory (``resources/native_template/`` is found without it). Loads that share a ``memo`` reuse
    each other's decoded units and widget packages where the bytes are equal (see :mod:`memo`);
    ``progress`` is told how the unit reading goes; ``ahead``: the unit files' digests being computed
    by :func:`read_ahead` for this source; ``walked``: told once the units are walked, when what is
    left of the load (side files, widget packages, native settings) takes one core.
    """
    base = cwd if cwd is not None else Path.cwd()
    snapshot = _load(spec, base, _Reading(limits, memo, progress, ahead, walked))
    if native_template is None or snapshot.source.kind is SourceKind.XML_SNAPSHOT:
        return snapshot
    template = Path(native_template)
    if not template.is_absolute():
        template = base / template
    if not template.is_dir():
        raise InputError(native_template, "native template folder does not exist")
    facts = read_native(DirectoryTree(template), limits, template_dir=str(template))
    extra = tuple(s for s in native_settings(facts) if s.kind == "template")
    merged = {(s.kind, s.key): s for s in (*snapshot.native, *extra)}
    return dataclasses.replace(snapshot, native=tuple(sorted(merged.values())))


def read_ahead(
    spec: str, *, cwd: Path | None = None, limits: Limits = DEFAULT_LIMITS, held: bool = False
) -> UnitDigests | None:
    """Start hashing the unit files of an app folder (or of the folder around a ``.mpr``) in a worker,
    for a later :func:`load_source` of the same source to take (see :mod:`analyzer.load.ahead`); None
    for any other source, and wherever it cannot help. The caller closes what it gets (``held``: the
    worker waits for :meth:`UnitDigests.release`)."""
    if spec.startswith("git:"):
        return None  # a git tree names each file's blob id without reading it
    path = (cwd if cwd is not None else Path.cwd()) / spec
    try:
        if path.is_dir():
            return start_digests(path, limits, held=held)
        if path.suffix.lower() == ".mpr" and path.is_file():
            return start_digests(path.parent, limits, held=held)
    except OSError:
        return None  # the load itself says what is wrong
    return None


def _load(spec: str, base: Path, reading: _Reading) -> Snapshot:
    limits = reading.limits
    if spec.startswith("git:"):
        return _load_git(spec, base, reading)
    path = base / spec
    try:
        if not path.exists() and not path.is_symlink():
            raise InputError(spec, "no such file or directory")
        if path.is_dir():
            return _load_directory(path, spec, reading)
        if not path.is_file():
            raise InputError(spec, "is not a regular file (a pipe, socket or device is never read)")
        with path.open("rb") as handle:
            head = handle.read(64)
    except PermissionError:
        raise InputError(spec, "permission denied") from None
    except OSError as exc:
        raise InputError(spec, f"cannot read: {exc.strerror}") from None
    if head.startswith(SQLITE_HEADER) or path.suffix.lower() == ".mpr":
        check_mpr_header(head, spec)
        tree = DirectoryTree(path.parent, SIDE_FILE_ROOTS)
        source = SourceInfo(kind=SourceKind.MPR_FILE, location=spec, repository_path=_repository_path(path.parent))
        return _load_tree(tree, path.name, path, source, reading)
    if head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)) or path.suffix.lower() == ".mpk":
        return _load_package(path, spec, reading)
    if path.suffix.lower() == ".xml" or head.lstrip().startswith(b"<"):
        from analyzer.load import xml_snapshot  # here: most checks read no XML snapshot (7 ms to import)

        return xml_snapshot.read_snapshot_file(path, spec, limits)
    raise InputError(spec, "is not an app directory, .mpr, .mpk, git: revision or XML snapshot")


def _repository_path(folder: Path) -> str | None:
    """The app folder's path from the top of the git work tree around it (``""`` at the top), or None
    when it is in none: the nearest folder above it that holds ``.git`` (a folder, or a file in a
    linked work tree or submodule)."""
    try:
        real = folder.resolve()
        for top in (real, *real.parents):
            if (top / ".git").exists():
                inside = real.relative_to(top).as_posix()
                return "" if inside == "." else inside
    except (OSError, ValueError):
        return None
    return None


def _choose_mpr(names: list[str], location: str) -> str:
    mprs = sorted(name for name in names if name.lower().endswith(".mpr") and "/" not in name)
    if not mprs:
        raise InputError(location, "no .mpr file at the top of the app directory")
    if len(mprs) > 1:
        raise InputError(location, f"more than one .mpr file ({', '.join(mprs)}); name the one to read")
    return mprs[0]


def _load_directory(path: Path, spec: str, reading: _Reading) -> Snapshot:
    try:
        names = [child.name for child in path.iterdir() if child.is_file()]
    except PermissionError:
        raise InputError(spec, "permission denied") from None
    except OSError as exc:
        raise InputError(spec, f"cannot read directory: {exc.strerror}") from None
    mpr = _choose_mpr(names, spec)
    mpr_file = path / mpr
    if mpr_file.is_symlink():
        try:
            mpr_file.resolve().relative_to(path.resolve())
        except (ValueError, OSError):
            raise InputError(f"{spec}/{mpr}", "symbolic link points outside the app directory") from None
    tree = DirectoryTree(path, SIDE_FILE_ROOTS)
    source = SourceInfo(kind=SourceKind.APP_DIRECTORY, location=spec, repository_path=_repository_path(path))
    return _load_tree(tree, mpr, mpr_file, source, reading)


def _load_package(path: Path, spec: str, reading: _Reading) -> Snapshot:
    limits = reading.limits
    try:
        size = path.stat().st_size
        if size > limits.max_archive_bytes:
            raise InputError(spec, "app package is over the size limit (raise with --limit max_archive_bytes=N)")
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(spec, f"cannot read: {exc.strerror}") from None
    names = ZipTree.top_level_names(data, spec)
    top = sorted({n.split("/", 1)[0] for n in names if "/" in n and n.lower().endswith(".mpr") and n.count("/") == 1})
    root_mprs = [n for n in names if "/" not in n and n.lower().endswith(".mpr")]
    prefix = top[0] if not root_mprs and len(top) == 1 else ""
    tree = ZipTree(data, spec, limits, prefix=prefix)
    mpr = _choose_mpr(list(tree.paths()), spec)
    return _load_via_copy(tree, mpr, SourceInfo(kind=SourceKind.APP_PACKAGE, location=spec), reading)


def _load_git(spec: str, cwd: Path, reading: _Reading) -> Snapshot:
    body = spec[len("git:") :]
    revision, _, subdir = body.partition(":")
    if not revision:
        raise InputError(spec, "names no revision (use git:REV or git:REV:SUBDIR)")
    top = run_git(["rev-parse", "--show-toplevel"], cwd, spec).decode("utf-8", "surrogateescape").strip()
    repo = Path(top)
    if not subdir:
        prefix = run_git(["rev-parse", "--show-prefix"], cwd, spec).decode("utf-8", "surrogateescape").strip()
        subdir = prefix.rstrip("/")
    resolved = run_git(["rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], repo, spec).strip()
    if not resolved:
        raise InputError(spec, f"git revision {revision!r} does not exist")
    commit = resolved.decode("ascii")
    source = SourceInfo(kind=SourceKind.GIT_REVISION, location=spec, repository_path=subdir.strip("/"))
    key = _revision_key(repo, commit, subdir, spec, reading)
    if key is not None:
        source = dataclasses.replace(source, content_key=key)
        known = _known_revision(key, repo, source, reading)
        if known is not None:
            return known
    tree = GitTree(repo, commit, subdir, spec)
    mpr = _choose_mpr(list(tree.paths()), spec)
    return _load_via_copy(tree, mpr, source, reading, key)


def _revision_key(repo: Path, commit: str, subdir: str, spec: str, reading: _Reading) -> str | None:
    """The store key of the revision's app tree (``analyzer.load.revision``); None without a store."""
    if reading.memo is None or reading.memo.store is None:
        return None
    inside = subdir.strip("/")
    name = f"{commit}:{inside}" if inside else f"{commit}^{{tree}}"
    tree_id = run_git(["rev-parse", "--verify", "--quiet", name], repo, spec).strip()
    return revision_key(tree_id.decode("ascii"), reading.limits) if tree_id else None


def _known_revision(key: str, repo: Path, source: SourceInfo, reading: _Reading) -> Snapshot | None:
    """The snapshot of a tree read before, from its revision record and its units' records; None when
    the store lacks any of them (the tree is then read as usual)."""
    memo = reading.memo
    assert memo is not None and memo.store is not None
    record = memo.store.get_revision(key)
    if record is None:
        return None
    try:
        revision = decode_revision(record, memo.revision_rows)
    except ValueError:
        return None  # a damaged record is a miss: the tree is read and the record written again
    for side, blob in zip(revision.files, revision.file_blobs, strict=False):
        if blob:
            memo.file_digests.setdefault(blob, (side.size, side.sha256))
    blobs = {kept.unit.path: (kept.blob, kept.size) for kept in revision.units}
    tree = GitTree.of_blobs(repo, blobs, source.location)
    walked = units_from_revision(revision.units, tree, source.location, reading.limits, memo, reading.progress)
    if walked is None:
        return None
    return Snapshot(
        meta=revision.meta,
        units=walked.units,
        elements=walked.elements,
        files=revision.files,
        native=revision.native,
        source=source,
    )


def _load_via_copy(
    tree: FileTree, mpr: str, source: SourceInfo, reading: _Reading, revision: str | None = None
) -> Snapshot:
    """SQLite needs a file: copy the ``.mpr`` bytes to a private temporary file and read that."""
    data = tree.read(mpr)
    check_mpr_header(data[: len(SQLITE_HEADER)], f"{source.location}:{mpr}")
    with tempfile.TemporaryDirectory(prefix="mxota-") as scratch:
        copy = Path(scratch) / Path(mpr).name
        copy.write_bytes(data)
        return _load_tree(tree, mpr, copy, source, reading, revision)


def _load_tree(
    tree: FileTree, mpr: str, mpr_file: Path, source: SourceInfo, reading: _Reading, revision: str | None = None
) -> Snapshot:
    """Read a model from its tree (``revision``: the store key to keep a ``git:`` tree's record under)."""
    limits = reading.limits
    if source.kind is SourceKind.MPR_FILE:
        location, mpr_location = str(Path(source.location).parent), source.location
    else:
        location, mpr_location = source.location, f"{source.location}/{mpr}"
    tables = read_tables(mpr_file, mpr_location, limits)
    beside: tuple[tuple[SideFile, ...], tuple[NativeSetting, ...]] | None = None
    if reading.ahead is not None and isinstance(tree, DirectoryTree) and reading.ahead.root == tree.root:
        # The worker may still be hashing the unit files: read what needs none of them first (a folder
        # BASE at scale waited 0.35-0.4 s for it, its side files and widget packages 0.15-0.2 s).
        beside = _beside(tree, reading)
        tree.adopt_digests(reading.ahead.take())
    walked = build_units_and_elements(tables, tree, mpr, location, limits, reading.memo, reading.progress)
    if reading.walked is not None:
        reading.walked()
    files, native = beside if beside is not None else _beside(tree, reading)
    snapshot = Snapshot(
        meta=tables.meta, units=walked.units, elements=walked.elements, files=files, native=native, source=source
    )
    store = reading.memo.store if reading.memo is not None else None
    if revision is not None and store is not None and walked.revision is not None:
        blobs = tuple(tree.blob_id(side.path) or "" for side in snapshot.files)
        kept = RevisionModel(snapshot.meta, walked.revision, snapshot.files, snapshot.native, blobs)
        store.put_revision(revision, encode_revision(kept))
    return snapshot


def _beside(tree: FileTree, reading: _Reading) -> tuple[tuple[SideFile, ...], tuple[NativeSetting, ...]]:
    """What a model's tree holds beside its units: side files, and the native half as settings."""
    return side_files(tree, reading.memo), native_settings(read_native(tree, reading.limits, memo=reading.memo))


def side_files(tree: FileTree, memo: ReadMemo | None = None) -> tuple[SideFile, ...]:
    """Path, size and SHA-256 of every file beside the model that can reach the app.

    A git blob the memo has hashed before is not read again.
    """
    wanted = [
        path
        for path in tree.paths()
        if path.split("/", 1)[0] in SIDE_FILE_ROOTS and "/" in path and not path.startswith(IGNORED_SIDE_PREFIXES)
    ]
    known: dict[str, tuple[int, str]] = {}
    if memo is not None:
        for path in wanted:
            blob = tree.blob_id(path)
            digest = memo.file_digests.get(blob) if blob is not None else None
            if digest is not None:
                known[path] = digest
    for path, data in tree.read_many(path for path in wanted if path not in known):
        known[path] = (len(data), hashlib.sha256(data).hexdigest())
        blob = tree.blob_id(path) if memo is not None else None
        if memo is not None and blob is not None:
            memo.file_digests[blob] = known[path]
    return tuple(SideFile(path=path, size=known[path][0], sha256=known[path][1]) for path in wanted)
