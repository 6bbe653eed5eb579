"""Property-based tests of the input readers (issue #5, part 2).

Arbitrary bytes and arbitrary mutations of valid inputs never make the BSON unit reader, the XML
snapshot reader or the zip reader raise anything but :class:`InputError`, and never yield a result from
a partial read. ``guid()`` matches :mod:`uuid`, and an XML snapshot round trip of generated element
properties is lossless. The default profile keeps this file well under a minute; the long runs live in
``tests/fuzz`` (``MXOTA_FUZZ=1``).
"""

from __future__ import annotations

import functools
import math
import uuid
from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from analyzer.errors import InputError
from analyzer.load.units import guid
from analyzer.load.xml_snapshot import parse_snapshot, render_snapshot
from analyzer.model.snapshot import (
    ElementSequence,
    ModelElement,
    MprFormat,
    PropertyValue,
    Reference,
    ReferenceKind,
    Scalar,
    Snapshot,
    SnapshotMeta,
    SourceInfo,
    SourceKind,
    Unit,
)
from tests.hostile import (
    bson_nested,
    mutate,
    raw_zip,
    read_snapshot_xml,
    read_unit,
    read_zip,
    snapshot_seed,
    unit_seeds,
    zip_seeds,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def _units() -> tuple[bytes, ...]:
    return tuple(unit_seeds())


@functools.cache
def _zips() -> tuple[bytes, ...]:
    return tuple(zip_seeds())


@functools.cache
def _snapshot() -> bytes:
    return snapshot_seed()


operations = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 1 << 20), st.integers(0, 255), st.binary(min_size=1, max_size=16)),
    min_size=1,
    max_size=6,
)


# ------------------------------------------------------------------------------------------- seeds


def test_the_seeds_are_valid() -> None:
    """The oracles accept the unmodified inputs, so a refusal below is about the mutation."""
    assert all(read_unit(seed) for seed in _units())
    assert all(read_zip(seed) is not None for seed in _zips())
    assert read_snapshot_xml(_snapshot()) is not None


# ----------------------------------------------------------------------------------- BSON unit reader


@FAST
@given(st.binary(max_size=512))
@example(b"")
@example(b"\x05\x00\x00\x00\x00")
@example(b"\xff\xff\xff\xff")
@example(b"\x0c\x00\x00\x00\x10a\x00\x01\x00\x00\x00\x00")
@example(  # an $ID of binary subtype 1: the outline keys it as plain bytes, as the elements' id reads
    b"L\x00\x00\x00\x05$ID\x00\x10\x00\x00\x00\x01" + bytes(16) + b"\x02$Type\x00\x10\x00\x00\x00" + bytes(16)
    + b"\x02\x01\x01\x01\x01\x00\x08\x00\x00\x00" + bytes(8) + b"\x00"
)
def test_unit_reader_arbitrary_bytes(data: bytes) -> None:
    read_unit(data)


@FAST
@given(st.binary(min_size=1, max_size=256))
def test_unit_reader_arbitrary_body_with_a_true_length(body: bytes) -> None:
    """Past the length check: the decoder and the walk meet arbitrary content."""
    read_unit((len(body) + 4).to_bytes(4, "little") + body)


@FAST
@given(st.data(), operations)
def test_unit_reader_mutated_units(data: st.DataObject, edits: list[tuple[int, int, int, bytes]]) -> None:
    seed = data.draw(st.sampled_from(_units()))
    read_unit(mutate(seed, edits))


@FAST
@given(st.data())
def test_unit_reader_never_reads_a_prefix(data: st.DataObject) -> None:
    """No proper prefix of a unit is accepted, even with its length prefix fixed to match."""
    seed = data.draw(st.sampled_from(_units()))
    cut = data.draw(st.integers(0, len(seed) - 1))
    assert read_unit(seed[:cut]) is None
    if cut >= 5:
        assert read_unit(cut.to_bytes(4, "little") + seed[4:cut]) is None


@pytest.mark.parametrize("depth", [10, 255, 256, 900, 5000])
@pytest.mark.parametrize("with_ids", [False, True])
def test_unit_reader_deep_nesting(depth: int, with_ids: bool) -> None:
    root = b"\x05$ID\x00" + (16).to_bytes(4, "little") + b"\x00" + b"\x22" * 16
    root += b"\x02$Type\x00" + (2).to_bytes(4, "little") + b"T\x00"
    nested = bson_nested(depth, b"\x05\x00\x00\x00\x00", with_ids=with_ids)
    body = root + b"\x03Deep\x00" + nested
    unit = (len(body) + 5).to_bytes(4, "little") + body + b"\x00"
    elements = read_unit(unit)
    if depth <= 255:  # the root is level 1, the limit 256
        assert elements is not None
        assert len(elements) == (depth + 1 if with_ids else 1)
    else:
        assert elements is None


# ------------------------------------------------------------------------------------------ guid()


@settings(max_examples=2000, deadline=None)
@given(st.binary(min_size=16, max_size=16))
@example(bytes.fromhex("ae216b53d1d0674b97bca97dff59d500"))
def test_guid_matches_uuid_bytes_le(raw: bytes) -> None:
    assert guid(raw) == str(uuid.UUID(bytes_le=raw))


