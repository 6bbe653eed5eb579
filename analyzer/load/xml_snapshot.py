"""The canonical XML snapshot: written by ``mxota snapshot``, read back as a source.

A team archives one when it ships a binary; later candidates are checked against it. The document has a
stable order (units by id, elements depth-first, files by path), is pretty-printed, and is validated
against ``snapshot.rng`` on every read. The parser resolves no entities, loads no DTD and touches no
network; a document with a DOCTYPE is refused outright.
"""

from __future__ import annotations

import base64
import binascii
import re
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from lxml import etree

from analyzer.errors import InputError
from analyzer.load.files import one_line
from analyzer.load.limits import Limits
from analyzer.load.safe_xml import parse_xml, safe_parser
from analyzer.model.native import NativeSetting
from analyzer.model.snapshot import (
    ElementSequence,
    ModelElement,
    MprFormat,
    PropertyValue,
    Reference,
    ReferenceKind,
    Scalar,
    SideFile,
    Snapshot,
    SnapshotMeta,
    SourceInfo,
    SourceKind,
    Unit,
)

NAMESPACE = "urn:mxota:snapshot:1"
SCHEMA_VERSION = "2"
"""2 added ``text`` references (names inside expressions and XPath); a schema-1 file lacks them."""
_NS = "{" + NAMESPACE + "}"
_XML_UNSAFE = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _schema() -> etree.RelaxNG:
    text = resources.files("analyzer.load").joinpath("snapshot.rng").read_bytes()
    return etree.RelaxNG(etree.fromstring(text, _parser()))


def _parser() -> etree.XMLParser:
    return safe_parser(huge_tree=True)


# ---------------------------------------------------------------------------------------------- write


def render_snapshot(snapshot: Snapshot) -> bytes:
    """The snapshot as canonical, pretty-printed XML bytes (the CLI writes them).

    Text values that XML cannot carry are written in base64; any other text XML cannot carry (a property
    name with a control character, read from a hostile unit) is an input error, not a crash.
    """
    try:
        return _render(snapshot)
    except ValueError as exc:
        raise InputError(
            snapshot.source.location, f"holds text that an XML snapshot cannot carry ({one_line(exc)})"
        ) from None


_ATTRIBUTE_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
)
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})


_PLAIN = re.compile(r"[^&<>\"\n\r\t\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]*\Z")
"""Text that needs neither escaping nor base64: most ids, types and names (checked in one C call)."""


def _attr(value: str) -> str:
    """An attribute value, escaped; text XML cannot carry at all is refused (see ``render_snapshot``)."""
    if _PLAIN.match(value):
        return value
    if _XML_UNSAFE.search(value):
        raise ValueError(f"attribute value {value[:40]!r} holds characters XML cannot carry")
    return value.translate(_ATTRIBUTE_ESCAPES)


def _text_attr(name: str, value: str) -> str:
    """`` name="..."``, or `` name-base64="..."`` for text XML cannot carry."""
    if _PLAIN.match(value):
        return f' {name}="{value}"'
    if _XML_UNSAFE.search(value):
        return f' {name}-base64="{base64.b64encode(value.encode("utf-8")).decode("ascii")}"'
    return f' {name}="{value.translate(_ATTRIBUTE_ESCAPES)}"'


def _render(snapshot: Snapshot) -> bytes:
    """Write the document as text: the same canonical layout lxml would pretty-print, several times faster
    than building an element tree for a model of hundreds of thousands of elements."""
    out: list[str] = ['<?xml version=\'1.0\' encoding=\'UTF-8\'?>\n']
    meta = snapshot.meta
    out.append(f'<snapshot xmlns="{NAMESPACE}" schema-version="{SCHEMA_VERSION}">\n')
    version = f' format-version="{meta.format_version}"' if meta.format_version is not None else ""
    out.append(
        f'  <meta mpr-name="{_attr(meta.mpr_name)}" mpr-format="{meta.mpr_format.value}"{version}'
        f' product-version="{_attr(meta.product_version)}" build-version="{_attr(meta.build_version)}"'
        f' schema-hash="{_attr(meta.schema_hash)}"/>\n'
    )
    by_unit: dict[str, list[ModelElement]] = {}
    for element in snapshot.elements:
        by_unit.setdefault(element.unit, []).append(element)
    out.append("  <units>\n" if snapshot.units else "  <units/>\n")
    for unit in snapshot.units:
        container = f' container="{_attr(unit.container)}"' if unit.container is not None else ""
        opening = (
            f'    <unit id="{_attr(unit.id)}" type="{_attr(unit.type)}"{container}'
            f' containment="{_attr(unit.containment)}" contents-hash="{_attr(unit.contents_hash)}"'
            f' path="{_attr(unit.path)}"'
        )
        members = by_unit.get(unit.id, ())
        if not members:
            out.append(opening + "/>\n")
            continue
        out.append(opening + ">\n")
        for element in members:
            _write_element(out, element)
        out.append("    </unit>\n")
    if snapshot.units:
        out.append("  </units>\n")
    if snapshot.files:
        out.append("  <files>\n")
        for side_file in snapshot.files:
            out.append(
                f'    <file path="{_attr(side_file.path)}" size="{side_file.size}"'
                f' sha256="{_attr(side_file.sha256)}"/>\n'
            )
        out.append("  </files>\n")
    else:
        out.append("  <files/>\n")
    if snapshot.native:
        out.append("  <native>\n")
        for setting in snapshot.native:
            detail = _text_attr("detail", setting.detail) if setting.detail else ""
            out.append(
                f'    <setting kind="{_attr(setting.kind)}"{_text_attr("key", setting.key)}'
                f'{_text_attr("value", setting.value)}{detail}/>\n'
            )
        out.append("  </native>\n")
    else:
        out.append("  <native/>\n")
    out.append("</snapshot>\n")
    return "".join(out).encode("utf-8")


