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
from typing import Any, Final, NoReturn, TypeGuard

from analyzer.errors import InputError
from analyzer.model.snapshot import (
    NAME_TOKEN,
    TEXT_FIELDS,
    ElementKey,
    ModelElement,
    NamedElement,
    PropertyValue,
    Reference,
    ReferenceKind,
    ReferringElement,
    Scalar,
    UnitOutline,
    naming_of,
    new_element,
    new_reference,
)

QUALIFIED_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$")
"""A by-name reference as Mendix stores it: ``Module.Document``, ``Module.Entity.Attribute``, ..."""

QUALIFYING_TYPES: Final = frozenset({"DomainModels$EntityImpl", "DomainModels$Entity"})
"""Nested elements whose members are qualified by them (attributes of an entity)."""

_TYPES: Final[dict[str, str]] = {}
"""Element type names seen so far: a few hundred strings shared by every element of a type."""
_KEYS: Final[dict[str, str]] = {}
"""Property paths seen so far: each element's properties share one string per path, not one per object
(millions of keys in a large app; a third of the memory of a loaded model)."""

NOT_REFERENCES: Final = frozenset({"Name", "Documentation", "Caption", "Text", "Url", "Class", "Style"})
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
            references.append(new_reference(path, token, ReferenceKind.TEXT))


def _list_items(value: list[Any]) -> list[Any]:
    """A BSON list without its leading marker (an int that says what the list holds)."""
    return value[1:] if value and isinstance(value[0], int) and not isinstance(value[0], bool) else value


def _all_objects(items: list[Any]) -> bool:
    """Whether a list holds objects with an ``$ID`` and nothing else: child elements."""
    return bool(items) and all(isinstance(item, dict) and "$ID" in item for item in items)


def _names_in_text(value: object, path: str) -> TypeGuard[str]:
    """Whether a scalar at ``path`` is an expression, XPath or template whose qualified names are kept
    as ``text`` references (a text field that is more than one bare qualified name)."""
    return (
        isinstance(value, str)
        and "." in value
        and path.rsplit(".", 1)[-1] in TEXT_FIELDS
        and not QUALIFIED_NAME.match(value)
    )


class _UnitWalk:
    """What both walks of a unit share: where it is (for messages) and how deep objects may nest."""

    __slots__ = ("_depth_limit", "_location")

    def __init__(self, location: str, depth_limit: int) -> None:
        self._location = location
        self._depth_limit = depth_limit

    def _too_deep(self) -> NoReturn:
        raise InputError(
            self._location,
            f"objects nested more than {self._depth_limit} deep (raise with --limit max_depth=N)",
        )

    def _guid(self, raw: bytes) -> str:
        if len(raw) != 16:
            raise InputError(self._location, f"an $ID of {len(raw)} bytes is not a GUID")
        return guid(raw)


class UnitReader(_UnitWalk):
    """Collects the elements of one unit; a class only to keep the walk's shared state in one place."""

    __slots__ = ("_elements", "_unit_id")

    def __init__(self, unit_id: str, location: str, depth_limit: int) -> None:
        super().__init__(location, depth_limit)
        self._unit_id = unit_id
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
            items = _list_items(value)
            if _all_objects(items):
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
        if _names_in_text(scalar, path):
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



_BSON_SCALARS: Final = (bool, float, int, str, bytes, datetime.datetime)


def _first(pair: tuple[int, object]) -> int:
    return pair[0]


