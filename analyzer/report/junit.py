"""JUnit XML: one test case per finding, so CI test views list the changes and the gate's failures.

A finding *fails* when it fails the gate on its own: it is unclassified, or at or above ``--fail-on``,
and not waived. A waived finding is *skipped*, with the waiver's reason, so accepted risks stay
visible in test views. The others pass. One test suite per report section (unclassified, each level, waived).
"""

from __future__ import annotations

from lxml import etree

from analyzer.model.findings import Finding
from analyzer.model.report import CheckReport
from analyzer.report.markdown import (
    WAIVED_CATEGORY,
    by_category,
    element_label,
    fails_gate,
    gate_headline,
    short_type,
)
from analyzer.report.sarif import artifact_path
from analyzer.report.values import describe


def _clean(text: str) -> str:
    """XML 1.0 cannot hold most control characters; replace them rather than fail."""
    return "".join(
        char
        if char in "\t\n\r" or (" " <= char <= "\ud7ff") or ("\ue000" <= char <= "\ufffd") or char >= "\U00010000"
        else "\ufffd"
        for char in text
    )


def _body(finding: Finding) -> str:
    change = finding.change
    lines = [
        f"{element_label(finding)} ({change.element_type}) {change.kind.value} in {change.document_name}",
        f"element id: {change.element_id}",
        f"rule: {finding.rule} ({finding.level.value})",
        f"why: {finding.reason}",
        f"what to do: {finding.advice}",
    ]
    also = [rule for rule in finding.rules if rule != finding.rule]
    if also:
        lines.append("also matched: " + ", ".join(also))
    lines += [f"  {describe(detail, 200)}" for detail in change.properties]
    if change.moved_from and change.moved_to:
        lines.append(f"moved: {change.moved_from} → {change.moved_to}")
    if finding.impacts:
        lines.append("reaches: " + ", ".join(finding.impacts))
    lines.append(f"fingerprint: {finding.fingerprint}")
    return _clean("\n".join(lines))


def junit_tree(report: CheckReport) -> etree._Element:
    """The ``<testsuites>`` element."""
    verdict = report.verdict
    root = etree.Element("testsuites", name=f"mxota: {gate_headline(verdict)}")
    total = failures = skipped = 0
    for category, findings in by_category(report.findings).items():
        if not findings:
            continue
        suite = etree.SubElement(root, "testsuite", name=f"mxota.{category}")
        suite_failures = suite_skipped = 0
        for finding in findings:
            change = finding.change
            case = etree.SubElement(
                suite,
                "testcase",
                name=_clean(f"{element_label(finding)} ({short_type(change.element_type)}) {change.kind.value}"),
                classname=_clean(f"mxota.{category}.{change.document_name}"),
                file=_clean(artifact_path(finding, report)),
            )
            case.set("time", "0")
            if fails_gate(finding, verdict):
                suite_failures += 1
                failure = etree.SubElement(
                    case, "failure", message=_clean(f"{finding.level.value}: {finding.title}"), type=finding.rule
                )
                failure.text = _body(finding)
            elif category == WAIVED_CATEGORY:
                suite_skipped += 1
                skip = etree.SubElement(
                    case, "skipped", message=_clean(f"waived: {finding.waiver_reason or 'no reason given'}")
                )
                skip.text = _body(finding)
            else:
                out = etree.SubElement(case, "system-out")
                out.text = _body(finding)
        suite.set("tests", str(len(findings)))
        suite.set("failures", str(suite_failures))
        suite.set("errors", "0")
        suite.set("skipped", str(suite_skipped))
        suite.set("time", "0")
        total += len(findings)
        failures += suite_failures
        skipped += suite_skipped
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", "0")
    root.set("skipped", str(skipped))
    root.set("time", "0")
    if not report.findings:
        suite = etree.SubElement(root, "testsuite", name="mxota", tests="1", failures="0", errors="0")
        suite.set("skipped", "0")
        suite.set("time", "0")
        etree.SubElement(suite, "testcase", name="no changes", classname="mxota", time="0")
        root.set("tests", "1")
    return root


def render_junit(report: CheckReport) -> str:
    """JUnit XML text with an XML declaration, UTF-8, the same bytes for the same report."""
    data: bytes = etree.tostring(junit_tree(report), xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return data.decode("utf-8")
