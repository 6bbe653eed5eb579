"""What one snapshot of a Mendix app is, once read: metadata, units, model elements and side files.

Everything here is plain frozen data so that the layers above can be pure functions, and so that an
app directory and its exported XML snapshot compare equal with ``==``.
"""

from __future__ import annotations

import enum
import functools
import marshal
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple, TypedDict, overload

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


ElementKey = bytes | str
"""An element's ``$ID`` as stored: 16 GUID bytes, or (hand-made models) text. Lookups by id use it so a
load never has to turn a million GUIDs into text that no query asks for."""


def element_key(element_id: str) -> ElementKey:
    """The stored ``$ID`` of an element id: its GUID bytes in .NET order, or the id itself."""
    if len(element_id) == 36 and element_id[8] == "-" and element_id.lower() == element_id:
        try:
            raw = bytes.fromhex(element_id.replace("-", ""))
        except ValueError:
            return element_id
        if len(raw) == 16:
            return raw[3::-1] + raw[5:3:-1] + raw[7:5:-1] + raw[8:]
    return element_id


class NamedElement(NamedTuple):
    """An element with a qualified name: what by-name references resolve to."""

    id: str
    type: str
    qualified_name: str
    parent: str | None


class ReferringElement(NamedTuple):
    """An element with outgoing references, and those references in stored order."""

    id: str
    type: str
    references: tuple[Reference, ...]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class UnitOutline:
    """What the graph needs of one unit, read without building its elements.

    Every question asked of the whole model (what refers to what, which names exist, which units hold
    a native profile) is answered from outlines; :class:`ModelElement` objects are built only for the
    units a check looks into. A loader computes the outline in the same walk order as the elements, so
    ``outline_of(unit.elements)`` equals it (the test suite holds every corpus unit to that).
    """

    root_id: str
    root_type: str
    root_name: str | None
    root_qualified_name: str | None
    count: int
    """How many elements the unit holds."""
    named: tuple[NamedElement, ...]
    """Elements with a qualified name, depth-first."""
    referring_stored: tuple[ReferringElement, ...] | bytes
    """:attr:`referring`, or (read back from a cache) the bytes of :func:`pack_referring` it is unpacked
    from on first use: most units' references are never looked at one by one in a check."""
    keys: tuple[ElementKey, ...] | bytes
    """The stored ``$ID`` of every element (see :func:`element_key`); as one string of 16-byte GUIDs
    when read back from a cache (split only if a lookup ever needs them, see :meth:`element_keys`)."""
    types: frozenset[str]
    """Every element type in the unit."""
    foreign_pointers: frozenset[str] = frozenset()
    """``...Pointer`` targets of ``referring`` that are not an element of this unit (in a sound model,
    none)."""
    naming: tuple[int, ...] = ()
    """Positions in ``referring`` of the elements with a by-name or in-text reference (the rest only
    point inside the unit): the graph resolves these up front and the others when asked."""
    naming_ids: tuple[str, ...] = ()
    """The ids of the elements at :attr:`naming`, in order (what the graph needs of them for every unit,
    without unpacking :attr:`referring`)."""
    names_used: frozenset[str] = frozenset()
    """Every name the unit refers to by name or in text (the targets of the references that are not
    ``...Pointer``): what the document graph needs of every unit, without unpacking :attr:`referring`."""

    @property
    def referring(self) -> tuple[ReferringElement, ...]:
        """Elements with references, depth-first: every one with a reference by name or in text, and
        named ones with any reference. An unnamed element that only points inside its unit is not listed
        (most widgets: their GUIDs are only turned into text when the unit is built)."""
        stored = self.referring_stored
        if isinstance(stored, bytes):
            stored = unpack_referring(stored)
            object.__setattr__(self, "referring_stored", stored)  # once: the same rows from then on
        return stored

    def _fields(self) -> tuple[object, ...]:
        return (
            self.root_id,
            self.root_type,
            self.root_name,
            self.root_qualified_name,
            self.count,
            self.named,
            self.referring,
            element_keys(self),
            self.types,
            self.foreign_pointers,
            self.naming,
            self.naming_ids,
            self.names_used,
        )

    def __eq__(self, other: object) -> bool:
        """Equal when they say the same, however each keeps its rows and ids."""
        if not isinstance(other, UnitOutline):
            return NotImplemented
        return self is other or self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # equal outlines need not look alike inside


_KINDS = {kind.value: kind for kind in ReferenceKind}
_REFERRING = functools.partial(tuple.__new__, ReferringElement)
"""A :class:`ReferringElement` from a row of three (its ``_make`` without a Python call per row)."""


