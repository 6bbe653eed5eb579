"""Helpers for the hostile-input tests: copies of the example apps, byte builders for broken inputs,
a CLI runner that separates stderr, and a fingerprint that proves an input was left untouched."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import sqlite3
import stat
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from analyzer.cli import app
from analyzer.errors import InputError
from analyzer.load.files import ZipTree
from analyzer.load.limits import Limits
from analyzer.load.mpr import decode_unit
from analyzer.load.units import UnitOutliner, UnitReader
from analyzer.load.xml_snapshot import parse_snapshot, render_snapshot
from analyzer.model.snapshot import ElementSequence, ModelElement, Snapshot, UnitOutline, outline_of
from tests.compiled import pure_units

REPO = Path(__file__).resolve().parents[1]
APPS = REPO / "fixtures" / "apps"
APP_V2 = APPS / "field-service-1.0"
APP_V1 = APPS / "field-service-1.0-v1"
APP_V2_NEXT = APPS / "field-service-1.1"
MPR_NAME = "FieldService.mpr"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


# ---------------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Run:
    """What one mxota run left behind."""

    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stderr.splitlines()


def run_cli(args: Sequence[str], env: Mapping[str, str] | None = None) -> Run:
    """Run ``mxota ARGS`` in-process with stderr kept apart; stray ``MXOTA_*`` variables are removed."""
    clean: dict[str, str | None] = {k: None for k in os.environ if k.startswith("MXOTA_")}
    clean.update(env or {})
    result = CliRunner().invoke(app, list(args), env=clean, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(
            f"mxota {' '.join(args)} raised {type(result.exception).__name__}: {result.exception}"
        ) from result.exception
    return Run(code=result.exit_code, stdout=result.stdout, stderr=result.stderr)


def run_subprocess(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    prefix: Sequence[str] = (),
    timeout: float = 120,
) -> Run:
    """Run ``python -m analyzer ARGS`` in a child process, behind ``prefix`` (e.g. a privilege drop)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MXOTA_")}
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    done = subprocess.run(
        [*prefix, sys.executable, "-m", "analyzer", *args],
        cwd=cwd or REPO,
        env=full_env,
        capture_output=True,
        check=False,
        timeout=timeout,
    )
    return Run(
        code=done.returncode,
        stdout=done.stdout.decode("utf-8", "replace"),
        stderr=done.stderr.decode("utf-8", "replace"),
    )


def assert_refused(run: Run, *names: str, code: int = 3, problem: str | None = None, scrub: Path | None = None) -> str:
    """Exit ``code``, exactly one stderr line ``mxota: error: ...`` naming every one of ``names``.

    ``problem`` must be in the line once ``scrub`` (the test's temporary folder) is taken out of it,
    so a temporary folder named after the case cannot satisfy it.
    """
    assert "Traceback" not in run.stderr and "Traceback" not in run.stdout, run.stderr
    assert run.code == code, f"exit {run.code}, not {code}; stderr: {run.stderr!r}; stdout: {run.stdout!r}"
    assert len(run.lines) == 1, f"expected one stderr line, got {run.lines!r}"
    line = run.lines[0]
    assert line.startswith("mxota: error: "), line
    assert "internal error" not in line, line
    for name in names:
        assert name in line, f"{name!r} not named in {line!r}"
    if problem is not None:
        text = line.replace(str(scrub), "<tmp>") if scrub is not None else line
        assert problem.lower() in text.lower(), f"{problem!r} not in {text!r}"
    return line


# ------------------------------------------------------------------------------------ fingerprints