def test_guid_known_value() -> None:
    assert guid(bytes.fromhex("ae216b53d1d0674b97bca97dff59d500")) == "536b21ae-d0d1-4b67-97bc-a97dff59d500"


# ------------------------------------------------------------------------------------- XML snapshot


@FAST
@given(st.binary(max_size=512))
@example(b"")
@example(b"<")
@example(b'<?xml version="1.0" encoding="UTF-16"?><a/>')
@example(b"<snapshot xmlns='urn:mxota:snapshot:1'/>")
def test_snapshot_reader_arbitrary_bytes(data: bytes) -> None:
    read_snapshot_xml(data)


@FAST
@given(st.text(max_size=300))
def test_snapshot_reader_arbitrary_text(text: str) -> None:
    read_snapshot_xml(('<?xml version="1.0"?>\n<snapshot xmlns="urn:mxota:snapshot:1">' + text).encode())


@FAST
@given(operations)
def test_snapshot_reader_mutated_snapshots(edits: list[tuple[int, int, int, bytes]]) -> None:
    read_snapshot_xml(mutate(_snapshot(), edits))


_TOKENS = [
    b'type="int"',
    b'type="float"',
    b'type="bool"',
    b'type="null"',
    b'type="list"',
    b'encoding="base64"',
    b"-base64",
    b"&#0;",
    b"&#x1;",
    b"&lt;",
    b"<![CDATA[x]]>",
    b"<!-- c -->",
    b"<?pi x?>",
    b"\xef\xbb\xbf",
    b"\r\n",
    b"nan",
    b"1e400",
    b"9" * 40,
    b"-0",
    b"</element>",
    b"<item/>",
]


@FAST
@given(st.data())
def test_snapshot_reader_token_splices(data: st.DataObject) -> None:
    """Mutations that speak the vocabulary: swap attribute values and inject XML constructs."""
    seed = bytearray(_snapshot())
    for _ in range(data.draw(st.integers(1, 4))):
        token = data.draw(st.sampled_from(_TOKENS))
        at = data.draw(st.integers(0, len(seed)))
        drop = data.draw(st.integers(0, 12))
        seed[at : at + drop] = token
    read_snapshot_xml(bytes(seed))


@FAST
@given(st.data())
def test_snapshot_reader_never_reads_a_prefix(data: st.DataObject) -> None:
    seed = _snapshot()
    end = seed.rindex(b"</snapshot>") + len(b"</snapshot>")
    cut = data.draw(st.integers(0, end - 1))
    with pytest.raises(InputError):
        parse_snapshot(seed[:cut], "snapshot.xml")


# ------------------------------------------------------------------------------------ round trip

_scalars: st.SearchStrategy[Scalar] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(),
    st.text(alphabet=st.sampled_from("\r\n\t \x00\x01\x08\x0b\x0c\x1f\x7f\x85\u2028\ufffe\uffff\ud7ff\U0001f600ab")),
)
_values: st.SearchStrategy[PropertyValue] = st.one_of(
    _scalars, st.tuples().map(tuple), st.lists(_scalars, max_size=5).map(tuple)
)
_keys = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,20}(\.[A-Za-z0-9_]{1,10}){0,3}", fullmatch=True)
_names = st.one_of(st.none(), st.text(max_size=30), st.text(alphabet="\r\n\x01 é", max_size=5))


def _snapshot_of(elements: list[ModelElement]) -> Snapshot:
    return Snapshot(
        meta=SnapshotMeta(
            mpr_name="App.mpr",
            mpr_format=MprFormat.V2,
            format_version=2,
            product_version="11.6.3",
            build_version="11.6.3",
            schema_hash="{SHA256}x",
        ),
        units=(
            Unit(
                id="11111111-2222-3333-4444-555555555555",
                type="Forms$Page",
                container=None,
                containment="Documents",
                contents_hash="abc=",
                path="mprcontents/11/11/x.mxunit",
            ),
        ),
        elements=ElementSequence.of(elements),
        files=(),
        source=SourceInfo(kind=SourceKind.APP_DIRECTORY, location="app"),
    )


@st.composite
def _elements(draw: st.DrawFn) -> list[ModelElement]:
    count = draw(st.integers(1, 4))
    elements: list[ModelElement] = []
    for index in range(count):
        properties = draw(st.dictionaries(_keys, _values, max_size=8))
        elements.append(
            ModelElement(
                id=str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))),
                type="Forms$Widget",
                name=draw(_names),
                qualified_name=draw(_names),
                parent=None if index == 0 else elements[0].id,
                slot="Widgets",
                index=index,
                unit="11111111-2222-3333-4444-555555555555",
                properties=MappingProxyType(properties),
                references=tuple(
                    Reference(property=key, target=value, kind=ReferenceKind.NAME)
                    for key, value in properties.items()
                    if isinstance(value, str) and value.isidentifier()
                ),
            )
        )
    return elements