def pack_referring(referring: Sequence[ReferringElement]) -> bytes:
    """Referring elements as ``marshal`` bytes of plain rows, for a cache record (see
    :func:`unpack_referring`)."""
    return marshal.dumps(
        tuple(
            (found.id, found.type, tuple((r.property, r.target, r.kind.value) for r in found.references))
            for found in referring
        )
    )


def unpack_referring(packed: bytes) -> tuple[ReferringElement, ...]:
    """The referring elements :func:`pack_referring` packed; ValueError when the bytes are not such rows.

    Only bytes this code packed reach it (a cache record is checked against its SHA-256 and its code
    fingerprint before it is used), so a failure here is a bug, not bad input.
    """
    try:
        rows = marshal.loads(packed)
        return tuple(
            [
                _REFERRING(
                    (element_id, element_type, tuple([new_reference(p, t, _KINDS[k]) for p, t, k in references]))
                )
                for element_id, element_type, references in rows
            ]
        )
    except (ValueError, TypeError, EOFError, KeyError) as exc:
        raise ValueError(
            f"unreadable referring rows in a cached unit record ({type(exc).__name__}); clear the --cache folder"
        ) from None


def element_keys(outline: UnitOutline) -> tuple[ElementKey, ...]:
    """The stored ``$ID`` of every element of an outline, however it keeps them."""
    keys = outline.keys
    if isinstance(keys, bytes):
        return tuple(keys[start : start + 16] for start in range(0, len(keys), 16))
    return keys


class Naming(TypedDict):
    """What an outline keeps of its referring elements' references by name and in text."""

    naming: tuple[int, ...]
    naming_ids: tuple[str, ...]
    names_used: frozenset[str]


def naming_of(referring: Sequence[ReferringElement]) -> Naming:
    """Positions and ids of the referring elements with a reference that is not a ``...Pointer``, and
    the names those references use (the outline fields of the same names)."""
    pointer = ReferenceKind.POINTER
    positions = tuple(
        position
        for position, entry in enumerate(referring)
        if any(reference.kind is not pointer for reference in entry.references)
    )
    return Naming(
        naming=positions,
        naming_ids=tuple(referring[position].id for position in positions),
        names_used=frozenset(
            reference.target
            for position in positions
            for reference in referring[position].references
            if reference.kind is not pointer
        ),
    )


def outline_of(elements: Sequence[ModelElement]) -> UnitOutline:
    """The outline of a unit's elements (root first, depth-first): for models read as elements."""
    root = elements[0]
    own = {e.id for e in elements}
    pointer = ReferenceKind.POINTER
    referring = tuple(
        ReferringElement(e.id, e.type, e.references)
        for e in elements
        if e.references and (e.qualified_name or any(r.kind is not pointer for r in e.references))
    )
    return UnitOutline(
        root_id=root.id,
        root_type=root.type,
        root_name=root.name,
        root_qualified_name=root.qualified_name,
        count=len(elements),
        named=tuple(
            NamedElement(e.id, e.type, e.qualified_name, e.parent) for e in elements if e.qualified_name
        ),
        referring_stored=referring,
        keys=tuple(element_key(e.id) for e in elements),
        types=frozenset(e.type for e in elements),
        foreign_pointers=frozenset(
            r.target for e in referring for r in e.references if r.kind is pointer and r.target not in own
        ),
        **naming_of(referring),
    )


class UnitModel:
    """One unit's elements, built when first asked for, with the outline that stands in until then.

    A loaded model keeps each unit's bytes and a way to build its elements (``build``); both loads of
    a check hand out the same object for a unit whose bytes and place are equal, so it is built at
    most once. Immutable once built: the elements are a pure function of what was read.
    """

    __slots__ = ("_build", "_elements", "outline", "unit_id")

    def __init__(
        self,
        unit_id: str,
        outline: UnitOutline,
        *,
        elements: tuple[ModelElement, ...] | None = None,
        build: Callable[[], tuple[ModelElement, ...]] | None = None,
    ) -> None:
        if elements is None and build is None:
            raise ValueError("a unit model needs its elements or a way to build them")
        self.unit_id = unit_id
        self.outline = outline
        self._elements = elements
        self._build = build

    @classmethod
    def of(cls, unit_id: str, elements: tuple[ModelElement, ...]) -> UnitModel:
        """A unit model of elements already built."""
        return cls(unit_id, outline_of(elements), elements=elements)

    @property
    def built(self) -> bool:
        """Whether the elements exist yet (benchmarks and tests count how many units were built)."""
        return self._elements is not None

    @property
    def elements(self) -> tuple[ModelElement, ...]:
        """The unit's elements, root first, depth-first."""
        if self._elements is None:
            assert self._build is not None
            self._elements = self._build()
            self._build = None  # the bytes it holds are not needed any more
        return self._elements

    def __repr__(self) -> str:
        return f"UnitModel({self.unit_id!r}, {self.outline.count} elements, built={self.built})"


