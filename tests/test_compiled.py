"""The compiled unit walk (setup.py, mypyc) is in use where it can be, is built from the source beside
it, and finds on every unit of the corpus exactly what that source finds.

Generated and mutated units are compared the same way by every reader property test
(``tests.hostile.read_unit``); this file adds the real projects and the build itself.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import bson
import pytest

import analyzer.load.units as units
from analyzer.load.limits import DEFAULT_LIMITS
from analyzer.model.snapshot import outline_of
from tests.compiled import pure_units
from tests.conftest import corpus_revisions
from tests.hostile import walk_from_source
from tests.test_corpus import unit_contents

SOURCE = Path(units.__file__).with_name("units.py")


def test_the_walk_is_compiled_where_it_can_be() -> None:
    if os.environ.get("MXOTA_PURE_PYTHON"):
        pytest.skip("MXOTA_PURE_PYTHON is set: the pure-Python build is the one under test")
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler here: setup.py builds the pure-Python package")
    assert units.walk_is_compiled(), (
        "analyzer.load.units runs from its source although a C compiler is here: install with "
        "`pip install -e .` (setup.py compiles it), or set MXOTA_PURE_PYTHON=1 to test the pure build"
    )


def test_mxota_version_says_which_walk_runs() -> None:
    from typer.testing import CliRunner

    from analyzer.cli import app

    result = CliRunner().invoke(app, ["version"])
    assert result.exit_code == 0
    expected = "compiled with mypyc" if units.walk_is_compiled() else "in pure Python"
    assert result.stdout.startswith("mxota ") and f"(unit walk {expected})" in result.stdout
    assert units.walk_is_compiled() is not str(units.__file__).endswith(".py")
    source = pure_units()
    if source is not None:
        assert source.walk_is_compiled() is False


def test_the_compiled_walk_is_built_from_its_source() -> None:
    """An editable install keeps the compiled module beside the source it was built from; one built
    before the source last changed would test and run old code."""
    if not units.walk_is_compiled():
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
    assert memo.code_fingerprint(sources) == memo.READER


@pytest.mark.corpus
def test_compiled_and_source_walks_agree_on_the_corpus(corpus: Path) -> None:
    if not units.walk_is_compiled():
        pytest.skip("the walk runs from its source: nothing to compare")
    walked = 0
    for _, revisions in corpus_revisions(corpus):
        for name, data in unit_contents(revisions[-1]):
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


def test_every_branch_of_the_walk_on_one_hand_made_unit() -> None:
    """Every kind of value bson gives, in the places the walk tells apart: both builds find the same
    outline and elements, and the references a reviewer expects (none from texts that name nothing)."""
    import datetime

    from bson.binary import Binary
    from bson.int64 import Int64

    def guid(byte: int) -> bytes:
        return bytes([byte]) * 16

    document: dict[str, object] = {
        "$ID": guid(1),
        "$Type": "Forms$Page",
        "Name": "Home",
        "Caption": "Shop.NotAReference",
        "Url": "Shop.AlsoNot",
        "Documentation": "see Shop.Orders",
        "LayoutCall": "Atlas.PhoneLayout",
        "XPathConstraint": "[Shop.Order_Customer = $currentUser and Shop.Order/Total > 1.5]",
        "Flags": [3],
        "Empty": [],
        "Count": Int64(7),
        "Enabled": True,
        "Ratio": 0.5,
        "Nothing": None,
        "Changed": datetime.datetime(2026, 1, 2, 3, 4, 5),
        "Blob": b"\x00\x01",
        "Settings": {"Theme": "Atlas.Dark", "Depth": {"Level": 3}},
        "Widgets": [
            2,
            {"$ID": Binary(guid(2), 3), "$Type": "Pages$ActionButton", "Name": "save", "Action": "Shop.Save"},
            {"$ID": guid(3), "$Type": "Pages$Text", "ParentPointer": guid(1), "OtherPointer": Binary(guid(9), 4)},
        ],
        "Entity": {"$ID": guid(4), "$Type": "DomainModels$EntityImpl", "Name": "Order", "Attributes": [
            3, {"$ID": guid(5), "$Type": "DomainModels$Attribute", "Name": "Total", "Value": "Shop.Order.Total"}
        ]},
        "Values": [1, "Shop.Listed", 2, None],
        "Mixed": [2, {"$ID": guid(6), "$Type": "T", "Name": "x"}, {"plain": "Shop.InPlain"}],
    }
    outline = units.UnitOutliner("hand-made", 256).read(document, parent=None, name_prefix="Module", qualify=True)
    reader = units.UnitReader("00000000-0000-0000-0000-000000000000", "hand-made", 256)
    elements = reader.read(document, parent=None, slot="Documents", name_prefix="Module", qualify=True)
    assert outline == outline_of(elements)
    from_source = walk_from_source(document, DEFAULT_LIMITS, "hand-made")
    if from_source is not None:  # compiled: its source must find the same
        assert from_source == (outline, elements)
    found = {(ref.property, ref.target) for element in outline.referring for ref in element.references}
    assert ("LayoutCall", "Atlas.PhoneLayout") in found
    assert ("Action", "Shop.Save") in found
    assert ("Values", "Shop.Listed") in found
    assert ("Settings.Theme", "Atlas.Dark") in found
    assert ("Mixed.1.plain", "Shop.InPlain") in found
    assert {"Shop.Order_Customer", "Shop.Order"} <= {target for prop, target in found if prop == "XPathConstraint"}
    assert not {target for _, target in found} & {"Shop.NotAReference", "Shop.AlsoNot", "Shop.Orders"}
    assert [named.qualified_name for named in outline.named] == [
        "Module.Home", "Module.Home.save", "Module.Home.Order", "Module.Home.Order.Total", "Module.Home.x"
    ]
    assert outline.count == len(elements) == 6
