"""Wire the stages: load both sources, graph, diff, classify, decide. Raises or returns; never prints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from analyzer import __version__
from analyzer.classify.context import ClassifyContext
from analyzer.classify.engine import classify, count_by_level
from analyzer.classify.ruleset import RuleSet, parse_rule_files
from analyzer.diff.diff import diff_indexes
from analyzer.graph.build import build_graph
from analyzer.graph.index import index_snapshot
from analyzer.graph.queries import NativeFacts, analyze_native
from analyzer.load.limits import DEFAULT_LIMITS, Limits
from analyzer.load.rules import read_rule_files
from analyzer.load.sources import load_source
from analyzer.model.levels import Level
from analyzer.model.report import CheckReport, SideSummary
from analyzer.model.snapshot import Snapshot
from analyzer.policy.delivery import detect_delivery
from analyzer.policy.plan import build_plan
from analyzer.policy.verdict import decide


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckOptions:
    """What ``mxota check`` was asked to do."""

    base: str
    head: str
    fail_on: Level = Level.DATA_RISK
    limits: Limits = DEFAULT_LIMITS
    rules_dir: Path | None = None
    cwd: Path | None = None


def load_rules(rules_dir: Path | None = None) -> RuleSet:
    """Read and validate the rule set."""
    return parse_rule_files(read_rule_files(rules_dir))


def run_check(options: CheckOptions) -> CheckReport:
    """Load both sources and check them."""
    ruleset = load_rules(options.rules_dir)
    base = load_source(options.base, cwd=options.cwd, limits=options.limits)
    head = load_source(options.head, cwd=options.cwd, limits=options.limits)
    return check_snapshots(base, head, ruleset, options.fail_on)


def check_snapshots(base: Snapshot, head: Snapshot, ruleset: RuleSet, fail_on: Level) -> CheckReport:
    """The pure part of a check: from two snapshots to the report."""
    before_index, after_index = index_snapshot(base), index_snapshot(head)
    before_graph, after_graph = build_graph(base, before_index), build_graph(head, after_index)
    before_native, after_native = analyze_native(before_graph), analyze_native(after_graph)
    changes = diff_indexes(before_index, after_index, ruleset.no_effect)
    ctx = ClassifyContext(
        before=before_graph,
        after=after_graph,
        before_native=before_native,
        after_native=after_native,
        template_provides=ruleset.template_provides,
        template_versions=ruleset.template_versions,
    )
    findings = classify(changes, ruleset, ctx)
    verdict = decide(findings, fail_on)
    delivery = detect_delivery(before_graph)
    named = {finding.rule for finding in findings} | {rule for finding in findings for rule in finding.rules}
    rules = {loaded.rule.id: loaded.rule for loaded in ruleset.rules if loaded.rule.id in named}
    return CheckReport(
        tool_version=__version__,
        base=_summary(base, before_native),
        head=_summary(head, after_native),
        findings=findings,
        verdict=verdict,
        counts=MappingProxyType(dict(count_by_level(findings))),
        rules=MappingProxyType(dict(sorted(rules.items()))),
        delivery=delivery,
        plan=build_plan(verdict.level, findings, delivery, base.native),
    )


def _summary(snapshot: Snapshot, native: NativeFacts) -> SideSummary:
    return SideSummary(
        source=snapshot.source,
        meta=snapshot.meta,
        units=len(snapshot.units),
        elements=len(snapshot.elements),
        files=len(snapshot.files),
        native_profile=native.has_native_profile,
        native_pages=len(native.native_pages),
        synced_entities=len(native.synced_entities),
    )