class ElementSequence(Sequence[ModelElement]):
    """A snapshot's elements in canonical order (units by id, depth-first), built unit by unit on use.

    Iterating it builds every unit; the layers above ask :attr:`models` and the outlines instead where
    a question does not need whole elements. Equal sequences hold equal elements; two sequences made of
    the very same unit models are equal without building anything.
    """

    __slots__ = ("_all", "_count", "models")

    def __init__(self, models: Iterable[UnitModel]) -> None:
        self.models: tuple[UnitModel, ...] = tuple(models)
        self._count = sum(model.outline.count for model in self.models)
        self._all: tuple[ModelElement, ...] | None = None

    @classmethod
    def of(cls, elements: Iterable[ModelElement]) -> ElementSequence:
        """Group elements already built into unit models (runs of one unit, in the order given)."""
        grouped: dict[str, list[ModelElement]] = {}
        for element in elements:
            grouped.setdefault(element.unit, []).append(element)
        return cls(UnitModel.of(unit_id, tuple(members)) for unit_id, members in grouped.items())

    def _whole(self) -> tuple[ModelElement, ...]:
        if self._all is None:
            self._all = tuple(element for model in self.models for element in model.elements)
        return self._all

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[ModelElement]:
        if self._all is not None:
            return iter(self._all)
        return (element for model in self.models for element in model.elements)

    @overload
    def __getitem__(self, position: int) -> ModelElement: ...

    @overload
    def __getitem__(self, position: slice) -> Sequence[ModelElement]: ...

    def __getitem__(self, position: int | slice) -> ModelElement | Sequence[ModelElement]:
        return self._whole()[position]

    def of_type(self, types: str | Collection[str]) -> list[ModelElement]:
        """The elements of these types, in canonical order; builds only the units that hold one."""
        wanted = {types} if isinstance(types, str) else set(types)
        return [
            element
            for model in self.models
            if not wanted.isdisjoint(model.outline.types)
            for element in model.elements
            if element.type in wanted
        ]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ElementSequence):
            if len(self.models) == len(other.models) and all(
                mine is theirs for mine, theirs in zip(self.models, other.models, strict=True)
            ):
                return True
            return self._count == other._count and self._whole() == other._whole()
        if isinstance(other, tuple):
            return self._whole() == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._whole())

    def __repr__(self) -> str:
        return f"ElementSequence({len(self.models)} units, {self._count} elements)"


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


def unit_file(unit_id: str) -> str:
    """Where MPR v2 keeps a unit: ``mprcontents/53/6b/536b21ae-....mxunit``."""
    return f"mprcontents/{unit_id[0:2]}/{unit_id[2:4]}/{unit_id}.mxunit"


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
    repository_path: str | None = None
    """Where the app folder sits in its git repository (``""`` at the top, ``"app"`` in a subfolder),
    when it is in one: code scanning and pull-request annotations name files from the repository's top."""
    content_key: str | None = field(default=None, compare=False)
    """A key that names the whole model read (a ``git:`` tree's revision record key, which covers the
    tree, the limits and the reading code), when a cache gave one: equal keys, equal snapshots, so what
    is worked out of one may be kept under it. None for every other source; not part of what the
    source is (a load with a cache and one without give equal sources)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """One snapshot of an app, in canonical order: units by id, elements depth-first per unit."""

    meta: SnapshotMeta
    units: tuple[Unit, ...]
    elements: ElementSequence
    """Every element (a tuple given here, as tests do, is grouped into unit models)."""
    files: tuple[SideFile, ...]
    native: tuple[NativeSetting, ...] = ()
    """The native half (dependencies, widgets, builder configuration, template), flattened and sorted."""
    source: SourceInfo = field(compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.elements, ElementSequence):
            object.__setattr__(self, "elements", ElementSequence.of(self.elements))

    def element_counts(self) -> Mapping[str, int]:
        """How many elements of each ``$Type`` the snapshot holds, sorted by type."""
        counts: dict[str, int] = {}
        for element in self.elements:
            counts[element.type] = counts.get(element.type, 0) + 1
        return MappingProxyType(dict(sorted(counts.items())))
