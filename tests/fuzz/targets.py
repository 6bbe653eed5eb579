"""One fuzz target per input reader: bytes in; an exception other than ``InputError`` (or a broken
oracle assertion) out is a finding. Shared by the atheris driver and the hypothesis engine."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator

from analyzer.errors import InputError
from analyzer.load.native import CONFIG_PATH, read_native_config, read_widget_package
from tests.hostile import (
    APP_V2,
    FUZZ_LIMITS,
    read_snapshot_xml,
    read_unit,
    read_zip,
    snapshot_seed,
    unit_seeds,
    zip_seeds,
)


class MemoryTree:
    """A :class:`~analyzer.load.files.FileTree` of files held in a dict."""

    def __init__(self, files: dict[str, bytes], description: str = "app") -> None:
        self.description = description
        self._files = files

    def paths(self) -> tuple[str, ...]:
        return tuple(sorted(self._files))

    def size(self, path: str) -> int:
        return len(self.read(path))

    def read(self, path: str) -> bytes:
        if path not in self._files:
            raise InputError(f"{self.description}/{path}", "file is missing")
        return self._files[path]

    def read_many(self, paths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        for path in paths:
            yield path, self.read(path)

    def blob_id(self, path: str) -> str | None:
        return None

    @property
    def stable(self) -> bool:
        return True


def fuzz_unit(data: bytes) -> None:
    """BSON unit reader: ``decode_unit`` then ``UnitReader``."""
    read_unit(data)


def fuzz_xml(data: bytes) -> None:
    """XML snapshot reader: ``parse_snapshot`` (and the round trip of whatever it accepts)."""
    read_snapshot_xml(data)


def fuzz_zip(data: bytes) -> None:
    """Zip reader: ``ZipTree`` and every member read."""
    read_zip(data)


def fuzz_widget(data: bytes) -> None:
    """Widget package reader: a ``widgets/*.mpk``."""
    try:
        read_widget_package("widgets/Fuzz.mpk", data, FUZZ_LIMITS, "app/widgets/Fuzz.mpk")
    except InputError as error:
        assert "\n" not in str(error), repr(str(error))


def fuzz_config(data: bytes) -> None:
    """``nativemobile/.config`` reader."""
    tree = MemoryTree({CONFIG_PATH: data, "nativemobile/assets/icons/app@2x.png": b"png"})
    try:
        read_native_config(tree, None, [])
    except InputError as error:
        assert "\n" not in str(error), repr(str(error))


TARGETS: dict[str, Callable[[bytes], None]] = {
    "unit": fuzz_unit,
    "xml": fuzz_xml,
    "zip": fuzz_zip,
    "widget": fuzz_widget,
    "config": fuzz_config,
}


@functools.cache
def seeds(target: str) -> tuple[bytes, ...]:
    """Valid inputs to start from, taken from the example apps."""
    if target == "unit":
        return tuple(unit_seeds())
    if target == "xml":
        return (snapshot_seed(),)
    if target == "zip":
        return tuple(zip_seeds())
    if target == "widget":
        return tuple(path.read_bytes() for path in sorted((APP_V2 / "widgets").glob("*.mpk")))
    if target == "config":
        return ((APP_V2 / CONFIG_PATH).read_bytes(),)
    raise KeyError(target)
