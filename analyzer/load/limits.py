"""Caps on what one input may expand to, so a hostile or broken input is refused, not obeyed.

Every cap has a name that ``mxota --limit NAME=VALUE`` (or ``MXOTA_LIMIT_<NAME>``) can raise for
genuinely huge apps; the refusal message names the cap to raise.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from analyzer.errors import UsageError

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Resource limits applied while reading one source."""

    max_unit_bytes: int = 256 * MIB
    """Largest single unit (one BSON document)."""
    max_model_bytes: int = 4096 * MIB
    """All unit contents of one snapshot together."""
    max_elements: int = 20_000_000
    """Model elements (objects with ``$ID``) in one snapshot."""
    max_depth: int = 256
    """Nesting of objects inside one unit."""
    max_archive_bytes: int = 4096 * MIB
    """Total uncompressed size of an app package (``.mpk``) or widget package."""
    max_archive_entries: int = 200_000
    """Entries in one zip archive."""
    max_archive_ratio: int = 200
    """Uncompressed/compressed size of one zip entry (zip-bomb guard)."""
    max_xml_bytes: int = 4096 * MIB
    """Size of an XML snapshot file."""

    def with_overrides(self, overrides: dict[str, str]) -> Limits:
        """Return a copy with ``name=value`` overrides applied; unknown names are a usage error."""
        known = {f.name for f in dataclasses.fields(self)}
        changes: dict[str, int] = {}
        for name, text in overrides.items():
            key = name.strip().lower().replace("-", "_")
            if key not in known:
                raise UsageError(f"unknown limit {name!r}; known limits: {', '.join(sorted(known))}")
            try:
                value = int(text)
            except ValueError:
                raise UsageError(f"limit {name} needs a whole number, not {text!r}") from None
            if value <= 0:
                raise UsageError(f"limit {name} must be positive, not {value}")
            changes[key] = value
        return dataclasses.replace(self, **changes)


DEFAULT_LIMITS = Limits()
