"""The default terminal report: the verdict first, then findings grouped by level and document."""

from __future__ import annotations

from collections import Counter, defaultdict

from analyzer.model.delivery import Channel
from analyzer.model.findings import Finding, Gate
from analyzer.model.levels import Level
from analyzer.model.report import CheckReport, SideSummary
from analyzer.report.values import describe

DETAILED_LEVELS = (Level.STORE, Level.DATA_RISK)
"""Levels whose findings are listed one by one; milder ones are summarised per document."""
MAX_PER_DOCUMENT = 4


def _delivery_lines(report: CheckReport) -> list[str]:
    """The channel, first when the binary has none: then even OTA-eligible changes need the store."""
    delivery = report.delivery
    evidence = "; ".join(delivery.evidence)
    mode = {"rollback": "ROLLBACK: checking a return from the live release to an older one. ",
            "initial": "INITIAL RELEASE: no binary in the stores yet. "}.get(report.mode, "")
    if delivery.channel is Channel.NONE and report.plan.mechanism == "none":
        return [f"{mode}WARNING: the released binary has no over-the-air channel ({evidence}); "
                "even over-the-air-eligible changes need a store release until OTA is switched on."]
    stated = " (stated in .mxota.toml)" if delivery.stated else ""
    return [f"{mode}channel: {delivery.channel.value}{stated} — {evidence}"]


def _side(label: str, side: SideSummary) -> str:
    native = (
        f"native profile, {side.native_pages} native pages, {side.synced_entities} synced entities"
        if side.native_profile
        else "no native profile"
    )
    return (
        f"{label}: {side.source.location} — Studio Pro {side.meta.product_version}, "
        f"MPR {side.meta.mpr_format.value}, {side.units} units, {native}"
    )


def render_gate_line(report: CheckReport) -> str:
    """The verdict in one line: level, gate, threshold and why it failed."""
    verdict = report.verdict
    gate = "PASSED" if verdict.gate is Gate.PASS else "FAILED"
    headline = f"{verdict.level.value.upper()} — gate {gate} (fail-on {verdict.fail_on.value})"
    if verdict.reasons:
        headline += ": " + "; ".join(verdict.reasons)
    return headline


def render_text(report: CheckReport) -> str:
    """The report as plain text for a terminal or a CI log."""
    lines: list[str] = [f"mxota: {render_gate_line(report)}"]
    lines.extend(_delivery_lines(report))
    lines.append(_side("base", report.base))
    lines.append(_side("head", report.head))
    counts = report.counts
    order = [*(level.value for level in reversed(Level)), "unclassified", "waived"]
    lines.append("counts: " + " · ".join(f"{key} {counts.get(key, 0)}" for key in order))
    lines.append("")
    lines.append(f"next: {report.plan.headline}" if report.plan.headline else "next:")
    lines.extend(f"  - {step}" for step in report.plan.steps)
    if report.plan.command:
        lines.append(f"  $ {report.plan.command}")
    if report.plan.held_back:
        lines.append("  held back for the store release (the rest could go over the air without them):")
        lines.extend(f"    · {item}" for item in report.plan.held_back[:20])
        if len(report.plan.held_back) > 20:
            lines.append(f"    · … and {len(report.plan.held_back) - 20} more")
    unclassified = [f for f in report.findings if f.unclassified and not f.waived]
    if unclassified:
        lines.append("")
        lines.append(f"UNCLASSIFIED ({len(unclassified)}) — no rule knows these changes; they fail the gate")
        lines.extend(_detailed(unclassified))
    for level in reversed(Level):
        group = [f for f in report.findings if f.level is level and not f.unclassified and not f.waived]
        if not group:
            continue
        lines.append("")
        if level is Level.NONE:
            lines.append(f"NONE ({len(group)}) — cannot reach the app:")
            by_rule = Counter(f.rule for f in group)
            for rule_id, count in sorted(by_rule.items()):
                lines.append(f"  {count:>5} × {report.rules[rule_id].title} [{rule_id}]")
            continue
        lines.append(f"{level.value.upper()} ({len(group)})")
        lines.extend(_detailed(group) if level in DETAILED_LEVELS else _summarised(group))
    if report.waiver_notes:
        lines.append("")
        lines.append("WAIVERS")
        lines.extend(f"  {note}" for note in report.waiver_notes)
    if report.pushed:
        lines.append("")
        lines.append("pushed: " + " — ".join(report.pushed))
    waived = [f for f in report.findings if f.waived]
    if waived:
        lines.append("")
        lines.append(f"WAIVED ({len(waived)})")
        for finding in waived:
            lines.append(f"  {finding.change.qualified_name} [{finding.rule}]: {finding.waiver_reason}")
    return "\n".join(lines) + "\n"


def _detailed(findings: list[Finding]) -> list[str]:
    lines: list[str] = []
    by_document: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        by_document[finding.change.document_name].append(finding)
    for document in sorted(by_document):
        lines.append(f"  {document}")
        for finding in by_document[document]:
            change = finding.change
            name = change.qualified_name
            if change.kind.value == "renamed" and change.before_name and change.after_name:
                name = f"{change.before_name} → {change.after_name}"
            lines.append(f"    {name} ({_short(change.element_type)}) — {change.kind.value}  [{finding.rule}]")
            lines.append(f"      {finding.title}")
            for detail in change.properties[:3]:
                lines.append(f"      · {describe(detail)}")
            if len(change.properties) > 3:
                lines.append(f"      · … and {len(change.properties) - 3} more properties")
            if change.moved_from and change.moved_to:
                lines.append(f"      · moved: {change.moved_from} → {change.moved_to}")
            if finding.impacts:
                shown = ", ".join(finding.impacts[:5])
                more = f" and {len(finding.impacts) - 5} more" if len(finding.impacts) > 5 else ""
                lines.append(f"      reaches: {shown}{more}")
    return lines


def _summarised(findings: list[Finding]) -> list[str]:
    lines: list[str] = []
    by_document: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        by_document[finding.change.document_name].append(finding)
    for document in sorted(by_document):
        group = by_document[document]
        rules = ", ".join(sorted({f.rule for f in group}))
        if len(group) == 1:
            finding = group[0]
            change = finding.change
            what = change.qualified_name if change.qualified_name != document else _short(change.element_type)
            lines.append(f"  {document}: {what} {change.kind.value}  [{rules}]")
            continue
        kinds = Counter(f.change.kind.value for f in group)
        summary = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
        lines.append(f"  {document}: {len(group)} changes ({summary})  [{rules}]")
        named = [f.change.qualified_name for f in group if f.change.qualified_name != document]
        for name in named[:MAX_PER_DOCUMENT]:
            lines.append(f"      {name}")
        if len(named) > MAX_PER_DOCUMENT:
            lines.append(f"      … and {len(named) - MAX_PER_DOCUMENT} more")
    return lines


def _short(type_name: str) -> str:
    return type_name.rsplit("$", 1)[-1]
