"""Apply waivers: matching findings are marked waived (and stay in every report); an expired waiver does
not waive and fails the gate; a waiver that matches nothing is reported."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from analyzer.model.config import Waiver
from analyzer.model.findings import Finding


@dataclass(frozen=True, slots=True, kw_only=True)
class WaiverOutcome:
    """Findings after waivers, with what to tell the user about the waivers themselves."""

    findings: tuple[Finding, ...]
    expired: tuple[str, ...]
    """One sentence per expired waiver that still matches a finding (each fails the gate)."""
    unused: tuple[str, ...]
    """One sentence per waiver that matched no finding."""


def _names(finding: Finding) -> set[str]:
    change = finding.change
    return {n for n in (change.element_id, change.qualified_name, change.before_name, change.after_name) if n}


def _matches(waiver: Waiver, finding: Finding) -> bool:
    return waiver.rule in (finding.rule, *finding.rules) and waiver.element in _names(finding)


def apply_waivers(findings: Sequence[Finding], waivers: Sequence[Waiver], today: datetime.date) -> WaiverOutcome:
    """Waive what valid waivers cover; ``today`` is passed in so reports stay reproducible."""
    result: list[Finding] = []
    used: set[int] = set()
    expired: list[str] = []
    for finding in findings:
        waived = finding
        for number, waiver in enumerate(waivers):
            if not _matches(waiver, finding):
                continue
            used.add(number)
            if waiver.expires < today:
                expired.append(
                    f"waiver for {waiver.rule} on {waiver.element} (owner {waiver.owner}) expired on "
                    f"{waiver.expires.isoformat()}"
                )
                continue
            waived = dataclasses.replace(
                finding,
                waived=True,
                waiver_reason=f"{waiver.reason} (owner {waiver.owner}, until {waiver.expires.isoformat()})",
            )
            break
        result.append(waived)
    unused = tuple(
        f"waiver for {w.rule} on {w.element} (owner {w.owner}) matches no finding"
        for number, w in enumerate(waivers)
        if number not in used
    )
    return WaiverOutcome(findings=tuple(result), expired=tuple(sorted(set(expired))), unused=unused)
