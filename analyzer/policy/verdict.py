"""Decide the verdict and the gate from findings and the ``--fail-on`` threshold."""

from __future__ import annotations

from analyzer.model.findings import Finding, Gate, Verdict
from analyzer.model.levels import Level


def decide(findings: tuple[Finding, ...], fail_on: Level, expired_waivers: tuple[str, ...] = ()) -> Verdict:
    """The most severe unwaived level; unclassified changes and expired waivers fail the gate whatever
    the threshold."""
    active = [finding for finding in findings if not finding.waived]
    level = max((finding.level for finding in active), default=Level.NONE)
    unclassified = sum(1 for finding in active if finding.unclassified)
    reasons: list[str] = []
    if unclassified:
        reasons.append(f"{unclassified} change(s) no rule knows")
    at_or_above = sum(1 for finding in active if not finding.unclassified and finding.level >= fail_on)
    if at_or_above:
        reasons.append(f"{at_or_above} finding(s) at or above {fail_on.value}")
    reasons.extend(expired_waivers)
    return Verdict(
        level=level,
        gate=Gate.FAIL if reasons else Gate.PASS,
        fail_on=fail_on,
        unclassified=unclassified,
        reasons=tuple(reasons),
    )
