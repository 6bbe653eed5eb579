"""SARIF 2.1.0 for code scanning (GitHub and other SARIF viewers), byte-identical across runs.

A model element has no lines: each result points at the file that stores its unit (the
``mprcontents/…/<id>.mxunit`` file of an MPR v2 app, the ``.mpr`` of an MPR v1 app, or the side file
itself), relative to the app directory, at line 1; ``logicalLocations`` say which element it is.
"""

from __future__ import annotations

import json
import re
from typing import Any, assert_never

from analyzer.model.changes import FILE_TYPE, PROJECT_TYPE, ChangeKind
from analyzer.model.findings import Finding
from analyzer.model.levels import Level
from analyzer.model.report import CheckReport
from analyzer.model.snapshot import MprFormat
from analyzer.report.markdown import short_type
from analyzer.report.values import show

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT_KEY = "mxotaFingerprint/v1"
"""The ``partialFingerprints`` key: rule id + element GUID + change kind, hashed (see the classify engine)."""


def sarif_level(level: Level) -> str:
    """The SARIF ``level`` of an mxota level.

    SARIF has four levels; code scanning shows ``error`` and ``warning`` as problems and ``note`` as
    information, and ``none`` not at all as a problem.

    - ``store`` → ``error``: an over-the-air push cannot deliver the change; shipping it that way breaks
      the app or silently drops the change.
    - ``data-risk`` → ``error``: offline users can lose data; it fails the default threshold and needs a
      mitigation or a recorded acceptance, which is what an error asks for.
    - ``ota-redeploy`` → ``warning``: it can ship over the air, but only in the right order (runtime
      first); getting the order wrong breaks running bundles, so someone should look.
    - ``ota`` → ``note``: ships in the bundle; worth knowing, nothing to fix.
    - ``none`` → ``none``: cannot reach the app; listed for completeness only.

    Unclassified findings are ``error`` whatever their level (see :func:`result_level`). The match is
    exhaustive: a new level is a type error here, never a silent default.
    """
    match level:
        case Level.STORE | Level.DATA_RISK:
            return "error"
        case Level.OTA_REDEPLOY:
            return "warning"
        case Level.OTA:
            return "note"
        case Level.NONE:
            return "none"
        case _:
            assert_never(level)


def result_level(finding: Finding) -> str:
    """Unclassified changes fail the gate whatever the threshold, so they are always errors."""
    return "error" if finding.unclassified else sarif_level(finding.level)


def unit_path(document_id: str, mpr_format: MprFormat, mpr_name: str) -> str:
    """Where a unit is stored, relative to the app directory."""
    match mpr_format:
        case MprFormat.V2:
            return f"mprcontents/{document_id[0:2]}/{document_id[2:4]}/{document_id}.mxunit"
        case MprFormat.V1:
            return mpr_name
        case _:
            assert_never(mpr_format)


_UNIT_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def artifact_path(finding: Finding, report: CheckReport) -> str:
    """The file a finding's change lives in: relative to the top of the git repository when the app is in
    one (its ``repository_path``), else to the app directory.

    A side file is its own path; a model element is in its document's unit (the base snapshot's for a
    removed element, the head's otherwise). Changes without a unit of their own (project metadata,
    native settings gathered from several files) point at the ``.mpr``: the app as a whole.
    """
    change = finding.change
    side = report.base if change.kind is ChangeKind.REMOVED else report.head
    if change.element_type == FILE_TYPE:
        path = change.qualified_name
    elif _UNIT_ID.match(change.document_id):
        path = unit_path(change.document_id, side.meta.mpr_format, side.meta.mpr_name)
    else:
        path = side.meta.mpr_name
    # From the top of the repository when the app is in one: what code scanning and annotations expect.
    folder = side.source.repository_path
    return f"{folder}/{path}" if folder else path


def _rule_name(rule_id: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in rule_id.replace("_", "-").split("-") if part)


def _descriptor(rule_id: str, level: Level | None, title: str, reason: str, advice: str, source: str) -> dict[str, Any]:
    help_text = f"Why: {reason}\n\nWhat to do: {advice}"
    if source:
        help_text += f"\n\nSource: {source}"
    return {
        "id": rule_id,
        "name": _rule_name(rule_id),
        "shortDescription": {"text": title},
        "fullDescription": {"text": reason},
        "help": {"text": help_text},
        "defaultConfiguration": {"level": "error" if level is None else sarif_level(level)},
        "properties": {"mxotaLevel": "unclassified" if level is None else level.value, "tags": ["mendix"]},
    }