def _same(left: PropertyValue, right: PropertyValue) -> bool:
    """Equal and of the same type (``True == 1`` and ``1 == 1.0`` do not count)."""
    if isinstance(left, tuple) and isinstance(right, tuple):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True))
    if type(left) is not type(right):
        return False
    if isinstance(left, float) and isinstance(right, float):
        return left == right and math.copysign(1, left) == math.copysign(1, right)
    return left == right


@FAST
@given(_elements())
def test_xml_round_trip_of_element_properties(elements: list[ModelElement]) -> None:
    snapshot = _snapshot_of(elements)
    again = parse_snapshot(render_snapshot(snapshot), "round-trip.xml")
    assert again == snapshot
    for before, after in zip(snapshot.elements, again.elements, strict=True):
        assert list(before.properties) == list(after.properties)
        for key, value in before.properties.items():
            assert _same(value, after.properties[key]), (key, value, after.properties[key])
        assert before.name == after.name and before.qualified_name == after.qualified_name


@FAST
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_xml_round_trip_of_floats(value: float) -> None:
    element = ModelElement(
        id="22222222-2222-3333-4444-555555555555",
        type="T",
        name=None,
        qualified_name=None,
        parent=None,
        slot="",
        index=0,
        unit="11111111-2222-3333-4444-555555555555",
        properties=MappingProxyType({"F": value}),
    )
    again = parse_snapshot(render_snapshot(_snapshot_of([element])), "floats.xml").elements[0].properties["F"]
    assert isinstance(again, float)
    assert (math.isnan(value) and math.isnan(again)) or _same(value, again)


@FAST
@given(st.dictionaries(st.text(min_size=1, max_size=12), _scalars, min_size=1, max_size=4))
def test_xml_property_names_round_trip_or_are_refused(properties: dict[str, Scalar]) -> None:
    """A property name is a BSON key: arbitrary text. It round-trips, or rendering refuses it cleanly."""
    element = ModelElement(
        id="33333333-2222-3333-4444-555555555555",
        type="T",
        name=None,
        qualified_name=None,
        parent=None,
        slot="",
        index=0,
        unit="11111111-2222-3333-4444-555555555555",
        properties=MappingProxyType(dict(properties)),
    )
    snapshot = _snapshot_of([element])
    try:
        rendered = render_snapshot(snapshot)
    except InputError as error:
        assert "XML" in error.problem
        assume(False)
    assert parse_snapshot(rendered, "names.xml") == snapshot


# --------------------------------------------------------------------------------------- zip reader


@FAST
@given(st.binary(max_size=512))
@example(b"")
@example(b"PK\x05\x06" + bytes(18))
@example(b"PK\x03\x04")
def test_zip_reader_arbitrary_bytes(data: bytes) -> None:
    read_zip(data)


@FAST
@given(st.data(), operations)
def test_zip_reader_mutated_archives(data: st.DataObject, edits: list[tuple[int, int, int, bytes]]) -> None:
    seed = data.draw(st.sampled_from(_zips()))
    read_zip(mutate(seed, edits))


@FAST
@given(st.data())
def test_zip_reader_header_field_mutations(data: st.DataObject) -> None:
    """Rewrite the fields a zip bomb or a path trick would: sizes, method, flags, name bytes, offsets."""
    seed = bytearray(data.draw(st.sampled_from(_zips())))
    signatures = [(b"PK\x03\x04", (6, 8, 18, 22, 26)), (b"PK\x01\x02", (8, 10, 20, 24, 28, 38, 42))]
    for _ in range(data.draw(st.integers(1, 4))):
        signature, fields = data.draw(st.sampled_from(signatures))
        starts = [i for i in range(len(seed) - 4) if seed[i : i + 4] == signature]
        if not starts:
            continue
        start = data.draw(st.sampled_from(starts))
        field = data.draw(st.sampled_from(fields))
        width = 2 if field in (6, 8, 10, 26, 28) else 4
        value = data.draw(st.integers(0, 2 ** (8 * width) - 1))
        seed[start + field : start + field + width] = value.to_bytes(width, "little")
    read_zip(bytes(seed))


@FAST
@given(st.data())
def test_zip_reader_never_reads_a_prefix(data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(_zips()))
    cut = data.draw(st.integers(0, len(seed) - 1))
    assert read_zip(seed[:cut]) is None


# ------------------------------------------------------------------------------ fuzzer regressions


def test_config_permissions_differing_only_in_purpose() -> None:
    """Found by the ``config`` fuzz target: sorting compared a missing purpose (None) with a given one."""
    from tests.fuzz.targets import fuzz_config

    fuzz_config(
        b'{"configurations": {"Default": {"permissions": ['
        b'{"name": "android.permission.CAMERA"}, {"name": "android.permission.CAMERA", "purpose": "x"}]}}}'
    )


def test_zip_entry_name_with_a_line_break() -> None:
    """Found by the ``zip`` fuzz target: an entry name with a newline made a two-line error message."""
    body = b"x"
    archive = raw_zip([("a\nb.js", 0, body, 0x1234, 1)])
    assert read_zip(archive) is None