def _write_element(out: list[str], element: ModelElement) -> None:
    head = f'      <element id="{_attr(element.id)}" type="{_attr(element.type)}"'
    if element.name is not None:
        head += _text_attr("name", element.name)
    if element.qualified_name is not None:
        head += _text_attr("qualified-name", element.qualified_name)
    if element.parent is not None:
        head += f' parent="{_attr(element.parent)}"'
    head += f' slot="{_attr(element.slot)}" index="{element.index}"'
    if not element.properties and not element.references:
        out.append(head + "/>\n")
        return
    out.append(head + ">\n")
    for name, value in element.properties.items():
        if isinstance(value, tuple):
            if not value:
                out.append(f'        <property name="{_attr(name)}" type="list"/>\n')
                continue
            out.append(f'        <property name="{_attr(name)}" type="list">\n')
            for item in value:
                out.append("          " + _scalar("item", "", item))
            out.append("        </property>\n")
        else:
            out.append("        " + _scalar("property", f' name="{_attr(name)}"', value))
    for reference in element.references:
        out.append(
            f'        <reference property="{_attr(reference.property)}" kind="{reference.kind.value}"'
            f' target="{_attr(reference.target)}"/>\n'
        )
    out.append("      </element>\n")


def _scalar(tag: str, attributes: str, value: Scalar) -> str:
    if value is None:
        return f'<{tag}{attributes} type="null"/>\n'
    if isinstance(value, bool):
        return f'<{tag}{attributes} type="bool">{"true" if value else "false"}</{tag}>\n'
    if isinstance(value, int):
        return f'<{tag}{attributes} type="int">{value}</{tag}>\n'
    if isinstance(value, float):
        return f'<{tag}{attributes} type="float">{value!r}</{tag}>\n'
    if not value:
        return f'<{tag}{attributes} type="str"/>\n'
    if _PLAIN.match(value):
        return f'<{tag}{attributes} type="str">{value}</{tag}>\n'
    if _XML_UNSAFE.search(value):
        encoded = base64.b64encode(value.encode("utf-8")).decode("ascii")
        return f'<{tag}{attributes} type="str" encoding="base64">{encoded}</{tag}>\n'
    if not value:
        return f'<{tag}{attributes} type="str"/>\n'
    return f'<{tag}{attributes} type="str">{value.translate(_TEXT_ESCAPES)}</{tag}>\n'


# ----------------------------------------------------------------------------------------------- read


def read_snapshot_file(path: Path, spec: str, limits: Limits) -> Snapshot:
    """Read and validate an XML snapshot file."""
    try:
        if path.stat().st_size > limits.max_xml_bytes:
            raise InputError(spec, "XML snapshot is over the size limit (raise with --limit max_xml_bytes=N)")
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(spec, f"cannot read: {exc.strerror}") from None
    return parse_snapshot(data, spec)


def parse_snapshot(data: bytes, location: str) -> Snapshot:
    """Parse XML snapshot bytes; anything but a valid snapshot document is an input error."""
    root = parse_xml(data, location, what="XML snapshot", huge_tree=True)
    if root.tag != _NS + "snapshot":
        raise InputError(location, f"not an mxota snapshot: root element is {etree.QName(root).localname!r}")
    version = root.get("schema-version")
    if version is not None and version != SCHEMA_VERSION and version.isdigit():
        raise InputError(
            location,
            f"XML snapshot has schema version {version}, this mxota reads {SCHEMA_VERSION}: "
            "export it again with this version ('mxota snapshot SOURCE -o FILE')",
        )
    schema = _schema()
    if not schema.validate(root):
        error = schema.error_log.last_error
        detail = f"line {error.line}: {one_line(error.message)}" if error is not None else "invalid"
        raise InputError(location, f"XML snapshot does not match the schema ({detail})")
    try:
        return _build(root, location)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InputError(location, f"XML snapshot has an invalid value ({one_line(exc)})") from None