def _rule_descriptors(report: CheckReport) -> list[dict[str, Any]]:
    descriptors = [
        _descriptor(rule.id, rule.level, rule.title, rule.reason, rule.advice, rule.source)
        for rule in sorted(report.rules.values(), key=lambda r: r.id)
    ]
    known = set(report.rules)
    for finding in report.findings:  # unclassified, or a rule the report does not carry
        if finding.rule not in known:
            known.add(finding.rule)
            level = None if finding.unclassified else finding.level
            descriptors.append(_descriptor(finding.rule, level, finding.title, finding.reason, finding.advice, ""))
    return descriptors


def _message(finding: Finding) -> str:
    change = finding.change
    text = f"{finding.title}: {change.qualified_name} ({short_type(change.element_type)}) {change.kind.value}"
    if change.document_name and change.document_name != change.qualified_name:
        text += f" in {change.document_name}"
    text += "."
    if change.kind is ChangeKind.RENAMED and change.before_name and change.after_name:
        text += f" Renamed {change.before_name} → {change.after_name}."
    if change.moved_from and change.moved_to:
        text += f" Moved {change.moved_from} → {change.moved_to}."
    if change.properties:
        details = "; ".join(f"{d.path}: {show(d.before, 80)} → {show(d.after, 80)}" for d in change.properties[:5])
        more = f"; and {len(change.properties) - 5} more" if len(change.properties) > 5 else ""
        text += f" Changed {details}{more}."
    if finding.impacts:
        more = f" and {len(finding.impacts) - 10} more" if len(finding.impacts) > 10 else ""
        text += f" Reaches {', '.join(finding.impacts[:10])}{more}."
    text += f" {finding.advice}"
    return text


def _logical_kind(element_type: str) -> str:
    if element_type == FILE_TYPE:
        return "resource"
    if element_type == PROJECT_TYPE:
        return "module"
    return "element"


def _short_name(qualified_name: str, element_type: str) -> str:
    separator = "/" if element_type == FILE_TYPE else "."
    return qualified_name.rsplit(separator, 1)[-1]


def _result(finding: Finding, report: CheckReport, rule_index: dict[str, int]) -> dict[str, Any]:
    change = finding.change
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "ruleIndex": rule_index[finding.rule],
        "level": result_level(finding),
        "kind": "fail",
        "message": {"text": _message(finding)},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": artifact_path(finding, report)},
                    "region": {"startLine": 1},
                },
                "logicalLocations": [
                    {
                        "name": _short_name(change.qualified_name, change.element_type),
                        "fullyQualifiedName": change.qualified_name,
                        "kind": _logical_kind(change.element_type),
                        "properties": {
                            "elementType": change.element_type,
                            "elementId": change.element_id,
                            "document": change.document_name,
                            "documentType": change.document_type,
                        },
                    }
                ],
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: finding.fingerprint},
        "properties": {
            "mxotaLevel": finding.level.value,
            "change": change.kind.value,
            "matchedRules": list(finding.rules),
            "impacts": list(finding.impacts),
            "unclassified": finding.unclassified,
        },
    }
    if finding.waived:
        result["suppressions"] = [
            {"kind": "external", "status": "accepted", "justification": finding.waiver_reason or ""}
        ]
    return result


def sarif_document(report: CheckReport) -> dict[str, Any]:
    """The SARIF log as JSON-ready data."""
    rules = _rule_descriptors(report)
    rule_index = {descriptor["id"]: index for index, descriptor in enumerate(rules)}
    verdict = report.verdict
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "mxota",
                        "version": report.tool_version,
                        "semanticVersion": report.tool_version,
                        "rules": rules,
                    }
                },
                "results": [_result(finding, report, rule_index) for finding in report.findings],
                "columnKind": "unicodeCodePoints",
                "properties": {
                    "verdict": verdict.level.value,
                    "gate": verdict.gate.value,
                    "failOn": verdict.fail_on.value,
                    "gateReasons": list(verdict.reasons),
                    "counts": dict(report.counts),
                    "base": report.base.source.location,
                    "head": report.head.source.location,
                },
            }
        ],
    }


def render_sarif(report: CheckReport) -> str:
    """SARIF 2.1.0 as JSON text: sorted keys, two-space indent, the same bytes for the same report."""
    return json.dumps(sarif_document(report), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
