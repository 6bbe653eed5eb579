"""The compiled unit walk (setup.py, mypyc) is in use where it can be, is built from the source beside
it, and finds on every unit of the corpus exactly what that source finds.

Generated and mutated units are compared the same way by every reader property test
(``tests.hostile.read_unit``); this file adds the real projects and the build itself.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import bson
import pytest

import analyzer.load.units as units
from analyzer.load.limits import DEFAULT_LIMITS
from tests.compiled import is_compiled
from tests.conftest import corpus_revisions
from tests.hostile import walk_from_source

SOURCE = Path(units.__file__).with_name("units.py")


def test_the_walk_is_compiled_where_it_can_be() -> None:
    if os.environ.get("MXOTA_PURE_PYTHON"):
        pytest.skip("MXOTA_PURE_PYTHON is set: the pure-Python build is the one under test")
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler here: setup.py builds the pure-Python package")
    assert is_compiled(units), (
        "analyzer.load.units runs from its source although a C compiler is here: install with "
        "`pip install -e .` (setup.py compiles it), or set MXOTA_PURE_PYTHON=1 to test the pure build"
    )


def test_the_compiled_walk_is_built_from_its_source() -> None:
    """An editable install keeps the compiled module beside the source it was built from; one built
    before the source last changed would test and run old code."""
    if not is_compiled(units):
        pytest.skip("the walk runs from its source")
    built = Path(str(units.__file__)).stat().st_mtime
    assert built >= SOURCE.stat().st_mtime, (
        f"{units.__file__} is older than {SOURCE.name}: run `pip install -e .` again to rebuild it"
    )


def test_unit_records_are_keyed_by_the_walks_source_not_its_build() -> None:
    """Two builds of one source differ byte for byte; records must outlive a rebuild (a CI cache)."""
    import analyzer.load.memo as memo
    import analyzer.model.snapshot as snapshot

    sources = [SOURCE, Path(snapshot.__file__), Path(memo.__file__)]
    assert [memo.source_of(module) for module in (units, snapshot, memo)] == sources
    assert memo.code_fingerprint(sources) == memo._READER


def _unit_documents(app: Path) -> Iterator[tuple[str, bytes]]:
    """Every unit's BSON of an app folder: ``mprcontents`` files (v2) or the ``.mpr``'s rows (v1)."""
    files = sorted(app.glob("mprcontents/*/*/*.mxunit"))
    if files:
        for path in files:
            yield path.name, path.read_bytes()
        return
    mpr = next(app.glob("*.mpr"))
    connection = sqlite3.connect(mpr.resolve().as_uri() + "?mode=ro&immutable=1", uri=True)
    try:
        yield from connection.execute("select hex(UnitID), Contents from Unit")
    finally:
        connection.close()


@pytest.mark.corpus
def test_compiled_and_source_walks_agree_on_the_corpus(corpus: Path) -> None:
    if not is_compiled(units):
        pytest.skip("the walk runs from its source: nothing to compare")
    walked = 0
    for _, revisions in corpus_revisions(corpus):
        for name, data in _unit_documents(revisions[-1]):
            document = bson.decode(data)
            outline = units.UnitOutliner(name, DEFAULT_LIMITS.max_depth).read(
                document, parent=None, name_prefix="Module", qualify=True
            )
            reader = units.UnitReader("00000000-0000-0000-0000-000000000000", name, DEFAULT_LIMITS.max_depth)
            elements = reader.read(document, parent=None, slot="Documents", name_prefix="Module", qualify=True)
            from_source = walk_from_source(document, DEFAULT_LIMITS, name)
            assert from_source is not None
            assert from_source[0] == outline, name
            assert from_source[1] == elements, name
            walked += 1
    assert walked > 2000
