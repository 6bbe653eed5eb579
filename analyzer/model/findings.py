"""Findings, the verdict, and the whole report: what the classify and policy layers hand to reporters."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from analyzer.model.changes import Change
from analyzer.model.levels import Level

UNCLASSIFIED = "unclassified"
"""Rule id of a change no rule matched; it fails the gate whatever the threshold."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One classification rule, as loaded from ``rules/*.toml``."""

    id: str
    level: Level
    title: str
    reason: str
    advice: str
    source: str
    rows: tuple[str, ...]
    """Rows of the rule table in ``knowledge/native-and-rules.md`` §2 the rule implements."""
    file: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One change with its level, the rule that decided it, and every rule that matched."""

    fingerprint: str
    change: Change
    level: Level
    rule: str
    rules: tuple[str, ...]
    title: str
    reason: str
    advice: str
    impacts: tuple[str, ...]
    """Native pages and nanoflows the profile reaches that lead to the changed element."""
    unclassified: bool = False
    waived: bool = False
    waiver_reason: str | None = None


class Gate(enum.Enum):
    """Whether the release may go ahead."""

    PASS = "pass"
    FAIL = "fail"


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """The most severe level among findings that are not waived, and the gate result."""

    level: Level
    gate: Gate
    fail_on: Level
    unclassified: int
    reasons: tuple[str, ...]
    """Why the gate failed, in words (empty when it passed)."""
