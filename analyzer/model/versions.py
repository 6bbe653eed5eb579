"""Version ranges as ``mendix_version.json`` writes them (node-semver style), and template lookups.

Pure functions over strings, shared by the native reader and the facts that judge Studio Pro upgrades.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from analyzer.model.native import TemplateRange

_VERSION = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?")
_PART = r"(?:\d+|[xX*])"
_COMPARATOR = re.compile(rf"^(>=|<=|>|<|=|\^|~)?\s*v?({_PART}(?:\.{_PART}){{0,2}})(?:-[0-9A-Za-z.-]+)?$")


def _coerce(version: str) -> tuple[int, int, int]:
    """The first three numbers of a version (``10.24.9.81004`` → 10.24.9; ``11.10.0-rc.5`` → 11.10.0)."""
    match = _VERSION.match(version)
    if match is None:
        raise ValueError(f"not a version: {version!r}")
    return int(match.group(1)), int(match.group(2) or 0), int(match.group(3) or 0)


Bound = tuple[str, tuple[int, int, int]]


def _partial(text: str) -> tuple[list[int], int]:
    """Numbers of a partial/wildcard version and how many are given (``10.24.*`` → [10, 24, 0], 2)."""
    parts = text.split(".")
    numbers: list[int] = []
    for part in parts:
        if part in ("x", "X", "*"):
            break
        numbers.append(int(part))
    given = len(numbers)
    return numbers + [0] * (3 - given), given


def _upper(numbers: list[int], given: int) -> tuple[int, int, int]:
    """The exclusive upper bound of a partial version (``10.24`` → 10.25.0, ``10`` → 11.0.0)."""
    if given == 0:
        return (1 << 30, 0, 0)
    bumped = numbers[:given]
    bumped[-1] += 1
    padded = bumped + [0] * (3 - given)
    return padded[0], padded[1], padded[2]


def _comparator(text: str) -> list[Bound]:
    match = _COMPARATOR.match(text)
    if match is None:
        raise ValueError(f"cannot read comparator {text!r}")
    op, version = match.group(1) or "=", match.group(2)
    numbers, given = _partial(version)
    low = (numbers[0], numbers[1], numbers[2])
    if op == "=":
        return [(">=", low), ("<", _upper(numbers, given))] if given < 3 else [("=", low)]
    if op in (">=", "<"):
        return [(op, low)]
    if op == ">":
        return [(">=", _upper(numbers, given))] if given < 3 else [(">", low)]
    if op == "<=":
        return [("<", _upper(numbers, given))] if given < 3 else [("<=", low)]
    if op == "~":
        return [(">=", low), ("<", _upper(numbers, min(max(given, 1), 2)))]
    # caret: bump the first non-zero part among those given
    first = next((index for index in range(given) if numbers[index] != 0), max(given - 1, 0))
    return [(">=", low), ("<", _upper(numbers, first + 1))]


def parse_range(pattern: str) -> list[list[Bound]]:
    """A node-semver style range as OR-ed lists of AND-ed bounds."""
    alternatives: list[list[Bound]] = []
    for alternative in pattern.split("||"):
        text = alternative.strip()
        if not text:
            raise ValueError("empty range")
        hyphen = re.match(r"^(\S+)\s+-\s+(\S+)$", text)
        if hyphen:
            low, _ = _partial(hyphen.group(1))
            high, high_given = _partial(hyphen.group(2))
            upper: list[Bound] = (
                [("<=", (high[0], high[1], high[2]))]
                if high_given == 3
                else [("<", _upper(high, high_given))]
            )
            alternatives.append([(">=", (low[0], low[1], low[2])), *upper])
            continue
        bounds: list[Bound] = []
        for token in re.sub(r"(>=|<=|>|<|=|\^|~)\s+", r"\1", text).split():
            bounds.extend(_comparator(token))
        alternatives.append(bounds)
    return alternatives


def _holds(version: tuple[int, int, int], bound: Bound) -> bool:
    op, value = bound
    if op == ">=":
        return version >= value
    if op == ">":
        return version > value
    if op == "<":
        return version < value
    if op == "<=":
        return version <= value
    return version == value


def version_matches(version: str, pattern: str) -> bool:
    """Whether a version satisfies a node-semver style range (``>=10.22.0``, ``8.8.*``, ``19.*.*``,
    ``*``, ``^1.2``, ``1.2 - 1.4``, ``a || b``). Versions are coerced to three numbers, so Studio Pro
    build numbers and pre-release tags are ignored (``11.10.0-rc.5`` counts as 11.10.0)."""
    coerced = _coerce(version)
    return any(all(_holds(coerced, bound) for bound in bounds) for bounds in parse_range(pattern))


def template_range_for(studio_pro_version: str, ranges: Iterable[TemplateRange]) -> tuple[str, str] | None:
    """The (min, max) template versions for a Studio Pro version: the FIRST entry, in file order,
    whose key the version satisfies (keys overlap; ``"8.8.*"`` sits before ``">=8.7.0"``)."""
    for entry in ranges:
        if version_matches(studio_pro_version, entry.studio_pro_pattern):
            return entry.min, entry.max
    return None
