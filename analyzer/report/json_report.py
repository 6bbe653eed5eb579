"""The JSON report: a public, versioned contract (DESIGN.md section 4), byte-identical across runs."""

from __future__ import annotations

import json
from typing import Any

from analyzer.model.changes import Absent
from analyzer.model.findings import Finding
from analyzer.model.report import CheckReport, SideSummary
from analyzer.report.values import json_value

SCHEMA_VERSION = 1


def _side(side: SideSummary) -> dict[str, Any]:
    return {
        "source": {"kind": side.source.kind.value, "location": side.source.location},
        "studio_pro_version": side.meta.product_version,
        "mpr_format": side.meta.mpr_format.value,
        "mpr_name": side.meta.mpr_name,
        "units": side.units,
        "elements": side.elements,
        "files": side.files,
        "native_profile": side.native_profile,
        "native_pages": side.native_pages,
        "synced_entities": side.synced_entities,
    }


def _finding(finding: Finding) -> dict[str, Any]:
    change = finding.change
    details = [
        {
            "property": detail.path,
            "before": json_value(detail.before),
            "after": json_value(detail.after),
            "before_present": not isinstance(detail.before, Absent),
            "after_present": not isinstance(detail.after, Absent),
            "follows_rename": detail.path in change.rename_follow_ups,
        }
        for detail in change.properties
    ]
    return {
        "fingerprint": finding.fingerprint,
        "rule": finding.rule,
        "rules": list(finding.rules),
        "level": finding.level.value,
        "unclassified": finding.unclassified,
        "change": change.kind.value,
        "element": {
            "id": change.element_id,
            "type": change.element_type,
            "qualified_name": change.qualified_name,
            "before_name": change.before_name,
            "after_name": change.after_name,
        },
        "document": {"id": change.document_id, "type": change.document_type, "name": change.document_name},
        "moved": {"from": change.moved_from, "to": change.moved_to} if change.moved_from else None,
        "matched_by_name": change.matched_by_name,
        "details": details,
        "title": finding.title,
        "reason": finding.reason,
        "advice": finding.advice,
        "impacts": list(finding.impacts),
        "waived": finding.waived,
        "waiver_reason": finding.waiver_reason,
    }


def report_document(report: CheckReport) -> dict[str, Any]:
    """The report as JSON-ready data (also the basis of other machine formats)."""
    verdict = report.verdict
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "mxota", "version": report.tool_version},
        "base": _side(report.base),
        "head": _side(report.head),
        "verdict": verdict.level.value,
        "gate": verdict.gate.value,
        "gate_reasons": list(verdict.reasons),
        "fail_on": verdict.fail_on.value,
        "delivery": {
            "channel": report.delivery.channel.value,
            "evidence": list(report.delivery.evidence),
            "stated_in_config": report.delivery.stated,
        },
        "mode": report.mode,
        "waiver_notes": list(report.waiver_notes),
        "config": report.config,
        "pushed": list(report.pushed),
        "counts": dict(report.counts),
        "findings": [_finding(finding) for finding in report.findings],
        "plan": {
            "mechanism": report.plan.mechanism,
            "headline": report.plan.headline,
            "steps": list(report.plan.steps),
            "command": report.plan.command,
            "held_back": list(report.plan.held_back),
        },
        "rules": {
            rule_id: {
                "level": rule.level.value,
                "title": rule.title,
                "reason": rule.reason,
                "advice": rule.advice,
                "source": rule.source,
                "rows": list(rule.rows),
            }
            for rule_id, rule in report.rules.items()
        },
    }


def render_json(report: CheckReport) -> str:
    """Sorted keys, two-space indent, UTF-8 text: the same inputs give the same bytes."""
    return json.dumps(report_document(report), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