class UnitOutliner(_UnitWalk):
    """Reads one unit's outline: what :class:`UnitReader` would find, without building elements.

    It walks the decoded document exactly as :class:`UnitReader` does (same order, same names, same
    references, same refusals), but keeps only what the graph needs: names, references, element ids and
    types. Properties are neither normalised nor kept; the elements are built from the unit's bytes when
    a check looks into the unit. The test suite holds every corpus unit and generated documents to
    ``outline_of(UnitReader(...).read(...)) == UnitOutliner(...).read(...)``.
    """

    __slots__ = ("_keys", "_named", "_pointers", "_referring", "_types")

    def __init__(self, location: str, depth_limit: int) -> None:
        super().__init__(location, depth_limit)
        self._named: list[NamedElement] = []
        self._referring: list[tuple[int, ReferringElement]] = []
        self._keys: list[ElementKey] = []
        self._types: set[str] = set()
        self._pointers: list[tuple[bytes, str]] = []

    def read(
        self,
        document: dict[str, Any],
        *,
        parent: str | None,
        name_prefix: str | None,
        qualify: bool,
    ) -> UnitOutline:
        """The outline of the unit's root object (arguments as :meth:`UnitReader.read`)."""
        raw_id = document.get("$ID")
        if not isinstance(raw_id, bytes | str):
            raise InputError(self._location, "unit root has no $ID")
        self._object(document, parent, name_prefix, qualify, 1)
        root_type = document["$Type"]
        raw_name = document.get("Name")
        name = raw_name if raw_name.__class__ is str and raw_name else None
        qualified = (f"{name_prefix}.{name}" if name_prefix else name) if name is not None and qualify else None
        own = set(self._keys) if self._pointers else set()
        # Found after their children were walked: back into depth-first order.
        referring = tuple(found for _, found in sorted(self._referring, key=_first))
        return UnitOutline(
            root_id=self._text_id(raw_id),
            root_type=_TYPES.get(root_type, root_type),
            root_name=name,
            root_qualified_name=qualified,
            count=len(self._keys),
            named=tuple(self._named),
            referring_stored=referring,
            keys=tuple(self._keys),
            types=frozenset(self._types),
            foreign_pointers=frozenset(text for raw, text in self._pointers if raw not in own and text not in own),
            **naming_of(referring),
        )

    @staticmethod
    def _pointer(path: str, raw: bytes, references: list[Any]) -> None:
        references.append((path, raw))  # made a Reference only if the element is kept (see _object)

    def _pointer_reference(self, pending: tuple[str, bytes]) -> Reference:
        text = guid(pending[1])
        self._pointers.append((pending[1], text))
        return new_reference(pending[0], text, ReferenceKind.POINTER)

    def _text_id(self, raw: object) -> str:
        """An element id as :class:`UnitReader` writes it (only for the elements an outline keeps)."""
        return self._guid(raw) if isinstance(raw, bytes) else str(raw)

    def _object(
        self, obj: dict[str, object], parent: object, name_prefix: str | None, qualify: bool, depth: int
    ) -> None:
        # Written for mypyc (setup.py): ``isinstance`` and a typed ``dict`` compile to C type checks and
        # dict iteration. bson gives exactly these types, so each branch does what the generic path would.
        if depth > self._depth_limit:
            self._too_deep()
        raw_id = obj["$ID"]
        key: ElementKey
        if isinstance(raw_id, bytes):
            if len(raw_id) != 16:
                self._text_id(raw_id)  # refuses anything but 16 bytes
            key = raw_id if type(raw_id) is bytes else bytes(raw_id)  # a ``Binary``: the same GUID
        else:
            key = str(raw_id)
        type_name = obj.get("$Type")
        if not isinstance(type_name, str):
            raise InputError(self._location, f"object {self._text_id(raw_id)} has no $Type")
        type_name = _TYPES.setdefault(type_name, type_name)
        keys = self._keys
        position = len(keys)
        keys.append(key)
        self._types.add(type_name)
        raw_name = obj.get("Name")
        child_prefix = name_prefix
        element_id: str | None = None
        if isinstance(raw_name, str) and raw_name and qualify:
            qualified = f"{name_prefix}.{raw_name}" if name_prefix else raw_name
            element_id = self._text_id(raw_id)
            self._named.append(
                NamedElement(element_id, type_name, qualified, parent if parent is None else self._parent(parent))
            )
            if depth == 1 or type_name in QUALIFYING_TYPES:
                child_prefix = qualified
        references: list[Any] = []  # References, and (path, GUID bytes) pointers
        for key_name, value in obj.items():
            if isinstance(value, str):
                if "." in value and key_name not in NOT_REFERENCES and key_name != "$Type" and key_name != "$ID":
                    if QUALIFIED_NAME.match(value):
                        references.append(new_reference(key_name, value, ReferenceKind.NAME))
                    elif key_name in TEXT_FIELDS:
                        _text_references(key_name, value, references)
            elif isinstance(value, list):
                # Most lists are a marker and then child objects, or a marker alone (an empty list):
                # keep them off the generic path.
                size = len(value)
                if size == 0:
                    continue
                if type(value[0]) is int:
                    if size == 1:
                        continue
                    children: list[dict[str, object]] = []
                    for index in range(1, size):
                        item = value[index]
                        if not isinstance(item, dict) or "$ID" not in item:
                            break
                        children.append(item)
                    if len(children) == size - 1:
                        for child in children:
                            self._object(child, raw_id, child_prefix, True, depth + 1)
                        continue
                self._value(key_name, value, raw_id, references, child_prefix, depth)
            elif isinstance(value, int):
                continue  # bool and Int64 too
            elif isinstance(value, float) or value is None:
                continue
            elif isinstance(value, bytes):
                if len(value) == 16 and key_name.endswith("Pointer"):
                    self._pointer(key_name, value if type(value) is bytes else bytes(value), references)
            elif isinstance(value, dict) and "$ID" in value:
                self._object(value, raw_id, child_prefix, True, depth + 1)
            elif key_name != "$ID":
                self._value(key_name, value, raw_id, references, child_prefix, depth)
        # Kept: elements with a reference by name or in text, and named ones (an association's
        # ``ParentPointer``). An unnamed element that only points inside its unit (most widgets) is
        # left to its built elements: converting its GUIDs was a third of the walk.
        if references and (element_id is not None or any(not isinstance(r, tuple) for r in references)):
            if element_id is None:
                element_id = self._text_id(raw_id)
            kept = tuple(r if not isinstance(r, tuple) else self._pointer_reference(r) for r in references)
            self._referring.append((position, ReferringElement(element_id, type_name, kept)))

    def _parent(self, parent: object) -> str:
        return parent if isinstance(parent, str) else self._text_id(parent)

    def _value(
        self,
        path: str,
        value: Any,
        owner: object,
        references: list[Any],
        name_prefix: str | None,
        depth: int,
    ) -> None:
        if depth > self._depth_limit and isinstance(value, dict | list):
            self._too_deep()
        if isinstance(value, dict):
            if "$ID" in value:
                self._object(value, owner, name_prefix, True, depth + 1)
                return
            for key, inner in value.items():
                self._value(f"{path}.{key}", inner, owner, references, name_prefix, depth + 1)
            return
        if isinstance(value, list):
            items = _list_items(value)
            if _all_objects(items):
                for item in items:
                    self._object(item, owner, name_prefix, True, depth + 1)
                return
            if all(not isinstance(item, dict | list) for item in items):
                if not items and value and value[0] != 1:
                    return
                for item in items:
                    self._scalar(path, item, references)
                return
            for position, item in enumerate(items):
                self._value(f"{path}.{position}", item, owner, references, name_prefix, depth + 1)
            return
        self._scalar(path, value, references)
        if _names_in_text(value, path):
            _text_references(path, value, references)

    def _scalar(self, path: str, value: Any, references: list[Any]) -> None:
        if value is None or not isinstance(value, _BSON_SCALARS):
            if value is None:
                return
            raise InputError(
                self._location, f"property {path} has an unsupported BSON value ({type(value).__name__})"
            )
        if isinstance(value, str):
            if "." in value and path.rsplit(".", 1)[-1] not in NOT_REFERENCES and QUALIFIED_NAME.match(value):
                references.append(new_reference(path, value, ReferenceKind.NAME))
        elif isinstance(value, bytes) and len(value) == 16 and path.endswith("Pointer"):
            self._pointer(path, bytes(value), references)


def walk_is_compiled() -> bool:
    """Whether this module runs as built by mypyc (setup.py) rather than from its source: ``mxota
    version`` says which, so a team can see what its CI installed."""
    return not __file__.endswith(".py")
