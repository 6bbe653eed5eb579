"""Turn one unit's decoded BSON into model elements.

Every object with an ``$ID`` becomes a :class:`ModelElement`; objects without one are folded into the
owner's property paths. GUIDs are decoded in .NET byte order, the leading marker of every BSON array is
dropped, and qualified names follow the unit containment tree (see ``knowledge/mendix-format.md`` §5).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NoReturn

from analyzer.errors import InputError
from analyzer.model.snapshot import (
    NAME_TOKEN,
    TEXT_FIELDS,
    ModelElement,
    PropertyValue,
    Reference,
    ReferenceKind,
    Scalar,
    new_element,
)

QUALIFIED_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$")
"""A by-name reference as Mendix stores it: ``Module.Document``, ``Module.Entity.Attribute``, ..."""

QUALIFYING_TYPES = frozenset({"DomainModels$EntityImpl", "DomainModels$Entity"})
"""Nested elements whose members are qualified by them (attributes of an entity)."""

_TYPES: dict[str, str] = {}
"""Element type names seen so far: a few hundred strings shared by every element of a type."""
_KEYS: dict[str, str] = {}
"""Property paths seen so far: each element's properties share one string per path, not one per object
(millions of keys in a large app; a third of the memory of a loaded model)."""

NOT_REFERENCES = frozenset({"Name", "Documentation", "Caption", "Text", "Url", "Class", "Style"})
"""Properties whose text is never a reference, even when it looks like ``a.b``."""


def guid(raw: bytes) -> str:
    """A Mendix GUID (.NET ``Guid.ToByteArray()`` order) as the canonical lowercase UUID string.

    Equal to ``str(uuid.UUID(bytes_le=raw))`` (a property test holds it to that), five times faster.
    """
    h = (raw[3::-1] + raw[5:3:-1] + raw[7:5:-1] + raw[8:]).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def contents_hash(data: bytes) -> str:
    """``ContentsHash`` as Studio Pro writes it: base64 of the SHA-256 of the unit's BSON bytes."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def _text_references(path: str, text: str, references: list[Reference]) -> None:
    """Every distinct qualified name inside an expression, XPath or template, as a ``text`` reference."""
    seen: set[str] = set()
    for token in NAME_TOKEN.findall(text):
        if token not in seen:
            seen.add(token)
            references.append(Reference(property=path, target=token, kind=ReferenceKind.TEXT))


