"""Issue #5: broken and hostile inputs are refused cleanly, never pass the gate, and are never touched.

Every case builds its broken input from the example apps in ``tmp_path`` and runs the real CLI
(``mxota inspect SOURCE`` and ``mxota check GOOD SOURCE``). Each run must exit 3 (2 for usage) with
exactly one stderr line that names the file and says what is wrong, no traceback, and leave every byte
and modification time of the input as it was, with nothing created inside it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analyzer.errors import InputError
from analyzer.load.files import DirectoryTree
from analyzer.load.limits import DEFAULT_LIMITS
from analyzer.load.native import read_native
from tests.hostile import (
    APP_V1,
    APP_V2,
    APP_V2_NEXT,
    CORPUS,
    MPR_NAME,
    RawEntry,
    Run,
    assert_refused,
    assert_unchanged,
    bson_nested,
    copy_app,
    fingerprint,
    largest_unit,
    raw_zip,
    run_cli,
    run_subprocess,
    set_v1_contents,
    symlink_entry,
    v1_unit_ids,
    zeros_deflate,
    zip_app,
    zip_bomb,
    zip_with,
)


@dataclass(frozen=True)
class Case:
    """A broken input: the source to name on the command line, what the error must say, what to guard."""

    source: str
    names: tuple[str, ...]
    problem: str | None
    guard: Path


Builder = Callable[[Path], Case]
CASES: dict[str, Builder] = {}


def case(name: str) -> Callable[[Builder], Builder]:
    def register(builder: Builder) -> Builder:
        CASES[name] = builder
        return builder

    return register


def _v2(tmp: Path) -> Path:
    return copy_app(APP_V2, tmp / "app")


def _v1(tmp: Path) -> Path:
    return copy_app(APP_V1, tmp / "app")


def _app_case(app: Path, names: tuple[str, ...], problem: str | None = None) -> Case:
    return Case(str(app), names, problem, app)


RANDOM = os.urandom(4096)


# ------------------------------------------------------------------------------------------- .mpr


@case("mpr-random-bytes")
def _mpr_random(tmp: Path) -> Case:
    app = _v2(tmp)
    (app / MPR_NAME).write_bytes(RANDOM)
    return _app_case(app, (MPR_NAME,), "not an SQLite")


@case("mpr-file-random-bytes")
def _mpr_file_random(tmp: Path) -> Case:
    app = _v2(tmp)
    (app / MPR_NAME).write_bytes(RANDOM)
    return Case(str(app / MPR_NAME), (MPR_NAME,), "not an SQLite", app)


@case("mpr-truncated")
def _mpr_truncated(tmp: Path) -> Case:
    app = _v2(tmp)
    data = (APP_V2 / MPR_NAME).read_bytes()
    (app / MPR_NAME).write_bytes(data[: len(data) // 2])
    return _app_case(app, (MPR_NAME,))


@case("mpr-truncated-v1")
def _mpr_truncated_v1(tmp: Path) -> Case:
    app = _v1(tmp)
    data = (APP_V1 / MPR_NAME).read_bytes()
    (app / MPR_NAME).write_bytes(data[: len(data) // 3])
    return _app_case(app, (MPR_NAME,))


@case("mpr-header-only")
def _mpr_header_only(tmp: Path) -> Case:
    app = _v2(tmp)
    (app / MPR_NAME).write_bytes((APP_V2 / MPR_NAME).read_bytes()[:100])
    return _app_case(app, (MPR_NAME,))


@case("mpr-empty")
def _mpr_empty(tmp: Path) -> Case:
    app = _v2(tmp)
    (app / MPR_NAME).write_bytes(b"")
    return _app_case(app, (MPR_NAME,), "empty")


@case("mpr-file-empty")
def _mpr_file_empty(tmp: Path) -> Case:
    app = _v2(tmp)
    (app / MPR_NAME).write_bytes(b"")
    return Case(str(app / MPR_NAME), (MPR_NAME,), "empty", app)


@case("mpr-plain-text")
def _mpr_text(tmp: Path) -> Case:
    app = _v2(tmp)
    (app / MPR_NAME).write_text("This is not a Mendix model.\nJust some text.\n", encoding="utf-8")
    return _app_case(app, (MPR_NAME,), "not an SQLite")


@case("mpr-lfs-pointer")
def _mpr_lfs(tmp: Path) -> Case:
    app = _v2(tmp)
    (app / MPR_NAME).write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 108941312\n",
        encoding="utf-8",
    )
    return _app_case(app, (MPR_NAME,), "LFS")


@case("mpr-other-sqlite")
def _mpr_other_sqlite(tmp: Path) -> Case:
    import sqlite3

    app = _v2(tmp)
    (app / MPR_NAME).unlink()
    with sqlite3.connect(app / MPR_NAME) as connection:
        connection.execute("create table Something (a)")
    connection.close()
    return _app_case(app, (MPR_NAME,), "no _MetaData table")


def _duplicate_unit_row(mpr: Path) -> None:
    """Rebuild ``Unit`` without its primary key and with one row twice (a hostile or broken file)."""
    import sqlite3

    connection = sqlite3.connect(mpr)
    try:
        connection.executescript(
            "create table UnitCopy as select * from Unit;"
            "insert into UnitCopy select * from Unit order by UnitID limit 1;"
            "drop table Unit; alter table UnitCopy rename to Unit;"
        )
        connection.commit()
    finally:
        connection.close()


@case("mpr-duplicate-unit-row")
def _mpr_duplicate_row(tmp: Path) -> Case:
    app = _v2(tmp)
    _duplicate_unit_row(app / MPR_NAME)
    return _app_case(app, (MPR_NAME,), "two Unit rows")


@case("mpr-duplicate-unit-row-v1")
def _mpr_duplicate_row_v1(tmp: Path) -> Case:
    app = _v1(tmp)
    _duplicate_unit_row(app / MPR_NAME)
    return _app_case(app, (MPR_NAME,), "two Unit rows")


@case("no-mpr")
def _no_mpr(tmp: Path) -> Case:
    app = _v2(tmp)
    (app / MPR_NAME).unlink()
    return _app_case(app, (str(app),), "no .mpr")


@case("two-mprs")
def _two_mprs(tmp: Path) -> Case:
    app = _v2(tmp)
    shutil.copy2(app / MPR_NAME, app / "Copy.mpr")
    return _app_case(app, (MPR_NAME, "Copy.mpr"), "more than one .mpr")


# --------------------------------------------------------------------------------- v2 unit files


def _unit_case(tmp: Path, mutate: Callable[[bytes], bytes | None], problem: str | None = None) -> Case:
    app = _v2(tmp)
    unit = largest_unit(app)
    data = mutate(unit.read_bytes())
    if data is None:
        unit.unlink()
    else:
        unit.write_bytes(data)
    return _app_case(app, (unit.name,), problem)


@case("unit-missing")
def _unit_missing(tmp: Path) -> Case:
    return _unit_case(tmp, lambda data: None, "missing")


@case("unit-truncated")
def _unit_truncated(tmp: Path) -> Case:
    return _unit_case(tmp, lambda data: data[: len(data) // 2])


@case("unit-truncated-prefix-fixed")
def _unit_truncated_fixed(tmp: Path) -> Case:
    def cut(data: bytes) -> bytes:
        short = data[: len(data) // 2]
        return len(short).to_bytes(4, "little") + short[4:]

    return _unit_case(tmp, cut, "corrupt BSON")


@case("unit-empty")
def _unit_empty(tmp: Path) -> Case:
    return _unit_case(tmp, lambda data: b"", "empty")


@case("unit-random-bytes")
def _unit_random(tmp: Path) -> Case:
    return _unit_case(tmp, lambda data: RANDOM)


@case("unit-random-bytes-valid-prefix")
def _unit_random_prefixed(tmp: Path) -> Case:
    return _unit_case(tmp, lambda data: len(RANDOM).to_bytes(4, "little") + RANDOM[4:], "corrupt BSON")


@case("unit-length-prefix-too-large")
def _unit_prefix_large(tmp: Path) -> Case:
    return _unit_case(tmp, lambda data: (len(data) + 1000).to_bytes(4, "little") + data[4:], "length prefix")


@case("unit-length-prefix-too-small")
def _unit_prefix_small(tmp: Path) -> Case:
    return _unit_case(tmp, lambda data: (len(data) // 2).to_bytes(4, "little") + data[4:], "length prefix")


@case("unit-length-prefix-negative")
def _unit_prefix_negative(tmp: Path) -> Case:
    return _unit_case(tmp, lambda data: b"\xff\xff\xff\xff" + data[4:], "length prefix")


@case("unit-trailing-garbage")
def _unit_trailing(tmp: Path) -> Case:
    return _unit_case(tmp, lambda data: (len(data) + 7).to_bytes(4, "little") + data[4:] + b"garbage")


def _with_field(document: bytes, key: bytes, embedded: bytes) -> bytes:
    body = document[4:-1] + b"\x03" + key + b"\x00" + embedded
    return (len(body) + 5).to_bytes(4, "little") + body + b"\x00"


EMPTY_DOC = b"\x05\x00\x00\x00\x00"


@case("unit-nested-5000-plain-objects")
def _unit_nested_plain(tmp: Path) -> Case:
    return _unit_case(tmp, lambda data: _with_field(data, b"Deep", bson_nested(5000, EMPTY_DOC)), "nested")


@case("unit-nested-900-plain-objects")
def _unit_nested_plain_900(tmp: Path) -> Case:
    # shallow enough for the BSON decoder, deep enough for a recursive walk
    return _unit_case(tmp, lambda data: _with_field(data, b"Deep", bson_nested(900, EMPTY_DOC)), "nested")


@case("unit-nested-5000-elements")
def _unit_nested_elements(tmp: Path) -> Case:
    return _unit_case(
        tmp, lambda data: _with_field(data, b"Deep", bson_nested(5000, EMPTY_DOC, with_ids=True)), "nested"
    )


@case("unit-nested-300-elements")
def _unit_nested_elements_300(tmp: Path) -> Case:
    return _unit_case(
        tmp, lambda data: _with_field(data, b"Deep", bson_nested(300, EMPTY_DOC, with_ids=True)), "max_depth"
    )


@case("unit-symlink-out-of-app")
def _unit_symlink(tmp: Path) -> Case:
    app = _v2(tmp)
    unit = largest_unit(app)
    outside = tmp / "outside.mxunit"
    shutil.copy2(unit, outside)
    unit.unlink()
    unit.symlink_to(outside)
    return _app_case(app, (unit.name,), "outside the app directory")


@case("unit-directory-symlink-out-of-app")
def _unit_dir_symlink(tmp: Path) -> Case:
    app = _v2(tmp)
    unit = largest_unit(app)
    folder = unit.parent
    outside = tmp / "outside-folder"
    shutil.copytree(folder, outside)
    shutil.rmtree(folder)
    folder.symlink_to(outside, target_is_directory=True)
    return _app_case(app, (unit.name,), "outside the app directory")


@case("mprcontents-symlink-out-of-app")
def _mprcontents_symlink(tmp: Path) -> Case:
    app = _v2(tmp)
    outside = tmp / "outside-mprcontents"
    shutil.copytree(app / "mprcontents", outside)
    shutil.rmtree(app / "mprcontents")
    (app / "mprcontents").symlink_to(outside, target_is_directory=True)
    return _app_case(app, ("mprcontents",), "outside the app directory")


@case("unit-is-a-directory")
def _unit_directory(tmp: Path) -> Case:
    app = _v2(tmp)
    unit = largest_unit(app)
    unit.unlink()
    unit.mkdir()
    return _app_case(app, (unit.name,))


@case("unit-wrong-content")
def _unit_not_object(tmp: Path) -> Case:
    import bson

    return _unit_case(tmp, lambda data: bson.encode({"$Type": "Forms$Page", "Name": "x"}), "$ID")


# ------------------------------------------------------------------------------------ MPR v1 blobs


def _v1_case(tmp: Path, mutate: Callable[[bytes], bytes | None], problem: str | None = None) -> Case:
    import sqlite3

    app = _v1(tmp)
    mpr = app / MPR_NAME
    unit_id = v1_unit_ids(mpr)[0]
    with sqlite3.connect(mpr) as connection:
        (contents,) = connection.execute("select Contents from Unit where UnitID = ?", (unit_id,)).fetchone()
    connection.close()
    set_v1_contents(mpr, unit_id, mutate(contents))
    return _app_case(app, (MPR_NAME,), problem)


@case("v1-contents-random")
def _v1_random(tmp: Path) -> Case:
    return _v1_case(tmp, lambda data: RANDOM)


@case("v1-contents-truncated")
def _v1_truncated(tmp: Path) -> Case:
    return _v1_case(tmp, lambda data: data[: len(data) // 2], "length prefix")


@case("v1-contents-null")
def _v1_null(tmp: Path) -> Case:
    return _v1_case(tmp, lambda data: None, "no contents")


@case("v1-contents-bitflips")
def _v1_bitflips(tmp: Path) -> Case:
    def flip(data: bytes) -> bytes:
        mutable = bytearray(data)
        for position in range(4, len(mutable), 97):
            mutable[position] ^= 0xA5
        return bytes(mutable)

    return _v1_case(tmp, flip)


@case("v1-contents-nested")
def _v1_nested(tmp: Path) -> Case:
    return _v1_case(tmp, lambda data: _with_field(data, b"Deep", bson_nested(3000, EMPTY_DOC)), "nested")


# ------------------------------------------------------------------------------------ XML snapshot


def _snapshot_xml(tmp: Path) -> bytes:
    target = tmp / "good.xml"
    run = run_cli(["snapshot", str(APP_V2), "-o", str(target)])
    assert run.code == 0, run.stderr
    return target.read_bytes()


def _xml_case(tmp: Path, data: bytes, problem: str | None = None, name: str = "snapshot.xml") -> Case:
    folder = tmp / "xml"
    folder.mkdir()
    path = folder / name
    path.write_bytes(data)
    return Case(str(path), (name,), problem, folder)


@case("xml-malformed")
def _xml_malformed(tmp: Path) -> Case:
    return _xml_case(tmp, b'<?xml version="1.0"?>\n<snapshot><meta></snapshot>', "malformed XML")


@case("xml-truncated")
def _xml_truncated(tmp: Path) -> Case:
    data = _snapshot_xml(tmp)
    return _xml_case(tmp, data[: len(data) // 2], "malformed XML")


@case("xml-empty")
def _xml_empty(tmp: Path) -> Case:
    return _xml_case(tmp, b"")


@case("xml-other-vocabulary")
def _xml_other(tmp: Path) -> Case:
    return _xml_case(
        tmp, b'<?xml version="1.0"?>\n<project xmlns="http://maven.apache.org/POM/4.0.0"/>', "not an mxota"
    )


@case("xml-xxe")
def _xml_xxe(tmp: Path) -> Case:
    secret = tmp / "secret.txt"
    secret.write_text("top secret", encoding="utf-8")
    data = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE snapshot [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>\n'
        '<snapshot xmlns="urn:mxota:snapshot:1" schema-version="2">'
        '<meta mpr-name="&xxe;" mpr-format="v2" product-version="1" build-version="" schema-hash=""/>'
        "<units/><files/></snapshot>"
    ).encode()
    return _xml_case(tmp, data, "DOCTYPE")


@case("xml-xxe-parameter-entity")
def _xml_xxe_param(tmp: Path) -> Case:
    data = (
        b'<?xml version="1.0"?>\n'
        b'<!DOCTYPE snapshot [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>\n'
        b'<snapshot xmlns="urn:mxota:snapshot:1" schema-version="2"/>'
    )
    return _xml_case(tmp, data)


@case("xml-billion-laughs")
def _xml_laughs(tmp: Path) -> Case:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    data = (
        '<?xml version="1.0"?>\n<!DOCTYPE snapshot [' + "".join(entities) + "]>\n"
        '<snapshot xmlns="urn:mxota:snapshot:1" schema-version="2">'
        '<meta mpr-name="&lol9;" mpr-format="v2" product-version="1" build-version="" schema-hash=""/>'
        "<units/><files/></snapshot>"
    ).encode()
    return _xml_case(tmp, data, "DOCTYPE")


@case("xml-older-schema-version")
def _xml_older_schema(tmp: Path) -> Case:
    """A snapshot exported before in-text references were kept would check with fewer links: refused."""
    data = _snapshot_xml(tmp).replace(b'schema-version="2"', b'schema-version="1"', 1)
    return _xml_case(tmp, data, "export it again")


@case("xml-invalid-against-schema")
def _xml_invalid(tmp: Path) -> Case:
    data = _snapshot_xml(tmp).replace(b' product-version="', b' product-versio="', 1)
    return _xml_case(tmp, data, "schema")


@case("xml-invalid-value")
def _xml_invalid_value(tmp: Path) -> Case:
    data = _snapshot_xml(tmp).replace(b'type="int">', b'type="int">x', 1)
    assert b'type="int">x' in data
    return _xml_case(tmp, data, "schema")


@case("xml-duplicate-unit")
def _xml_duplicate_unit(tmp: Path) -> Case:
    data = _snapshot_xml(tmp)
    start = data.index(b"<unit ")
    end = data.index(b"</unit>", start) + len(b"</unit>")
    return _xml_case(tmp, data[:end] + data[start:end] + data[end:], "twice")


@case("xml-bad-base64")
def _xml_bad_base64(tmp: Path) -> Case:
    data = _snapshot_xml(tmp).replace(b'type="str">', b'type="str" encoding="base64">***', 1)
    return _xml_case(tmp, data)


@case("xml-not-utf8")
def _xml_not_utf8(tmp: Path) -> Case:
    data = _snapshot_xml(tmp).replace(b'type="str">', b'type="str">\xff\xfe\xc0', 1)
    return _xml_case(tmp, data, "malformed XML")


@case("xml-doctype-utf16")
def _xml_utf16(tmp: Path) -> Case:
    text = (
        '<?xml version="1.0" encoding="UTF-16"?>\n'
        '<!DOCTYPE snapshot [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        '<snapshot xmlns="urn:mxota:snapshot:1" schema-version="2">'
        '<meta mpr-name="&xxe;" mpr-format="v2" product-version="1" build-version="" schema-hash=""/>'
        "<units/><files/></snapshot>"
    )
    return _xml_case(tmp, text.encode("utf-16"))


# ----------------------------------------------------------------------------------- app packages


def _mpk_case(tmp: Path, data: bytes, problem: str | None = None, name: str = "app.mpk") -> Case:
    folder = tmp / "packages"
    folder.mkdir()
    path = folder / name
    path.write_bytes(data)
    return Case(str(path), (name,), problem, folder)


@case("mpk-not-a-zip")
def _mpk_random(tmp: Path) -> Case:
    return _mpk_case(tmp, RANDOM, "zip")


@case("mpk-truncated")
def _mpk_truncated(tmp: Path) -> Case:
    data = zip_app(APP_V2)
    return _mpk_case(tmp, data[: len(data) // 2], "zip")


@case("mpk-empty")
def _mpk_empty(tmp: Path) -> Case:
    return _mpk_case(tmp, b"")


@case("mpk-dotdot-entry")
def _mpk_dotdot(tmp: Path) -> Case:
    return _mpk_case(tmp, zip_with(zip_app(APP_V2), {"../evil.txt": b"x"}), "'..'")


@case("mpk-nested-dotdot-entry")
def _mpk_nested_dotdot(tmp: Path) -> Case:
    return _mpk_case(tmp, zip_with(zip_app(APP_V2), {"theme/../../evil.js": b"x"}), "'..'")


@case("mpk-absolute-entry")
def _mpk_absolute(tmp: Path) -> Case:
    return _mpk_case(tmp, zip_with(zip_app(APP_V2), {"/etc/evil": b"x"}), "absolute")


@case("mpk-windows-absolute-entry")
def _mpk_windows_absolute(tmp: Path) -> Case:
    return _mpk_case(tmp, zip_with(zip_app(APP_V2), {"C:/Windows/evil": b"x"}), "absolute")


@case("mpk-symlink-entry")
def _mpk_symlink(tmp: Path) -> Case:
    entry = symlink_entry("theme/native/passwd.js", "/etc/passwd")
    return _mpk_case(tmp, zip_with(zip_app(APP_V2), {entry: b"/etc/passwd"}), "symbolic link")


@case("mpk-zip-bomb")
def _mpk_bomb(tmp: Path) -> Case:
    return _mpk_case(tmp, zip_bomb(), "max_archive_ratio")


@case("mpk-zip-bomb-beside-app")
def _mpk_bomb_app(tmp: Path) -> Case:
    data, size, crc = zeros_deflate(64)
    bomb = ("theme/zeros.js", zipfile.ZIP_DEFLATED, data, crc, size)
    return _mpk_case(tmp, _merge_raw(zip_app(APP_V2), [bomb]), "max_archive_ratio")


@case("mpk-declares-less-than-it-holds")
def _mpk_lying_size(tmp: Path) -> Case:
    body = b"console.log('hi');\n" * 1000
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    packed = compressor.compress(body) + compressor.flush()
    # declares 19 bytes, inflates to 19000: the reader must not take the first 19 as the file
    entries: list[RawEntry] = [("theme/liar.js", zipfile.ZIP_DEFLATED, packed, zlib.crc32(body), 19)]
    return _mpk_case(tmp, _merge_raw(zip_app(APP_V2), entries), "liar.js")


@case("mpk-corrupt-member")
def _mpk_corrupt_member(tmp: Path) -> Case:
    entries = [("theme/broken.js", zipfile.ZIP_DEFLATED, b"\xff" * 64, zlib.crc32(b"x" * 100), 100)]
    return _mpk_case(tmp, _merge_raw(zip_app(APP_V2), entries), "broken.js")


@case("mpk-bad-crc")
def _mpk_bad_crc(tmp: Path) -> Case:
    body = b"export const x = 1;\n"
    entries = [("theme/crc.js", zipfile.ZIP_STORED, body, 0x12345678, len(body))]
    return _mpk_case(tmp, _merge_raw(zip_app(APP_V2), entries), "crc.js")


@case("mpk-encrypted-member")
def _mpk_encrypted(tmp: Path) -> Case:
    body = b"secret"
    entries = [("theme/enc.js", zipfile.ZIP_STORED, body, zlib.crc32(body), len(body), 0x1)]
    return _mpk_case(tmp, _merge_raw(zip_app(APP_V2), entries), "enc.js")


@case("mpk-unsupported-compression")
def _mpk_method(tmp: Path) -> Case:
    body = b"export const y = 2;\n"
    entries = [("theme/method.js", 99, body, zlib.crc32(body), len(body))]
    return _mpk_case(tmp, _merge_raw(zip_app(APP_V2), entries), "method.js")


@case("mpk-without-mpr")
def _mpk_no_mpr(tmp: Path) -> Case:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(zip_app(APP_V2))) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if not info.filename.endswith(".mpr"):
                target.writestr(info, source.read(info))
    return _mpk_case(tmp, out.getvalue(), "no .mpr")


@case("mpk-unit-missing")
def _mpk_unit_missing(tmp: Path) -> Case:
    unit = largest_unit(APP_V2).name
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(zip_app(APP_V2))) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if not info.filename.endswith(unit):
                target.writestr(info, source.read(info))
    return _mpk_case(tmp, out.getvalue(), "missing")


def _merge_raw(package: bytes, extra: Sequence[RawEntry]) -> bytes:
    """``package`` rebuilt by hand with extra raw entries (sizes and CRCs as given, not as true)."""
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        contents = [(info.filename, archive.read(info)) for info in archive.infolist()]
    entries: list[RawEntry] = []
    for name, body in contents:
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        packed = compressor.compress(body) + compressor.flush()
        entries.append((name, zipfile.ZIP_DEFLATED, packed, zlib.crc32(body), len(body)))
    return raw_zip([*entries, *extra])


# ----------------------------------------------------------------------------------- other sources


@case("path-does-not-exist")
def _missing_path(tmp: Path) -> Case:
    return Case(str(tmp / "nowhere" / "app"), ("nowhere",), "no such file", tmp)


@case("source-of-unknown-kind")
def _unknown_kind(tmp: Path) -> Case:
    folder = tmp / "other"
    folder.mkdir()
    (folder / "notes.txt").write_bytes(RANDOM)
    return Case(str(folder / "notes.txt"), ("notes.txt",), None, folder)


@case("mpr-is-a-directory")
def _mpr_directory(tmp: Path) -> Case:
    app = _v2(tmp)
    (app / MPR_NAME).unlink()
    (app / MPR_NAME).mkdir()
    return _app_case(app, (str(app),), "no .mpr")


# ---------------------------------------------------------------------------------------- running


@pytest.mark.parametrize("name", sorted(CASES))
def test_inspect_refuses(name: str, tmp_path: Path) -> None:
    built = CASES[name](tmp_path)
    before = fingerprint(built.guard)
    run = run_cli(["inspect", built.source])
    assert_refused(run, *built.names, problem=built.problem, scrub=tmp_path)
    assert run.stdout == ""
    assert_unchanged(before, built.guard)


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_never_passes_a_broken_head(name: str, tmp_path: Path) -> None:
    built = CASES[name](tmp_path)
    before = fingerprint(built.guard)
    run = run_cli(["check", str(APP_V2), built.source])
    assert_refused(run, *built.names, problem=built.problem, scrub=tmp_path)
    assert_unchanged(before, built.guard)


@pytest.mark.parametrize("name", ["mpr-random-bytes", "unit-truncated", "xml-xxe", "mpk-zip-bomb"])
def test_check_refuses_a_broken_base(name: str, tmp_path: Path) -> None:
    built = CASES[name](tmp_path)
    before = fingerprint(built.guard)
    run = run_cli(["check", built.source, str(APP_V2)])
    assert_refused(run, *built.names, problem=built.problem, scrub=tmp_path)
    assert_unchanged(before, built.guard)


@pytest.mark.parametrize("name", ["unit-nested-5000-plain-objects", "mpk-zip-bomb", "xml-billion-laughs"])
def test_refusal_in_a_real_process(name: str, tmp_path: Path) -> None:
    """The same contract outside CliRunner: a child ``python -m analyzer`` process."""
    built = CASES[name](tmp_path)
    before = fingerprint(built.guard)
    run = run_subprocess(["check", str(APP_V2), built.source])
    assert_refused(run, *built.names, problem=built.problem, scrub=tmp_path)
    assert_unchanged(before, built.guard)


def test_unit_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    """A unit that is a named pipe would block a plain read for ever."""
    app = _v2(tmp_path)
    unit = largest_unit(app)
    unit.unlink()
    os.mkfifo(unit)
    before = fingerprint(app)
    run = run_subprocess(["inspect", str(app)], timeout=60)
    assert_refused(run, unit.name, problem="not a regular file")
    assert_unchanged(before, app)


# --------------------------------------------------------------------------------------------- git


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture()
def git_app(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = copy_app(APP_V2, tmp_path / "repo")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "app")
    return repo


def test_git_revision_that_does_not_exist(git_app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(git_app)
    before = fingerprint(git_app)
    run = run_cli(["inspect", "git:no-such-revision"])
    assert_refused(run, "git:no-such-revision", problem="does not exist")
    run = run_cli(["check", str(APP_V2), "git:no-such-revision"])
    assert_refused(run, "git:no-such-revision", problem="does not exist")
    run = run_cli(["inspect", "git:HEAD:no/such/dir"])
    assert_refused(run, "git:HEAD:no/such/dir", problem="no .mpr")
    assert_unchanged(before, git_app)


def test_git_revision_that_exists_is_read(git_app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(git_app)
    before = fingerprint(git_app)
    run = run_cli(["inspect", "git:HEAD"])
    assert run.code == 0, run.stderr
    assert_unchanged(before, git_app)


def test_git_source_outside_a_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    monkeypatch.chdir(outside)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    run = run_cli(["inspect", "git:HEAD"])
    assert_refused(run, "git:HEAD")


# -------------------------------------------------------------------------------------- permissions


DROP_DAC = ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--")
"""Root without the two capabilities that let it ignore file permissions (util-linux ``setpriv``)."""


def _permission_prefix(tmp_path: Path) -> tuple[str, ...]:
    """How to run mxota so that permissions apply: as is, or (as root) with DAC overrides dropped."""
    if os.geteuid() != 0:
        return ()
    reason = "running as root, which ignores file permissions"
    if shutil.which("setpriv") is None:
        pytest.skip(f"{reason}, and setpriv (util-linux) is not installed to drop that privilege")
    closed = tmp_path / "closed"
    closed.mkdir()
    closed.chmod(0o000)
    try:
        probe = subprocess.run(
            [*DROP_DAC, sys.executable, "-c", "import os, sys; os.listdir(sys.argv[1])", str(closed)],
            capture_output=True,
            check=False,
        )
    finally:
        closed.chmod(0o755)
    if probe.returncode == 0 or b"PermissionError" not in probe.stderr:
        pytest.skip(f"{reason}, and setpriv cannot drop it here: {probe.stderr.decode(errors='replace')[-200:]}")
    return DROP_DAC


def test_directory_without_read_permission(tmp_path: Path) -> None:
    """An app directory that cannot be listed, and a unit file that cannot be read, are refused."""
    prefix = _permission_prefix(tmp_path)
    app = copy_app(APP_V2, tmp_path / "app")
    app.chmod(0o311)  # traversable but not listable
    try:
        before = fingerprint(app)
        run = run_subprocess(["inspect", str(app)], cwd=tmp_path, prefix=prefix)
        assert_refused(run, str(app), problem="permission denied")
        run = run_subprocess(["check", str(APP_V2), str(app)], cwd=tmp_path, prefix=prefix)
        assert_refused(run, str(app), problem="permission denied")
        assert_unchanged(before, app)
        app.chmod(0o755)
        unit = largest_unit(app)
        unit.chmod(0o000)
        before = fingerprint(app)
        run = run_subprocess(["inspect", str(app)], cwd=tmp_path, prefix=prefix)
        assert_refused(run, unit.name, problem="permission denied")
        run = run_subprocess(["check", str(APP_V2), str(app)], cwd=tmp_path, prefix=prefix)
        assert_refused(run, unit.name, problem="permission denied")
        assert_unchanged(before, app)
        unit.chmod(0o644)
    finally:
        app.chmod(0o755)


# -------------------------------------------------------------------------------- native readers


def _native_case(tmp: Path, kind: str) -> tuple[Path, str]:
    app = _v2(tmp)
    if kind == "widget-random":
        widget = sorted((app / "widgets").glob("*.mpk"))[0]
        widget.write_bytes(RANDOM)
        return app, widget.name
    if kind == "widget-truncated":
        widget = sorted((app / "widgets").glob("*.mpk"))[0]
        widget.write_bytes(widget.read_bytes()[:200])
        return app, widget.name
    if kind == "widget-zip-bomb":
        widget = sorted((app / "widgets").glob("*.mpk"))[0]
        widget.write_bytes(zip_bomb("package.xml"))
        return app, widget.name
    if kind == "widget-dotdot":
        widget = sorted((app / "widgets").glob("*.mpk"))[0]
        widget.write_bytes(zip_with(widget.read_bytes(), {"../../evil.xml": b"<x/>"}))
        return app, widget.name
    if kind == "widget-package-xml-xxe":
        widget = sorted((app / "widgets").glob("*.mpk"))[0]
        xml = b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]><package>&x;</package>'
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(widget.read_bytes())) as source, zipfile.ZipFile(out, "w") as target:
            for info in source.infolist():
                target.writestr(info, xml if info.filename == "package.xml" else source.read(info))
        widget.write_bytes(out.getvalue())
        return app, widget.name
    config = app / "nativemobile" / ".config"
    if kind == "config-invalid-json":
        config.write_bytes(config.read_bytes()[:-20] + b",,,")
    elif kind == "config-not-utf8":
        config.write_bytes(b"\xff\xfe\x00{" + RANDOM[:64])
    elif kind == "config-wrong-types":
        document = json.loads(config.read_text(encoding="utf-8"))
        document["configurations"]["Default"]["appName"] = ["not", "a", "string"]
        config.write_text(json.dumps(document), encoding="utf-8")
    elif kind == "config-configurations-not-object":
        document = json.loads(config.read_text(encoding="utf-8"))
        document["configurations"] = 42
        config.write_text(json.dumps(document), encoding="utf-8")
    elif kind == "config-top-level-list":
        config.write_text("[1, 2, 3]", encoding="utf-8")
    elif kind == "config-deeply-nested":
        nested = "[" * 50000 + "]" * 50000
        config.write_text('{"configurations": {"Default": {"x": ' + nested + "}}}", encoding="utf-8")
    else:
        raise AssertionError(kind)
    return app, ".config"


NATIVE_KINDS = [
    "widget-random",
    "widget-truncated",
    "widget-zip-bomb",
    "widget-dotdot",
    "widget-package-xml-xxe",
    "config-invalid-json",
    "config-not-utf8",
    "config-wrong-types",
    "config-configurations-not-object",
    "config-top-level-list",
    "config-deeply-nested",
]


@pytest.mark.parametrize("kind", NATIVE_KINDS)
def test_native_reader_refuses(kind: str, tmp_path: Path) -> None:
    app, name = _native_case(tmp_path, kind)
    before = fingerprint(app)
    with pytest.raises(InputError) as caught:
        read_native(DirectoryTree(app), DEFAULT_LIMITS)
    assert name in caught.value.location, caught.value
    assert "\n" not in str(caught.value)
    assert_unchanged(before, app)


@pytest.mark.parametrize("kind", NATIVE_KINDS)
def test_native_cli_refuses(kind: str, tmp_path: Path) -> None:
    """Since e57d2e6 every snapshot carries its native half, so the CLI refuses these too."""
    app, name = _native_case(tmp_path, kind)
    before = fingerprint(app)
    try:
        assert_refused(run_cli(["inspect", str(app)]), name)
        assert_refused(run_cli(["check", str(APP_V2), str(app)]), name)
    finally:
        assert_unchanged(before, app)


# --------------------------------------------------------------------------------- resource limits


@dataclass(frozen=True)
class LimitCase:
    limit: str
    low: str
    high: str
    build: Callable[[Path], str]


def _nested_app(tmp: Path) -> str:
    app = _v2(tmp)
    unit = largest_unit(app)
    unit.write_bytes(_with_field(unit.read_bytes(), b"Deep", bson_nested(300, EMPTY_DOC, with_ids=True)))
    return str(app)


def _compressible_package(tmp: Path) -> str:
    app = _v2(tmp)
    (app / "theme" / "native" / "padding.js").write_bytes(b" " * (4 * 1024 * 1024))
    path = tmp / "app.mpk"
    path.write_bytes(zip_app(app))
    return str(path)


def _package(tmp: Path) -> str:
    path = tmp / "app.mpk"
    path.write_bytes(zip_app(APP_V2))
    return str(path)


def _xml(tmp: Path) -> str:
    path = tmp / "snapshot.xml"
    path.write_bytes(_snapshot_xml(tmp))
    return str(path)


LIMIT_CASES = [
    LimitCase("max_unit_bytes", "1000", "1000000", lambda tmp: str(APP_V2)),
    LimitCase("max_unit_bytes", "1000", "1000000", lambda tmp: str(APP_V1)),
    LimitCase("max_model_bytes", "10000", "100000000", lambda tmp: str(APP_V2)),
    LimitCase("max_model_bytes", "10000", "100000000", lambda tmp: str(APP_V1)),
    LimitCase("max_elements", "100", "100000", lambda tmp: str(APP_V2)),
    LimitCase("max_depth", "3", "1000", lambda tmp: str(APP_V2)),
    LimitCase("max_depth", "256", "400", _nested_app),
    LimitCase("max_archive_bytes", "100000", "100000000", _package),
    LimitCase("max_archive_entries", "10", "100000", _package),
    LimitCase("max_archive_ratio", "200", "100000", _compressible_package),
    LimitCase("max_xml_bytes", "1000", "100000000", _xml),
]


@pytest.mark.parametrize("limit_case", LIMIT_CASES, ids=[f"{c.limit}-{i}" for i, c in enumerate(LIMIT_CASES)])
@pytest.mark.parametrize("via", ["option", "env"])
def test_limit_refuses_and_raising_it_lets_the_input_through(limit_case: LimitCase, via: str, tmp_path: Path) -> None:
    source = limit_case.build(tmp_path)
    guard = Path(source) if Path(source).is_dir() else Path(source).parent
    before = fingerprint(guard)

    def run(value: str) -> Run:
        if via == "option":
            return run_cli(["inspect", "--limit", f"{limit_case.limit}={value}", source])
        return run_cli(["inspect", source], env={f"MXOTA_LIMIT_{limit_case.limit.upper()}": value})

    refused = run(limit_case.low)
    assert_refused(refused, f"--limit {limit_case.limit}=", problem=None)
    passed = run(limit_case.high)
    assert passed.code == 0, passed.stderr
    assert passed.stderr == ""
    assert_unchanged(before, guard)


def test_limit_usage_errors() -> None:
    assert_refused(run_cli(["inspect", "--limit", "max_nothing=5", str(APP_V2)]), "max_nothing", code=2)
    assert_refused(run_cli(["inspect", "--limit", "max_depth=deep", str(APP_V2)]), "max_depth", code=2)
    assert_refused(run_cli(["inspect", "--limit", "max_depth=0", str(APP_V2)]), "max_depth", code=2)
    assert_refused(run_cli(["inspect", "--limit", "max_depth", str(APP_V2)]), "NAME=VALUE", code=2)
    assert_refused(run_cli(["inspect", str(APP_V2)], env={"MXOTA_LIMIT_BOGUS": "1"}), "BOGUS", code=2)


# ----------------------------------------------------------------------------------- read-only proof


def _materialize_corpus_revision(out: Path) -> Path | None:
    if not (CORPUS / "materialize.py").is_file():
        return None
    subprocess.run(
        [sys.executable, str(CORPUS / "materialize.py"), str(out), "--project", "MendixCap__MX--SFTP-Module"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    revisions = sorted(path.parent for path in out.rglob("*.mpr") if path.parent.parent.parent == out)
    return revisions[0] if revisions else None


def test_example_apps_are_read_only(tmp_path: Path) -> None:
    inputs = [APP_V2, APP_V1, APP_V2_NEXT]
    before = {path: fingerprint(path) for path in inputs}
    out = tmp_path / "out"
    out.mkdir()
    for index, app in enumerate(inputs):
        assert run_cli(["inspect", str(app)]).code == 0
        assert run_cli(["inspect", str(app / MPR_NAME)]).code == 0
        target = out / f"{index}.xml"
        assert run_cli(["snapshot", str(app), "-o", str(target)]).code == 0
        assert run_cli(["inspect", str(target)]).code == 0
    for base, head in [(APP_V2, APP_V2_NEXT), (APP_V1, APP_V2), (APP_V2_NEXT, APP_V1)]:
        assert run_cli(["check", str(base), str(head)]).code in (0, 1)
        assert run_cli(["check", str(base), str(head), "--format", "json"]).code in (0, 1)
    for path in inputs:
        assert_unchanged(before[path], path)


def test_app_package_is_read_only(tmp_path: Path) -> None:
    folder = tmp_path / "packages"
    folder.mkdir()
    (folder / "app.mpk").write_bytes(zip_app(APP_V2, folder="FieldService"))
    before = fingerprint(folder)
    assert run_cli(["inspect", str(folder / "app.mpk")]).code == 0
    assert run_cli(["check", str(folder / "app.mpk"), str(APP_V2_NEXT)]).code in (0, 1)
    assert_unchanged(before, folder)


@pytest.mark.corpus
def test_corpus_revision_is_read_only(tmp_path: Path) -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"no corpus at {CORPUS}")
    app = _materialize_corpus_revision(tmp_path / "corpus")
    if app is None:
        pytest.skip("the corpus has no MendixCap__MX--SFTP-Module revision")
    before = fingerprint(app)
    out = tmp_path / "out"
    out.mkdir()
    assert run_cli(["inspect", str(app)]).code == 0
    assert run_cli(["snapshot", str(app), "-o", str(out / "corpus.xml")]).code == 0
    assert run_cli(["check", str(app), str(app)]).code in (0, 1)
    assert run_cli(["check", str(out / "corpus.xml"), str(app)]).code in (0, 1)
    assert_unchanged(before, app)


def test_read_only_input_files_can_be_read(tmp_path: Path) -> None:
    """An app on a read-only medium (here: no write bits anywhere) is read as usual."""
    app = _v2(tmp_path)
    for path in [*app.rglob("*"), app]:
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode):
            path.chmod(stat.S_IMODE(mode) & ~0o222)
    try:
        before = fingerprint(app)
        assert run_cli(["inspect", str(app)]).code == 0
        assert run_cli(["check", str(APP_V2), str(app)]).code == 0
        assert_unchanged(before, app)
    finally:
        for path in [app, *app.rglob("*")]:
            if not path.is_symlink():
                path.chmod(stat.S_IMODE(path.stat().st_mode) | 0o200)



def test_line_break_in_an_archive_name_is_refused_on_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "packages"
    folder.mkdir()
    body = b"x"
    (folder / "app.mpk").write_bytes(_merge_raw(zip_app(APP_V2), [("theme/evil\nline.js", 0, body, 1234, 1)]))
    before = fingerprint(folder)
    assert_refused(run_cli(["inspect", str(folder / "app.mpk")]), "app.mpk", problem="control character")
    assert_unchanged(before, folder)


def test_line_break_in_a_directory_name_stays_on_one_line(tmp_path: Path) -> None:
    app = copy_app(APP_V2, tmp_path / "field\nservice")
    (app / MPR_NAME).write_bytes(b"")
    before = fingerprint(app)
    assert_refused(run_cli(["inspect", str(app)]), MPR_NAME, problem="empty")
    assert_unchanged(before, app)


def test_source_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "pipes"
    folder.mkdir()
    os.mkfifo(folder / "App.mpr")
    before = fingerprint(folder)
    try:
        run = run_subprocess(["inspect", str(folder / "App.mpr")], timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("mxota waited for ever on a named pipe")
    assert_refused(run, "App.mpr")
    assert_unchanged(before, folder)


def test_mpr_symlink_out_of_the_app_is_refused(tmp_path: Path) -> None:
    app = _v2(tmp_path)
    outside = tmp_path / "outside.mpr"
    (app / MPR_NAME).rename(outside)
    (app / MPR_NAME).symlink_to(outside)
    before = fingerprint(app)
    assert_refused(run_cli(["inspect", str(app)]), MPR_NAME, problem="outside the app directory")
    assert_unchanged(before, app)


@given(st.text(alphabet="ab./\\:", max_size=16))
def test_archive_member_names_are_normalised_as_pure_paths_would_be(name: str) -> None:
    """Member names are split by hand for speed (thousands per widget folder); the result must be what
    ``PurePosixPath`` gives, and ``..`` or an absolute or drive path must still be refused."""
    from pathlib import PurePosixPath

    from analyzer.load.files import _safe_relative

    if not name or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        expected = None
    else:
        parts = PurePosixPath(name.replace("\\", "/")).parts
        expected = None if ".." in parts else "/".join(part for part in parts if part not in ("", "."))
    assert _safe_relative(name) == expected
