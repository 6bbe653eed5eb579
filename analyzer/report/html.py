"""The HTML report: one self-contained page (inline CSS and a little JS, no network) for reviewers.

The page is built from a small view model computed here; the template only lays it out. Everything
model-derived is autoescaped (no ``|safe``). Big reports stay usable: ``none`` findings are folded into
counts per rule, document groups of mild levels start closed, and long rule groups fold their tail.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analyzer.model.findings import Finding, Gate
from analyzer.model.levels import Level
from analyzer.model.report import CheckReport, SideSummary
from analyzer.report.markdown import (
    CATEGORIES,
    CATEGORY_BLURBS,
    UNCLASSIFIED_CATEGORY,
    WAIVED_CATEGORY,
    by_category,
    by_document,
    element_label,
    fails_gate,
    finding_category,
    short_type,
)
from analyzer.report.values import show

if TYPE_CHECKING:
    import jinja2

FOLD_AFTER = 40
"""Findings of one rule in one document shown before the rest fold behind a "show more"."""
OPEN_UP_TO = 150
"""Sections with at most this many findings start with their documents open."""
ALWAYS_OPEN = frozenset({UNCLASSIFIED_CATEGORY, Level.STORE.value, Level.DATA_RISK.value, WAIVED_CATEGORY})
MAX_DETAILS = 30
MAX_IMPACTS = 12
VALUE_LIMIT = 240

CATEGORY_TITLES: dict[str, str] = {
    UNCLASSIFIED_CATEGORY: "Unclassified",
    Level.STORE.value: "Store release",
    Level.DATA_RISK.value: "Data risk",
    Level.OTA_REDEPLOY.value: "OTA after redeploy",
    Level.OTA.value: "Over the air",
    Level.NONE.value: "No effect",
    WAIVED_CATEGORY: "Waived",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class DetailView:
    path: str
    before: str
    after: str
    follows_rename: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingView:
    anchor: str
    category: str
    level: str
    label: str
    element_type: str
    element_type_full: str
    element_id: str
    kind: str
    document: str
    details: tuple[DetailView, ...]
    more_details: int
    moved: tuple[str, str] | None
    impacts: tuple[str, ...]
    more_impacts: int
    rule: str
    rule_anchor: str
    title: str
    also: tuple[tuple[str, str], ...]
    """Other matching rules: (id, anchor)."""
    fails: bool
    unclassified: bool
    waived: bool
    waiver_reason: str
    fingerprint: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleGroupView:
    rule: str
    rule_anchor: str
    title: str
    reason: str
    advice: str
    level: str
    count: int
    shown: tuple[FindingView, ...]
    folded: tuple[FindingView, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentView:
    name: str
    type: str
    count: int
    open: bool
    kinds: str
    groups: tuple[RuleGroupView, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SectionView:
    category: str
    title: str
    blurb: str
    count: int
    documents: tuple[DocumentView, ...]
    by_rule: tuple[RuleGroupView, ...]
    """Only for ``none``: the findings folded into one group per rule."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CountView:
    category: str
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogueEntry:
    rule: str
    anchor: str
    level: str
    title: str
    reason: str
    advice: str
    source: str
    rows: tuple[str, ...]
    file: str
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MetaRow:
    label: str
    base: str
    head: str


def rule_anchor(rule_id: str) -> str:
    """The HTML id of a rule's catalogue entry."""
    return "rule-" + re.sub(r"[^A-Za-z0-9_-]", "_", rule_id)


def _finding_view(finding: Finding, report: CheckReport) -> FindingView:
    change = finding.change
    details = tuple(
        DetailView(
            path=detail.path,
            before=show(detail.before, VALUE_LIMIT),
            after=show(detail.after, VALUE_LIMIT),
            follows_rename=detail.path in change.rename_follow_ups,
        )
        for detail in change.properties[:MAX_DETAILS]
    )
    return FindingView(
        anchor=f"f-{finding.fingerprint}",
        category=finding_category(finding),
        level=finding.level.value,
        label=element_label(finding),
        element_type=short_type(change.element_type),
        element_type_full=change.element_type,
        element_id=change.element_id,
        kind=change.kind.value,
        document=change.document_name,
        details=details,
        more_details=max(0, len(change.properties) - MAX_DETAILS),
        moved=(change.moved_from, change.moved_to) if change.moved_from and change.moved_to else None,
        impacts=finding.impacts[:MAX_IMPACTS],
        more_impacts=max(0, len(finding.impacts) - MAX_IMPACTS),
        rule=finding.rule,
        rule_anchor=rule_anchor(finding.rule),
        title=finding.title,
        also=tuple((rule, rule_anchor(rule)) for rule in finding.rules if rule != finding.rule),
        fails=fails_gate(finding, report.verdict),
        unclassified=finding.unclassified,
        waived=finding.waived,
        waiver_reason=finding.waiver_reason or "",
        fingerprint=finding.fingerprint,
    )