class UnitReader:
    """Collects the elements of one unit; a class only to keep the walk's shared state in one place."""

    __slots__ = ("_depth_limit", "_elements", "_location", "_unit_id")

    def __init__(self, unit_id: str, location: str, depth_limit: int) -> None:
        self._unit_id = unit_id
        self._location = location
        self._depth_limit = depth_limit
        self._elements: list[ModelElement] = []

    def read(
        self,
        document: Mapping[str, Any],
        *,
        parent: str | None,
        slot: str,
        name_prefix: str | None,
        qualify: bool,
    ) -> list[ModelElement]:
        """Walk the unit's root object; ``name_prefix`` qualifies the names of its members."""
        if not isinstance(document.get("$ID"), bytes | str):
            raise InputError(self._location, "unit root has no $ID")
        self._object(document, parent, slot, 0, name_prefix, qualify, 1)
        return self._elements

    def _object(
        self,
        obj: Mapping[str, Any],
        parent: str | None,
        slot: str,
        index: int,
        name_prefix: str | None,
        qualify: bool,
        depth: int,
    ) -> None:
        if depth > self._depth_limit:
            self._too_deep()
        raw_id = obj["$ID"]
        if raw_id.__class__ is bytes and len(raw_id) == 16:
            h = (raw_id[3::-1] + raw_id[5:3:-1] + raw_id[7:5:-1] + raw_id[8:]).hex()
            element_id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        else:
            element_id = self._guid(raw_id) if isinstance(raw_id, bytes) else str(raw_id)
        type_name = obj.get("$Type")
        if type_name.__class__ is not str:
            raise InputError(self._location, f"object {element_id} has no $Type")
        type_name = _TYPES.setdefault(type_name, type_name)  # one string per type, not one per object
        raw_name = obj.get("Name")
        name = raw_name if raw_name.__class__ is str and raw_name else None
        if name is not None and qualify:
            qualified: str | None = f"{name_prefix}.{name}" if name_prefix else name
        else:
            qualified = None
        position = len(self._elements)
        self._elements.append(None)  # type: ignore[arg-type]  # placeholder keeps depth-first order
        properties: dict[str, PropertyValue] = {}
        references: list[Reference] = []
        # Members are named after their document (``Module.Page.widget``) or entity
        # (``Module.Entity.Attribute``), not after every named container on the way down.
        child_prefix: str | None = name_prefix
        if qualified is not None and (depth == 1 or type_name in QUALIFYING_TYPES):
            child_prefix = qualified
        for key, value in obj.items():
            cls = value.__class__
            # Plain strings and flags are most properties: keep them off the generic path.
            if cls is str:
                if key == "$Type" or key == "$ID":
                    continue
                if "." in value and key not in NOT_REFERENCES:
                    if QUALIFIED_NAME.match(value):
                        references.append(Reference(property=key, target=value, kind=ReferenceKind.NAME))
                    elif key in TEXT_FIELDS:
                        _text_references(key, value, references)
                properties[_KEYS.setdefault(key, key)] = value
            elif cls is bool or cls is int or value is None:
                properties[_KEYS.setdefault(key, key)] = value
            elif key != "$ID":
                self._value(key, value, element_id, properties, references, child_prefix, depth)
        self._elements[position] = new_element(
            element_id,
            type_name,
            name,
            qualified,
            parent,
            slot,
            index,
            self._unit_id,
            MappingProxyType(properties),
            tuple(references),
        )

    def _value(
        self,
        path: str,
        value: Any,
        owner: str,
        properties: dict[str, PropertyValue],
        references: list[Reference],
        name_prefix: str | None,
        depth: int,
    ) -> None:
        if depth > self._depth_limit and isinstance(value, dict | list):
            self._too_deep()
        if isinstance(value, dict):
            if "$ID" in value:
                self._object(value, owner, path, 0, name_prefix, True, depth + 1)
                return
            for key, inner in value.items():
                self._value(f"{path}.{key}", inner, owner, properties, references, name_prefix, depth + 1)
            return
        if isinstance(value, list):
            items = value[1:] if value and isinstance(value[0], int) and not isinstance(value[0], bool) else value
            if items and all(isinstance(item, dict) and "$ID" in item for item in items):
                for position, item in enumerate(items):
                    self._object(item, owner, path, position, name_prefix, True, depth + 1)
                return
            if all(not isinstance(item, dict | list) for item in items):
                if not items and value and value[0] != 1:
                    return  # an empty list of objects: nothing to record
                scalars = tuple(self._scalar(path, item, references) for item in items)
                properties[_KEYS.setdefault(path, path)] = scalars
                return
            for position, item in enumerate(items):
                self._value(f"{path}.{position}", item, owner, properties, references, name_prefix, depth + 1)
            return
        scalar = properties[_KEYS.setdefault(path, path)] = self._scalar(path, value, references)
        if (
            scalar.__class__ is str
            and "." in scalar
            and path.rsplit(".", 1)[-1] in TEXT_FIELDS
            and not QUALIFIED_NAME.match(scalar)
        ):
            _text_references(path, scalar, references)

    def _scalar(self, path: str, value: Any, references: list[Reference]) -> Scalar:
        if value is None or isinstance(value, bool | float):
            return value
        if isinstance(value, int):
            return int(value)  # bson gives Int64 for int64: keep plain ints so reports print "5"
        if isinstance(value, str):
            if "." in value and path.rsplit(".", 1)[-1] not in NOT_REFERENCES and QUALIFIED_NAME.match(value):
                references.append(Reference(property=path, target=value, kind=ReferenceKind.NAME))
            return value
        if isinstance(value, bytes):
            if len(value) == 16:
                text = self._guid(value)
                if path.endswith("Pointer"):
                    references.append(Reference(property=path, target=text, kind=ReferenceKind.POINTER))
                return f"guid:{text}"
            return f"sha256:{hashlib.sha256(value).hexdigest()}:{len(value)}"
        if isinstance(value, datetime.datetime):
            return f"datetime:{value.isoformat()}"
        raise InputError(self._location, f"property {path} has an unsupported BSON value ({type(value).__name__})")

    def _too_deep(self) -> NoReturn:
        raise InputError(
            self._location,
            f"objects nested more than {self._depth_limit} deep (raise with --limit max_depth=N)",
        )

    def _guid(self, raw: bytes) -> str:
        if len(raw) != 16:
            raise InputError(self._location, f"an $ID of {len(raw)} bytes is not a GUID")
        return guid(raw)
