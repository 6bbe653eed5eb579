"""GitHub Actions output: workflow-command annotations, and the Markdown for the job summary.

Annotations: the verdict first, then one per finding — ``::error`` for findings that fail the gate,
``::warning`` for the remaining store, data-risk and ota-redeploy findings, ``::notice`` for ``ota``
and waived findings; ``none`` findings get none. GitHub shows only a few annotations of each type per
step, so each type is capped and what was left out is counted in a last notice.
"""

from __future__ import annotations

from collections import Counter

from analyzer.model.findings import Finding, Gate
from analyzer.model.levels import Level
from analyzer.model.report import CheckReport
from analyzer.report.markdown import (
    STEP_SUMMARY_LIMIT,
    element_label,
    fails_gate,
    gate_headline,
    markdown_report,
    short_type,
)
from analyzer.report.sarif import artifact_path
from analyzer.report.values import show

MAX_PER_TYPE = 50
"""Annotations of one type to print at most; the rest are counted."""


def escape_data(text: str) -> str:
    """Escape a workflow command's message (``%``, CR and LF), as the Actions runner decodes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command's property value: the message escapes plus ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(kind: str, message: str, **properties: str) -> str:
    """One ``::kind key=value,...::message`` line."""
    props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    return f"::{kind}{' ' + props if props else ''}::{escape_data(message)}"


def annotation_kind(finding: Finding, report: CheckReport) -> str | None:
    """``error``, ``warning``, ``notice`` or ``None`` (no annotation) for one finding."""
    if fails_gate(finding, report.verdict):
        return "error"
    if finding.waived:
        return "notice"
    if finding.level >= Level.OTA_REDEPLOY:
        return "warning"
    if finding.level is Level.OTA:
        return "notice"
    return None


def _message(finding: Finding) -> str:
    change = finding.change
    lines = [
        f"{element_label(finding)} ({short_type(change.element_type)}) {change.kind.value} in {change.document_name}"
    ]
    if finding.waived:
        lines.append(f"Waived: {finding.waiver_reason or 'no reason given'}")
    lines += [f"{d.path}: {show(d.before, 80)} → {show(d.after, 80)}" for d in change.properties[:5]]
    if len(change.properties) > 5:
        lines.append(f"… and {len(change.properties) - 5} more properties")
    if finding.impacts:
        lines.append("Reaches: " + ", ".join(finding.impacts[:10]))
    lines += [f"Why: {finding.reason}", f"What to do: {finding.advice}"]
    return "\n".join(lines)


def render_github(report: CheckReport) -> str:
    """Workflow commands for the job log; GitHub turns them into annotations."""
    verdict = report.verdict
    lines: list[str] = []
    head_kind = "notice" if verdict.gate is Gate.PASS else "error"
    summary = "; ".join(verdict.reasons) if verdict.reasons else "nothing at or above the threshold"
    counts = ", ".join(f"{key} {value}" for key, value in report.counts.items() if value)
    lines.append(
        command(
            head_kind,
            f"fail-on {verdict.fail_on.value}: {summary}.\nFindings: {counts or 'none'}.",
            title=f"mxota: {gate_headline(verdict)}",
        )
    )
    printed: Counter[str] = Counter()
    left_out: Counter[str] = Counter()
    for finding in report.findings:
        kind = annotation_kind(finding, report)
        if kind is None:
            continue
        if printed[kind] >= MAX_PER_TYPE:
            left_out[kind] += 1
            continue
        printed[kind] += 1
        label = "unclassified" if finding.unclassified else finding.level.value
        lines.append(
            command(
                kind,
                _message(finding),
                title=f"mxota {label}: {finding.title} [{finding.rule}]",
                file=artifact_path(finding, report),
            )
        )
    if left_out:
        omitted = ", ".join(f"{count} {kind}" for kind, count in sorted(left_out.items()))
        lines.append(
            command(
                "notice",
                f"{omitted} annotation(s) left out; the job summary and the other reports list every finding.",
                title="mxota: more findings",
            )
        )
    return "\n".join(lines) + "\n"


def render_github_step_summary(report: CheckReport) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY`` (the CLI appends it): the PR comment, with room for more."""
    return markdown_report(report, limit=STEP_SUMMARY_LIMIT)