def _rule_groups(findings: list[Finding], report: CheckReport) -> tuple[RuleGroupView, ...]:
    groups: dict[tuple[str, str, str, str], list[Finding]] = defaultdict(list)
    for finding in findings:
        groups[(finding.rule, finding.title, finding.reason, finding.advice)].append(finding)
    views: list[RuleGroupView] = []
    for (rule_id, title, reason, advice), group in groups.items():
        rule = report.rules.get(rule_id)
        finding_views = tuple(_finding_view(finding, report) for finding in group)
        views.append(
            RuleGroupView(
                rule=rule_id,
                rule_anchor=rule_anchor(rule_id),
                title=title,
                reason=reason,
                advice=advice,
                level="unclassified" if rule is None else rule.level.value,
                count=len(group),
                shown=finding_views[:FOLD_AFTER],
                folded=finding_views[FOLD_AFTER:],
            )
        )
    return tuple(views)


def _sections(report: CheckReport) -> tuple[SectionView, ...]:
    sections: list[SectionView] = []
    for category, findings in by_category(report.findings).items():
        if not findings:
            continue
        documents: tuple[DocumentView, ...] = ()
        by_rule: tuple[RuleGroupView, ...] = ()
        if category == Level.NONE.value:
            by_rule = tuple(sorted(_rule_groups(findings, report), key=lambda group: (-group.count, group.rule)))
        else:
            start_open = category in ALWAYS_OPEN or len(findings) <= OPEN_UP_TO
            documents = tuple(
                DocumentView(
                    name=name,
                    type=short_type(group[0].change.document_type),
                    count=len(group),
                    open=start_open,
                    kinds=", ".join(
                        f"{count} {kind}" for kind, count in sorted(Counter(f.change.kind.value for f in group).items())
                    ),
                    groups=_rule_groups(group, report),
                )
                for name, group in by_document(findings)
            )
        sections.append(
            SectionView(
                category=category,
                title=CATEGORY_TITLES[category],
                blurb=CATEGORY_BLURBS[category],
                count=len(findings),
                documents=documents,
                by_rule=by_rule,
            )
        )
    return tuple(sections)


def _catalogue(report: CheckReport) -> tuple[CatalogueEntry, ...]:
    counts = Counter(finding.rule for finding in report.findings)
    entries = [
        CatalogueEntry(
            rule=rule.id,
            anchor=rule_anchor(rule.id),
            level=rule.level.value,
            title=rule.title,
            reason=rule.reason,
            advice=rule.advice,
            source=rule.source,
            rows=rule.rows,
            file=rule.file,
            count=counts.get(rule.id, 0),
        )
        for rule in sorted(report.rules.values(), key=lambda rule: rule.id)
    ]
    known = set(report.rules)
    for finding in report.findings:  # unclassified, or a rule the report does not carry
        if finding.rule in known:
            continue
        known.add(finding.rule)
        entries.append(
            CatalogueEntry(
                rule=finding.rule,
                anchor=rule_anchor(finding.rule),
                level=UNCLASSIFIED_CATEGORY if finding.unclassified else finding.level.value,
                title=finding.title,
                reason=finding.reason,
                advice=finding.advice,
                source="",
                rows=(),
                file="",
                count=counts.get(finding.rule, 0),
            )
        )
    return tuple(entries)


def _side_values(side: SideSummary) -> list[str]:
    meta = side.meta
    return [
        side.source.location,
        side.source.kind.value,
        meta.mpr_name,
        meta.mpr_format.value + (f" (format version {meta.format_version})" if meta.format_version else ""),
        meta.product_version,
        meta.build_version,
        str(side.units),
        str(side.elements),
        str(side.files),
        "yes" if side.native_profile else "no",
        str(side.native_pages),
        str(side.synced_entities),
    ]


_META_LABELS = (
    "Source",
    "Source kind",
    "Project file",
    "MPR format",
    "Studio Pro",
    "Build",
    "Units",
    "Model elements",
    "Side files",
    "Native profile",
    "Native pages",
    "Synced entities",
)


def _meta_rows(report: CheckReport) -> tuple[MetaRow, ...]:
    return tuple(
        MetaRow(label=label, base=base, head=head)
        for label, base, head in zip(_META_LABELS, _side_values(report.base), _side_values(report.head), strict=True)
    )


def _environment() -> jinja2.Environment:
    import jinja2  # here, not at the top: only an HTML report needs it (40 ms of every run's start-up)

    return jinja2.Environment(
        loader=jinja2.PackageLoader("analyzer", "report/templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(report: CheckReport) -> str:
    """The report as one self-contained HTML page; the same report gives the same bytes."""
    verdict = report.verdict
    template = _environment().get_template("report.html.j2")
    return template.render(
        tool_version=report.tool_version,
        verdict=verdict.level.value,
        gate_passed=verdict.gate is Gate.PASS,
        fail_on=verdict.fail_on.value,
        reasons=verdict.reasons,
        counts=tuple(CountView(category=c, count=report.counts.get(c, 0)) for c in CATEGORIES),
        categories=CATEGORIES,
        category_titles=CATEGORY_TITLES,
        total=len(report.findings),
        plan=report.plan.steps,
        plan_headline=report.plan.headline,
        plan_command=report.plan.command or "",
        held_back=report.plan.held_back,
        channel=report.delivery.channel.value,
        channel_evidence=report.delivery.evidence,
        no_channel=report.plan.mechanism == "none",
        mode=report.mode,
        sections=_sections(report),
        catalogue=_catalogue(report),
        meta_rows=_meta_rows(report),
        base_location=report.base.source.location,
        head_location=report.head.source.location,
    )
