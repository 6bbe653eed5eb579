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
from typing import Any

from lxml import etree

from analyzer.errors import InputError
from analyzer.load.files import one_line
from analyzer.load.limits import Limits
from analyzer.model.native import NativeSetting
from analyzer.model.snapshot import (
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
SCHEMA_VERSION = "1"
_NS = "{" + NAMESPACE + "}"
_XML_UNSAFE = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _schema() -> etree.RelaxNG:
    text = resources.files("analyzer.load").joinpath("snapshot.rng").read_bytes()
    return etree.RelaxNG(etree.fromstring(text, _parser()))


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=True
    )


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


def _render(snapshot: Snapshot) -> bytes:
    root = etree.Element(_NS + "snapshot", nsmap={None: NAMESPACE})  # type: ignore[dict-item]
    root.set("schema-version", SCHEMA_VERSION)
    meta = etree.SubElement(root, _NS + "meta")
    meta.set("mpr-name", snapshot.meta.mpr_name)
    meta.set("mpr-format", snapshot.meta.mpr_format.value)
    if snapshot.meta.format_version is not None:
        meta.set("format-version", str(snapshot.meta.format_version))
    meta.set("product-version", snapshot.meta.product_version)
    meta.set("build-version", snapshot.meta.build_version)
    meta.set("schema-hash", snapshot.meta.schema_hash)
    units = etree.SubElement(root, _NS + "units")
    by_unit: dict[str, list[ModelElement]] = {}
    for element in snapshot.elements:
        by_unit.setdefault(element.unit, []).append(element)
    for unit in snapshot.units:
        node = etree.SubElement(units, _NS + "unit")
        node.set("id", unit.id)
        node.set("type", unit.type)
        if unit.container is not None:
            node.set("container", unit.container)
        node.set("containment", unit.containment)
        node.set("contents-hash", unit.contents_hash)
        node.set("path", unit.path)
        for element in by_unit.get(unit.id, ()):
            _write_element(node, element)
    files = etree.SubElement(root, _NS + "files")
    for side_file in snapshot.files:
        node = etree.SubElement(files, _NS + "file")
        node.set("path", side_file.path)
        node.set("size", str(side_file.size))
        node.set("sha256", side_file.sha256)
    native = etree.SubElement(root, _NS + "native")
    for setting in snapshot.native:
        node = etree.SubElement(native, _NS + "setting")
        node.set("kind", setting.kind)
        _set_text_attribute(node, "key", setting.key)
        _set_text_attribute(node, "value", setting.value)
        if setting.detail:
            _set_text_attribute(node, "detail", setting.detail)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _set_text_attribute(node: etree._Element, name: str, value: str) -> None:
    if _XML_UNSAFE.search(value):
        node.set(name + "-base64", base64.b64encode(value.encode("utf-8")).decode("ascii"))
    else:
        node.set(name, value)


def _write_element(parent: etree._Element, element: ModelElement) -> None:
    node = etree.SubElement(parent, _NS + "element")
    node.set("id", element.id)
    node.set("type", element.type)
    if element.name is not None:
        _set_text_attribute(node, "name", element.name)
    if element.qualified_name is not None:
        _set_text_attribute(node, "qualified-name", element.qualified_name)
    if element.parent is not None:
        node.set("parent", element.parent)
    node.set("slot", element.slot)
    node.set("index", str(element.index))
    for name, value in element.properties.items():
        prop = etree.SubElement(node, _NS + "property")
        prop.set("name", name)
        if isinstance(value, tuple):
            prop.set("type", "list")
            for item in value:
                _write_scalar(etree.SubElement(prop, _NS + "item"), item)
        else:
            _write_scalar(prop, value)
    for reference in element.references:
        ref = etree.SubElement(node, _NS + "reference")
        ref.set("property", reference.property)
        ref.set("kind", reference.kind.value)
        ref.set("target", reference.target)


def _write_scalar(node: etree._Element, value: Scalar) -> None:
    if value is None:
        node.set("type", "null")
    elif isinstance(value, bool):
        node.set("type", "bool")
        node.text = "true" if value else "false"
    elif isinstance(value, int):
        node.set("type", "int")
        node.text = str(value)
    elif isinstance(value, float):
        node.set("type", "float")
        node.text = repr(value)
    else:
        node.set("type", "str")
        if _XML_UNSAFE.search(value):
            node.set("encoding", "base64")
            node.text = base64.b64encode(value.encode("utf-8")).decode("ascii")
        else:
            node.text = value


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
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        # never written by render_snapshot (text is escaped); say so before the parser trips on it
        raise InputError(location, "XML snapshot has a DOCTYPE (DTDs and entities are refused)")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise InputError(location, f"malformed XML ({one_line(exc.msg)})") from None
    except (ValueError, etree.LxmlError) as exc:
        raise InputError(location, f"unreadable XML ({one_line(exc)})") from None
    if root is None:
        raise InputError(location, "empty XML document")
    docinfo: Any = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise InputError(location, "XML snapshot has a DOCTYPE (DTDs and entities are refused)")
    if root.tag != _NS + "snapshot":
        raise InputError(location, f"not an mxota snapshot: root element is {etree.QName(root).localname!r}")
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
        elements=tuple(elements),
        files=files,
        native=native,
        source=SourceInfo(kind=SourceKind.XML_SNAPSHOT, location=location),
    )


def _read_element(node: etree._Element, unit_id: str) -> ModelElement:
    properties: dict[str, PropertyValue] = {}
    references: list[Reference] = []
    for child in node:
        if child.tag == _NS + "property":
            name = child.get("name", "")
            if child.get("type") == "list":
                properties[name] = tuple(_read_scalar(item) for item in child)
            else:
                properties[name] = _read_scalar(child)
        elif child.tag == _NS + "reference":
            references.append(
                Reference(
                    property=child.get("property", ""),
                    target=child.get("target", ""),
                    kind=ReferenceKind(child.get("kind")),
                )
            )
    return ModelElement(
        id=node.get("id", ""),
        type=node.get("type", ""),
        name=_text_attribute(node, "name"),
        qualified_name=_text_attribute(node, "qualified-name"),
        parent=node.get("parent"),
        slot=node.get("slot", ""),
        index=int(node.get("index", "0")),
        unit=unit_id,
        properties=MappingProxyType(properties),
        references=tuple(references),
    )


def _read_scalar(node: etree._Element) -> Scalar:
    kind = node.get("type")
    text = node.text or ""
    if kind == "null":
        return None
    if kind == "bool":
        return text == "true"
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if node.get("encoding") == "base64":
        return base64.b64decode(text, validate=True).decode("utf-8")
    return text