def fingerprint(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path under ``root`` (itself included) with its kind, bytes hash, size, mode and mtime.

    Symbolic links are recorded, not followed, so a link out of the tree is not walked.
    """
    found: dict[str, tuple[object, ...]] = {}

    def record(path: Path) -> None:
        rel = path.relative_to(root).as_posix() if path != root else "."
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            found[rel] = ("link", str(path.readlink()), st.st_mtime_ns)
        elif stat.S_ISREG(st.st_mode):
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if st.st_mode & 0o444 else "unreadable"
            found[rel] = ("file", digest, st.st_size, stat.S_IMODE(st.st_mode), st.st_mtime_ns)
        elif stat.S_ISDIR(st.st_mode):
            found[rel] = ("dir", stat.S_IMODE(st.st_mode), st.st_mtime_ns)
        else:
            found[rel] = ("other", stat.S_IFMT(st.st_mode), st.st_mtime_ns)

    if not root.exists() and not root.is_symlink():
        return found
    record(root)
    if root.is_dir() and not root.is_symlink():
        for dirpath, dirnames, filenames in os.walk(root):
            for name in sorted(dirnames + filenames):
                record(Path(dirpath) / name)
    return found


def assert_unchanged(before: Mapping[str, tuple[object, ...]], root: Path) -> None:
    after = fingerprint(root)
    created = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(path for path in set(before) & set(after) if before[path] != after[path])
    assert not (created or removed or changed), f"created {created}, removed {removed}, changed {changed}"


# ------------------------------------------------------------------------------------- app copies


def copy_app(source: Path, target: Path) -> Path:
    """A private copy of an example app (symlinks kept as links)."""
    shutil.copytree(source, target, symlinks=True)
    return target


def unit_files(app_dir: Path) -> list[Path]:
    return sorted((app_dir / "mprcontents").rglob("*.mxunit"))


def largest_unit(app_dir: Path) -> Path:
    return max(unit_files(app_dir), key=lambda path: (path.stat().st_size, path.name))


def v1_unit_ids(mpr: Path) -> list[bytes]:
    with sqlite3.connect(mpr) as connection:
        rows = connection.execute("select UnitID from Unit order by length(Contents) desc").fetchall()
    connection.close()
    return [row[0] for row in rows]


def set_v1_contents(mpr: Path, unit_id: bytes, contents: bytes | None) -> None:
    """Overwrite one unit's ``Contents`` blob of an MPR v1 copy."""
    connection = sqlite3.connect(mpr)
    try:
        connection.execute("update Unit set Contents = ? where UnitID = ?", (contents, unit_id))
        connection.commit()
    finally:
        connection.close()


def zip_app(app_dir: Path, *, folder: str = "", level: int = zipfile.ZIP_DEFLATED) -> bytes:
    """An app package (``.mpk``): the app directory zipped, optionally under one top folder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", level) as archive:
        for path in sorted(app_dir.rglob("*")):
            if path.is_file():
                rel = path.relative_to(app_dir).as_posix()
                archive.write(path, f"{folder}/{rel}" if folder else rel)
    return buffer.getvalue()


def zip_with(base: bytes, extra: Mapping[str | zipfile.ZipInfo, bytes]) -> bytes:
    """A copy of the zip ``base`` with extra entries appended (names are not sanitised)."""
    buffer = io.BytesIO(base)
    with zipfile.ZipFile(buffer, "a") as archive:
        for name, body in extra.items():
            archive.writestr(name, body)
    return buffer.getvalue()


def symlink_entry(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    info.create_system = 3
    return info


# --------------------------------------------------------------------------------------- zip bomb


def zeros_deflate(gib_sixteenths: int) -> tuple[bytes, int, int]:
    """A raw deflate stream of ``n`` x 16 MiB zeros built in milliseconds, its size and CRC-32.

    After a full flush deflate forgets its history, so every 16 MiB block of zeros compresses to
    the same bytes: compress one block, repeat its bytes; nothing of the expanded size is written.
    """
    block = 16 * 1024 * 1024
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(block)
    compressor.compress(zeros)
    compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.flush(zlib.Z_FINISH)
    crc = 0
    block_crc = zlib.crc32(zeros)
    for _ in range(gib_sixteenths):
        crc = zlib.crc32(zeros, crc) if crc else block_crc
    return repeated * gib_sixteenths + tail, block * gib_sixteenths, crc


RawEntry = tuple[str, int, bytes, int, int] | tuple[str, int, bytes, int, int, int]
"""``(name, method, compressed bytes, crc, declared size[, flag bits])`` of a hand-built zip entry."""


def raw_zip(entries: Sequence[RawEntry]) -> bytes:
    """A zip built by hand: sizes, CRCs, methods and flags are declared as given, not checked."""
    out = io.BytesIO()
    central = io.BytesIO()
    for entry in entries:
        name, method, data, crc, size = entry[:5]
        flags = entry[5] if len(entry) > 5 else 0
        encoded = name.encode("utf-8")
        offset = out.tell()
        out.write(
            struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, method, 0, 0x21, crc, len(data), size, len(encoded), 0)
        )
        out.write(encoded)
        out.write(data)
        central.write(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                *(0x02014B50, 20, 20, flags, method, 0, 0x21, crc, len(data), size, len(encoded)),
                *(0, 0, 0, 0, 0, offset),
            )
        )
        central.write(encoded)
    start = out.tell()
    directory = central.getvalue()
    out.write(directory)
    count = len(entries)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(directory), start, 0))
    return out.getvalue()


def zip_bomb(name: str = "theme/zeros.js", sixteenths: int = 64) -> bytes:
    """A ~1 MB zip whose one entry expands to ``sixteenths`` x 16 MiB of zeros (1 GiB by default)."""
    data, size, crc = zeros_deflate(sixteenths)
    return raw_zip([(name, zipfile.ZIP_DEFLATED, data, crc, size)])


# ------------------------------------------------------------------------------------------- BSON


def bson_nested(depth: int, inner: bytes, key: bytes = b"x", with_ids: bool = False) -> bytes:
    """BSON of ``depth`` embedded documents around ``inner`` (a BSON document), built without recursion.

    With ``with_ids`` every level is an element (``$ID`` and ``$Type``), else a plain object.
    """
    levels: list[bytes] = []
    body_extra = b""
    if with_ids:
        body_extra = b"\x05$ID\x00" + struct.pack("<i", 16) + b"\x00" + b"\x11" * 16
        body_extra += b"\x02$Type\x00" + struct.pack("<i", 2) + b"T\x00"
    per_level = 4 + len(body_extra) + 1 + len(key) + 1 + 1
    total = len(inner) + per_level * depth
    for level in range(depth):
        levels.append(struct.pack("<i", total - per_level * level) + body_extra + b"\x03" + key + b"\x00")
    return b"".join(levels) + inner + b"\x00" * depth


# ------------------------------------------------------------------- reader oracles (tests and fuzz)

FUZZ_LIMITS = Limits(
    max_unit_bytes=1 * 1024 * 1024,
    max_model_bytes=8 * 1024 * 1024,
    max_elements=100_000,
    max_archive_bytes=32 * 1024 * 1024,
    max_archive_entries=1_000,
    max_xml_bytes=8 * 1024 * 1024,
)
"""Small limits so that a fuzzed input cannot make a reader allocate much."""


def _assert_clean_error(error: InputError, location: str) -> None:
    assert error.location.startswith(location), error
    assert "\n" not in str(error), repr(str(error))
    assert error.problem, error


def read_unit(data: bytes, limits: Limits = FUZZ_LIMITS) -> list[ModelElement] | None:
    """Decode and walk one unit's BSON: the elements, or ``None`` when refused with an InputError.

    Any other exception escapes (that is the bug a property test or fuzzer is looking for).
    """
    outline: UnitOutline | InputError
    try:
        document = decode_unit(data, "unit.mxunit", limits)
    except InputError as error:
        _assert_clean_error(error, "unit.mxunit")
        return None
    # The outline a load keeps and the elements built later must agree: same refusals, same names,
    # references, ids and types (``outline_of`` the elements equals the outline read beside them).
    try:
        outliner = UnitOutliner("unit.mxunit", limits.max_depth)
        outline = outliner.read(document, parent=None, name_prefix="Module", qualify=True)
    except InputError as error:
        outline = error
    try:
        reader = UnitReader("00000000-0000-0000-0000-000000000000", "unit.mxunit", limits.max_depth)
        elements = reader.read(document, parent=None, slot="Documents", name_prefix="Module", qualify=True)
    except InputError as error:
        _assert_clean_error(error, "unit.mxunit")
        assert isinstance(outline, InputError) and str(outline) == str(error), (outline, error)
        _same_as_source(document, limits, outline, error)
        return None
    assert not isinstance(outline, InputError), outline
    assert outline == outline_of(elements)
    _same_as_source(document, limits, outline, elements)
    assert len(data) == int.from_bytes(data[:4], "little"), "accepted a unit whose length prefix is wrong"
    assert elements and all(isinstance(element, ModelElement) for element in elements)
    assert elements[0].parent is None
    for element in elements:
        for value in element.properties.values():
            items = value if isinstance(value, tuple) else (value,)
            assert all(item is None or isinstance(item, str | int | float | bool) for item in items), value
    return elements


def walk_from_source(
    document: dict[str, Any], limits: Limits, location: str = "unit.mxunit"
) -> tuple[UnitOutline | InputError, list[ModelElement] | InputError] | None:
    """The outline and elements the pure-Python walk gives (or its refusals); None when that walk is
    the one imported (setup.py compiled nothing)."""
    source = pure_units()
    if source is None:
        return None
    outline: UnitOutline | InputError
    elements: list[ModelElement] | InputError
    try:
        outline = source.UnitOutliner(location, limits.max_depth).read(
            document, parent=None, name_prefix="Module", qualify=True
        )
    except InputError as error:
        outline = error
    try:
        reader = source.UnitReader("00000000-0000-0000-0000-000000000000", location, limits.max_depth)
        elements = reader.read(document, parent=None, slot="Documents", name_prefix="Module", qualify=True)
    except InputError as error:
        elements = error
    return outline, elements


def _same_as_source(
    document: dict[str, Any],
    limits: Limits,
    outline: UnitOutline | InputError,
    elements: list[ModelElement] | InputError,
) -> None:
    """The compiled walk (setup.py) found what its source finds, refusals word for word."""
    from_source = walk_from_source(document, limits)
    if from_source is None:
        return
    for compiled, pure in zip((outline, elements), from_source, strict=True):
        if isinstance(compiled, InputError) or isinstance(pure, InputError):
            assert str(compiled) == str(pure), (compiled, pure)
        else:
            assert compiled == pure


def read_snapshot_xml(data: bytes) -> Snapshot | None:
    """Parse XML snapshot bytes: the snapshot, or ``None`` when refused with an InputError.

    Whatever is accepted must survive its own round trip (render, parse, render: the same bytes).
    """
    try:
        snapshot = parse_snapshot(data, "snapshot.xml")
    except InputError as error:
        _assert_clean_error(error, "snapshot.xml")
        return None
    try:
        rendered = render_snapshot(snapshot)
        again = parse_snapshot(rendered, "again.xml")
    except InputError as error:
        raise AssertionError(f"an accepted snapshot does not round-trip: {error}") from None
    # compared as bytes, so that a NaN float (never equal to itself) still counts as the same
    assert render_snapshot(again) == rendered
    return snapshot


def read_zip(data: bytes, limits: Limits = FUZZ_LIMITS) -> dict[str, bytes] | None:
    """Open a zip and read every member: the contents, or ``None`` when refused with an InputError."""
    try:
        tree = ZipTree(data, "package.mpk", limits)
        contents = dict(tree.read_many(tree.paths()))
    except InputError as error:
        _assert_clean_error(error, "package.mpk")
        return None
    total = 0
    for path, body in contents.items():
        assert len(body) == tree.size(path), "a member's bytes differ in length from its header"
        assert _safe_member(path), path
        total += len(body)
    assert total <= limits.max_archive_bytes
    return contents


def _safe_member(path: str) -> bool:
    return bool(path) and not path.startswith("/") and ".." not in path.split("/") and ":" not in path[:2]


# ------------------------------------------------------------------------------------ seeds


def unit_seeds(limit: int = 8) -> list[bytes]:
    """Unit BSON from the example apps: the smallest and largest few, v2 files and v1 blobs."""
    files = sorted(unit_files(APP_V2), key=lambda path: (path.stat().st_size, path.name))
    chosen = files[: limit // 2] + files[-(limit // 2) :]
    seeds = [path.read_bytes() for path in chosen]
    with sqlite3.connect(APP_V1 / MPR_NAME) as connection:
        rows = connection.execute("select Contents from Unit order by length(Contents) limit 2").fetchall()
    connection.close()
    seeds.extend(row[0] for row in rows)
    return seeds


def zip_seeds() -> list[bytes]:
    """Small zips: the example widget packages, and a stored + deflated + folder archive."""
    seeds = [path.read_bytes() for path in sorted((APP_V2 / "widgets").glob("*.mpk"))]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("App.mpr", b"SQLite format 3\x00" + bytes(40))
        archive.writestr(zipfile.ZipInfo("theme/"), b"")
        archive.writestr("theme/main.js", b"export const x = 1;\n" * 20, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("mprcontents/ab/cd/x.mxunit", b"\x05\x00\x00\x00\x00")
    seeds.append(buffer.getvalue())
    return seeds


def snapshot_seed() -> bytes:
    """A small, valid XML snapshot: a few units of the example app (all element kinds, native half)."""
    from analyzer.load.sources import load_source

    full = load_source(str(APP_V2))
    keep = {unit.id for unit in sorted(full.units, key=lambda unit: unit.id)[:6]}
    small = Snapshot(
        meta=full.meta,
        units=tuple(unit for unit in full.units if unit.id in keep),
        elements=ElementSequence.of(element for element in full.elements if element.unit in keep),
        files=full.files[:3],
        native=full.native[:4],
        source=full.source,
    )
    return render_snapshot(small)


def mutate(data: bytes, operations: Sequence[tuple[int, int, int, bytes]]) -> bytes:
    """Apply ``(kind, position, length, payload)`` edits: flip, set, delete, insert, duplicate, truncate."""
    out = bytearray(data)
    for kind, position, length, payload in operations:
        if not out:
            out.extend(payload)
            continue
        at = position % (len(out) + 1)
        kind %= 7
        if kind == 0 and at < len(out):
            out[at] ^= 1 << (length % 8)
        elif kind == 1 and at < len(out):
            out[at] = length % 256
        elif kind == 2:
            del out[at : at + length % 64 + 1]
        elif kind == 3:
            out[at:at] = payload
        elif kind == 4:
            out[at:at] = out[at : at + length % 64 + 1]
        elif kind == 5:
            del out[at:]
        elif kind == 6 and len(out) >= 4:
            out[0:4] = (len(out) + (length % 9) - 4).to_bytes(4, "little", signed=True)
    return bytes(out)
