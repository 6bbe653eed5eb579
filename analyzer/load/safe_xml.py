"""The one way mxota parses XML it did not write itself: no entities, no DTD, no network."""

from __future__ import annotations

from typing import Any

from lxml import etree

from analyzer.errors import InputError
from analyzer.load.files import one_line


def safe_parser(*, huge_tree: bool = False) -> etree.XMLParser:
    """A parser that resolves no entities, loads no DTD and touches no network."""
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=huge_tree
    )


def parse_xml(data: bytes, location: str, *, what: str = "XML", huge_tree: bool = False) -> etree._Element:
    """Parse untrusted XML; a DOCTYPE (DTDs, entity expansion, external entities) is refused outright."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise InputError(location, f"{what} has a DOCTYPE (DTDs and entities are refused)")
    try:
        root = etree.fromstring(data, safe_parser(huge_tree=huge_tree))
    except etree.XMLSyntaxError as exc:
        raise InputError(location, f"malformed XML ({one_line(exc.msg)})") from None
    except (ValueError, etree.LxmlError) as exc:
        raise InputError(location, f"unreadable XML ({one_line(exc)})") from None
    if root is None:
        raise InputError(location, "empty XML document")
    docinfo: Any = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise InputError(location, f"{what} has a DOCTYPE (DTDs and entities are refused)")
    return root
