"""The whole result of a check, as reporters receive it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from analyzer.model.delivery import Channel, Delivery, PushPlan
from analyzer.model.findings import Finding, Rule, Verdict
from analyzer.model.snapshot import SnapshotMeta, SourceInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class SideSummary:
    """One snapshot as the report describes it."""

    source: SourceInfo
    meta: SnapshotMeta
    units: int
    elements: int
    files: int
    native_profile: bool
    native_pages: int
    synced_entities: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckReport:
    """Everything a reporter needs; reporters are pure functions of it."""

    tool_version: str
    base: SideSummary
    head: SideSummary
    findings: tuple[Finding, ...]
    verdict: Verdict
    counts: Mapping[str, int]
    rules: Mapping[str, Rule]
    """Every rule that a finding names, by id (for catalogue sections and SARIF)."""
    delivery: Delivery = field(default_factory=lambda: Delivery(channel=Channel.UNKNOWN, evidence=()))
    """How the released binary (the base) receives over-the-air updates."""
    plan: PushPlan = field(
        default_factory=lambda: PushPlan(mechanism="unknown", headline="", steps=())
    )
    """What to do next, for the verdict and the channel."""
    mode: str = "release"
    """``release`` (base → candidate), ``rollback`` (live → older) or ``initial`` (no released binary yet)."""
    waiver_notes: tuple[str, ...] = ()
    """Expired waivers (they fail the gate) and waivers that matched nothing."""
    config: str | None = None
    """The ``.mxota.toml`` that was applied, if any."""
    pushed: tuple[str, ...] = ()
    """What ``mxota push`` ran after the gate passed: the command line and its exit code."""
