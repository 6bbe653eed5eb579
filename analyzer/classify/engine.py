"""Apply the rule set to every change: all matching rules apply, the most severe wins, none is
*unclassified* (and fails the gate)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from analyzer.classify.context import ClassifyContext
from analyzer.classify.facts import FACTS
from analyzer.classify.ruleset import Match, RuleSet, matches
from analyzer.graph.queries import blast_radius, reverse_links
from analyzer.model.changes import Change
from analyzer.model.findings import UNCLASSIFIED, Finding
from analyzer.model.levels import Level

UNCLASSIFIED_TITLE = "No rule knows this change"
UNCLASSIFIED_REASON = (
    "mxota has no rule for this kind of change, so it cannot say whether it can go over the air. "
    "An unknown change fails the gate whatever the threshold."
)
UNCLASSIFIED_ADVICE = (
    "Review the change by hand; if it is safe, waive it in .mxota.toml with a reason and an expiry, "
    "and report the case so a rule can be added."
)


def fingerprint(rule_id: str, change: Change) -> str:
    """Stable across commits: rule id + element GUID + change kind (DESIGN.md section 4)."""
    text = f"{rule_id}|{change.element_id}|{change.kind.value}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def classify(changes: tuple[Change, ...], ruleset: RuleSet, ctx: ClassifyContext) -> tuple[Finding, ...]:
    """One finding per change, in the changes' order."""
    reverse_before = reverse_links(ctx.before_native)
    reverse_after = reverse_links(ctx.after_native)
    none_rules = tuple(loaded for loaded in ruleset.rules if loaded.rule.level is Level.NONE)
    findings: list[Finding] = []
    for change in changes:
        cache: dict[str, bool] = {}

        def fact(name: str, change: Change = change, cache: dict[str, bool] = cache) -> bool:
            if name not in cache:
                cache[name] = FACTS[name].test(change, ctx)
            return cache[name]

        # A change the diff judged unable to reach the app is classified by ``none`` rules only.
        candidates = ruleset.rules if change.no_effect is None else none_rules
        matched = [loaded for loaded in candidates if matches(loaded.match, change, fact)]
        if matched:
            # most severe first, then the most specific, then the first id
            decisive = min(
                matched, key=lambda loaded: (-loaded.rule.level.rank, -specificity(loaded.match), loaded.rule.id)
            )
            level = decisive.rule.level
            rule_id = decisive.rule.id
            title, reason, advice = decisive.rule.title, decisive.rule.reason, decisive.rule.advice
        else:
            level, rule_id = Level.STORE, UNCLASSIFIED
            title, reason, advice = UNCLASSIFIED_TITLE, UNCLASSIFIED_REASON, UNCLASSIFIED_ADVICE
        impacts: tuple[str, ...] = ()
        if level is not Level.NONE:
            impacts = tuple(
                sorted(
                    set(blast_radius(ctx.before, ctx.before_native, change.element_id, reverse_before))
                    | set(blast_radius(ctx.after, ctx.after_native, change.element_id, reverse_after))
                )
            )
        findings.append(
            Finding(
                fingerprint=fingerprint(rule_id, change),
                change=change,
                level=level,
                rule=rule_id,
                rules=tuple(sorted(loaded.rule.id for loaded in matched)),
                title=title,
                reason=reason,
                advice=advice,
                impacts=impacts,
                unclassified=not matched,
            )
        )
    return tuple(findings)


def specificity(match: Match) -> int:
    """How many conditions a rule states: among equally severe rules, the most specific one decides
    (``runtime-url-changed`` over the catch-all ``native-builder-setting-changed``), so its reason and
    advice are the ones shown."""
    fields = (
        match.element, match.document, match.change, match.path, match.not_path, match.any_property,
        match.only_properties, match.no_effect,
    )
    return sum(1 for field in fields if field) + len(match.facts) + len(match.not_facts)


def count_by_level(findings: tuple[Finding, ...]) -> Mapping[str, int]:
    """Findings per level (waived ones excluded), plus ``unclassified`` and ``waived``."""
    counts = {level.value: 0 for level in Level}
    counts["unclassified"] = 0
    counts["waived"] = 0
    for finding in findings:
        if finding.waived:
            counts["waived"] += 1
            continue
        if finding.unclassified:
            counts["unclassified"] += 1
        else:
            counts[finding.level.value] += 1
    return counts
