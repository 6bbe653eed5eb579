"""What one snapshot of a Mendix app is, once read: metadata, units, model elements and side files.

Everything here is plain frozen data so that the layers above can be pure functions, and so that an
app directory and its exported XML snapshot compare equal with ``==``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from analyzer.model.native import NativeSetting

Scalar = str | int | float | bool | None
"""A decoded BSON leaf. GUIDs, binaries and datetimes are normalised to strings by the loader."""

PropertyValue = Scalar | tuple[Scalar, ...]
"""A property of a model element: a scalar, or a tuple of scalars (a marker-1 BSON list)."""

EMPTY_PROPERTIES: Mapping[str, PropertyValue] = MappingProxyType({})

NAME_TOKEN = re.compile(r"(?<![\w$.])[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
"""A qualified name inside a longer text (XPath, expression, template): ``Module.Entity/Module.Assoc``."""

TEXT_FIELDS = frozenset(
    {
        "XPathConstraint",
        "XpathConstraint",
        "Constraint",
        "Expression",
        "Value",
        "InitialValue",
        "DynamicClasses",
        "ReturnValue",
        "DefaultValue",
        "Template",
        "EntityPath",
        "AttributePath",
    }
)
"""Text properties that can mention qualified names inside a larger expression: their names are kept
as ``text`` references (candidates: the graph keeps those that name an element of the model)."""


class MprFormat(enum.Enum):
    """How the model is stored: v1 keeps unit BSON in SQLite, v2 in ``mprcontents/`` files."""

    V1 = "v1"
    V2 = "v2"


class SourceKind(enum.Enum):
    """Where a snapshot was read from; kept for reports, never part of snapshot equality."""

    APP_DIRECTORY = "app-directory"
    MPR_FILE = "mpr-file"
    APP_PACKAGE = "app-package"
    GIT_REVISION = "git-revision"
    XML_SNAPSHOT = "xml-snapshot"


class ReferenceKind(enum.Enum):
    """A by-name reference (across units), a name inside an expression or XPath, or an in-unit
    ``...Pointer`` to an element ``$ID``."""

    NAME = "name"
    TEXT = "text"
    POINTER = "pointer"


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference:
    """One outgoing reference of an element, as stored: the property path and the raw target."""

    property: str
    target: str
    kind: ReferenceKind


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelElement:
    """One BSON object with an ``$ID``: a unit root (document, module, folder) or a nested element.

    ``slot`` is the property path of the parent that holds this element and ``index`` its position
    there; properties hold only scalars (nested objects without ``$ID`` are folded into dotted paths).
    """

    id: str
    type: str
    name: str | None
    qualified_name: str | None
    parent: str | None
    slot: str
    index: int
    unit: str
    properties: Mapping[str, PropertyValue] = field(default_factory=lambda: EMPTY_PROPERTIES)
    references: tuple[Reference, ...] = ()

    @property
    def label(self) -> str:
        """How a person recognises the element: its qualified name, else its name, else type and id."""
        return self.qualified_name or self.name or f"{self.type} {self.id}"


def _slot_setters(cls: type, names: tuple[str, ...]) -> tuple[Callable[[object, object], None], ...]:
    return tuple(cls.__dict__[name].__set__ for name in names)


_SET_ELEMENT = _slot_setters(
    ModelElement,
    ("id", "type", "name", "qualified_name", "parent", "slot", "index", "unit", "properties", "references"),
)


def new_element(
    element_id: str,
    type_name: str,
    name: str | None,
    qualified_name: str | None,
    parent: str | None,
    slot: str,
    index: int,
    unit: str,
    properties: Mapping[str, PropertyValue],
    references: tuple[Reference, ...],
) -> ModelElement:
    """A :class:`ModelElement`, built the fast way for loaders that build hundreds of thousands.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` and costs about
    three times what setting the slots directly costs; the result is the same (equal, hashable, frozen).
    """
    element = object.__new__(ModelElement)
    s = _SET_ELEMENT
    s[0](element, element_id)
    s[1](element, type_name)
    s[2](element, name)
    s[3](element, qualified_name)
    s[4](element, parent)
    s[5](element, slot)
    s[6](element, index)
    s[7](element, unit)
    s[8](element, properties)
    s[9](element, references)
    return element


_SET_REFERENCE = _slot_setters(Reference, ("property", "target", "kind"))


def new_reference(prop: str, target: str, kind: ReferenceKind) -> Reference:
    """A :class:`Reference`, built the fast way (see :func:`new_element`)."""
    reference = object.__new__(Reference)
    _SET_REFERENCE[0](reference, prop)
    _SET_REFERENCE[1](reference, target)
    _SET_REFERENCE[2](reference, kind)
    return reference


@dataclass(frozen=True, slots=True, kw_only=True)
class Unit:
    """A row of the ``Unit`` table: one separately stored part of the model."""

    id: str
    type: str
    container: str | None
    containment: str
    contents_hash: str
    path: str
    """Where the unit's BSON lives, relative to the app directory (``mprcontents/..`` or the ``.mpr``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SideFile:
    """A file beside the model that can reach the app (styles, JS actions, widgets, native config)."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotMeta:
    """What ``_MetaData`` says about the model, and the name of the ``.mpr`` it came from."""

    mpr_name: str
    mpr_format: MprFormat
    format_version: int | None
    product_version: str
    build_version: str
    schema_hash: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceInfo:
    """How the user named the source and what kind it turned out to be."""

    kind: SourceKind
    location: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """One snapshot of an app, in canonical order: units by id, elements depth-first per unit."""

    meta: SnapshotMeta
    units: tuple[Unit, ...]
    elements: tuple[ModelElement, ...]
    files: tuple[SideFile, ...]
    native: tuple[NativeSetting, ...] = ()
    """The native half (dependencies, widgets, builder configuration, template), flattened and sorted."""
    source: SourceInfo = field(compare=False)

    def element_counts(self) -> Mapping[str, int]:
        """How many elements of each ``$Type`` the snapshot holds, sorted by type."""
        counts: dict[str, int] = {}
        for element in self.elements:
            counts[element.type] = counts.get(element.type, 0) + 1
        return MappingProxyType(dict(sorted(counts.items())))