def _text_attribute(node: etree._Element, name: str) -> str | None:
    plain = node.get(name)
    if plain is not None:
        return plain
    encoded = node.get(name + "-base64")
    if encoded is None:
        return None
    return base64.b64decode(encoded, validate=True).decode("utf-8")


def _build(root: etree._Element, location: str) -> Snapshot:
    meta_node = root.find(_NS + "meta")
    assert meta_node is not None  # guaranteed by the schema
    format_version = meta_node.get("format-version")
    meta = SnapshotMeta(
        mpr_name=meta_node.get("mpr-name", ""),
        mpr_format=MprFormat(meta_node.get("mpr-format")),
        format_version=int(format_version) if format_version is not None else None,
        product_version=meta_node.get("product-version", ""),
        build_version=meta_node.get("build-version", ""),
        schema_hash=meta_node.get("schema-hash", ""),
    )
    units: list[Unit] = []
    elements: list[ModelElement] = []
    seen: set[str] = set()
    for unit_node in root.iterfind(f"{_NS}units/{_NS}unit"):
        unit_id = unit_node.get("id", "")
        if unit_id in seen:
            raise InputError(location, f"XML snapshot has unit {unit_id} twice (line {unit_node.sourceline})")
        seen.add(unit_id)
        units.append(
            Unit(
                id=unit_id,
                type=unit_node.get("type", ""),
                container=unit_node.get("container"),
                containment=unit_node.get("containment", ""),
                contents_hash=unit_node.get("contents-hash", ""),
                path=unit_node.get("path", ""),
            )
        )
        for node in unit_node.iterchildren(_NS + "element"):
            elements.append(_read_element(node, unit_id))
    files = tuple(
        SideFile(path=node.get("path", ""), size=int(node.get("size", "0")), sha256=node.get("sha256", ""))
        for node in root.iterfind(f"{_NS}files/{_NS}file")
    )
    native = tuple(
        NativeSetting(
            kind=node.get("kind", ""),
            key=_text_attribute(node, "key") or "",
            value=_text_attribute(node, "value") or "",
            detail=_text_attribute(node, "detail") or "",
        )
        for node in root.iterfind(f"{_NS}native/{_NS}setting")
    )
    return Snapshot(
        meta=meta,
        units=tuple(units),
        elements=ElementSequence.of(elements),
        files=files,
        native=native,
        source=SourceInfo(kind=SourceKind.XML_SNAPSHOT, location=location),
    )


_PROPERTY_TAG = _NS + "property"
_REFERENCE_TAG = _NS + "reference"
_REFERENCE_KINDS = {kind.value: kind for kind in ReferenceKind}


def _read_element(node: etree._Element, unit_id: str) -> ModelElement:
    properties: dict[str, PropertyValue] = {}
    references: list[Reference] = []
    for child in node:
        tag = child.tag
        if tag == _PROPERTY_TAG:
            attributes = child.attrib
            key = attributes.get("name", "")
            if attributes.get("type") == "list":
                properties[key] = tuple(_read_scalar(item) for item in child)
            else:
                properties[key] = _read_scalar(child)
        elif tag == _REFERENCE_TAG:
            attributes = child.attrib
            references.append(
                Reference(
                    property=attributes.get("property", ""),
                    target=attributes.get("target", ""),
                    kind=_REFERENCE_KINDS[attributes.get("kind", "")],
                )
            )
    own = node.attrib
    name = own.get("name")
    qualified = own.get("qualified-name")
    return ModelElement(
        id=own.get("id", ""),
        type=own.get("type", ""),
        name=name if name is not None else _text_attribute(node, "name"),
        qualified_name=qualified if qualified is not None else _text_attribute(node, "qualified-name"),
        parent=own.get("parent"),
        slot=own.get("slot", ""),
        index=int(own.get("index", "0")),
        unit=unit_id,
        properties=MappingProxyType(properties),
        references=tuple(references),
    )


def _read_scalar(node: etree._Element) -> Scalar:
    attributes = node.attrib
    kind = attributes.get("type")
    text = node.text or ""
    if kind == "str":
        if "encoding" in attributes:
            return base64.b64decode(text, validate=True).decode("utf-8")
        return text
    if kind == "null":
        return None
    if kind == "bool":
        return text == "true"
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    return text
