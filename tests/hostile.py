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

from typer.testing import CliRunner

from analyzer.cli import app

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
    user: int | None = None,
    timeout: float = 120,
) -> Run:
    """Run ``python -m analyzer ARGS`` in a child process (``user`` drops to that uid first)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MXOTA_")}
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "analyzer", *args],
        cwd=cwd or REPO,
        env=full_env,
        capture_output=True,
        check=False,
        timeout=timeout,
        user=user,
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
