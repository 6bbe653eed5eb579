"""The Markdown report: a pull-request comment with the verdict first, always under GitHub's size limit.

This module also holds the small vocabulary the other human-facing reporters share: how findings are
grouped into *categories* (unclassified, one per level, waived) and which findings fail the gate.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from analyzer.model.changes import ChangeKind
from analyzer.model.findings import Finding, Gate, Verdict
from analyzer.model.levels import Level
from analyzer.model.report import CheckReport, SideSummary
from analyzer.report.values import show

COMMENT_LIMIT = 65_536
"""GitHub's limit on the body of an issue or pull-request comment, in characters."""
STEP_SUMMARY_LIMIT = 1_000_000
"""Stay under GitHub's 1 MiB limit for one step's job summary (measured in UTF-8 bytes)."""

UNCLASSIFIED_CATEGORY = "unclassified"
WAIVED_CATEGORY = "waived"
CATEGORIES: tuple[str, ...] = (
    UNCLASSIFIED_CATEGORY,
    *(level.value for level in reversed(Level)),
    WAIVED_CATEGORY,
)
"""Report sections, most pressing first: unclassified, each level from ``store`` down, then waived."""

CATEGORY_BLURBS: dict[str, str] = {
    UNCLASSIFIED_CATEGORY: "no rule knows these changes; they fail the gate whatever the threshold",
    Level.STORE.value: "needs a new binary through the app stores",
    Level.DATA_RISK.value: "offline users can lose unsynced data or fail to sync",
    Level.OTA_REDEPLOY.value: "over the air, after redeploying the Mendix runtime",
    Level.OTA.value: "ships in the JS bundle over the air",
    Level.NONE.value: "cannot reach the app",
    WAIVED_CATEGORY: "accepted with a recorded reason; they do not count towards the verdict",
}

_EMOJI: dict[str, str] = {
    UNCLASSIFIED_CATEGORY: "🟣",
    Level.STORE.value: "🔴",
    Level.DATA_RISK.value: "🟠",
    Level.OTA_REDEPLOY.value: "🟡",
    Level.OTA.value: "🔵",
    Level.NONE.value: "⚪",
    WAIVED_CATEGORY: "⏸️",
}


def finding_category(finding: Finding) -> str:
    """The report section of a finding: ``waived``, ``unclassified``, or its level's name."""
    if finding.waived:
        return WAIVED_CATEGORY
    if finding.unclassified:
        return UNCLASSIFIED_CATEGORY
    return finding.level.value


def fails_gate(finding: Finding, verdict: Verdict) -> bool:
    """Whether this finding alone fails the gate (the same test the policy layer applies)."""
    if finding.waived:
        return False
    return finding.unclassified or finding.level >= verdict.fail_on


def by_category(findings: Iterable[Finding]) -> dict[str, list[Finding]]:
    """Findings per category, every category present (possibly empty), in report order."""
    groups: dict[str, list[Finding]] = {category: [] for category in CATEGORIES}
    for finding in findings:
        groups[finding_category(finding)].append(finding)
    return groups


def by_document(findings: Iterable[Finding]) -> list[tuple[str, list[Finding]]]:
    """Findings per document name, documents sorted by name, findings in report order."""
    groups: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        groups[finding.change.document_name].append(finding)
    return sorted(groups.items())


def short_type(type_name: str) -> str:
    """``Forms$TextBox`` → ``TextBox``."""
    return type_name.rsplit("$", 1)[-1]


def element_label(finding: Finding) -> str:
    """How a person recognises the changed element; a rename shows both names."""
    change = finding.change
    if change.kind is ChangeKind.RENAMED and change.before_name and change.after_name:
        return f"{change.before_name} → {change.after_name}"
    return change.qualified_name


def gate_headline(verdict: Verdict) -> str:
    """``STORE — gate failed``."""
    gate = "passed" if verdict.gate is Gate.PASS else "failed"
    return f"{verdict.level.value.upper()} — gate {gate}"


# ---------------------------------------------------------------------------------------------- escaping


_MD_SPECIAL = set("\\`*_[]|~#@")


def md_text(text: str) -> str:
    """Plain text safe inside Markdown (and inline HTML): no markup, links, tables or tags survive."""
    out: list[str] = []
    for char in text.replace("\r", "").replace("\n", " "):
        if char == "&":
            out.append("&amp;")
        elif char == "<":
            out.append("&lt;")
        elif char == ">":
            out.append("&gt;")
        elif char in _MD_SPECIAL:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def md_code(text: str) -> str:
    """An inline code span holding ``text`` verbatim, safe in a table cell too."""
    text = text.replace("\r", "").replace("\n", "⏎").replace("|", "¦")
    if not text:
        return "` `"
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


# ------------------------------------------------------------------------------------------------ budget


@dataclass(slots=True)
class _Budget:
    """Counts what has been written, in UTF-8 bytes (never fewer than characters)."""

    left: int

    def take(self, lines: Sequence[str]) -> bool:
        cost = sum(len(line.encode("utf-8")) + 1 for line in lines)
        if cost > self.left:
            return False
        self.left -= cost
        return True


def _finding_lines(finding: Finding, *, max_details: int, max_impacts: int) -> list[str]:
    change = finding.change
    lines = [
        f"- **{md_code(element_label(finding))}** ({md_text(short_type(change.element_type))}) "
        f"{change.kind.value} — {md_text(finding.title)} · {md_code(finding.rule)}"
    ]
    for detail in change.properties[:max_details]:
        follows = " *(follows a rename)*" if detail.path in change.rename_follow_ups else ""
        lines.append(
            f"  - {md_code(detail.path)}: {md_code(show(detail.before, 80))} → "
            f"{md_code(show(detail.after, 80))}{follows}"
        )
    if len(change.properties) > max_details:
        lines.append(f"  - … and {len(change.properties) - max_details} more properties")
    if change.moved_from and change.moved_to:
        lines.append(f"  - moved: {md_code(change.moved_from)} → {md_code(change.moved_to)}")
    if finding.impacts:
        shown = ", ".join(md_code(name) for name in finding.impacts[:max_impacts])
        more = f" and {len(finding.impacts) - max_impacts} more" if len(finding.impacts) > max_impacts else ""
        lines.append(f"  - reaches: {shown}{more}")
    if finding.waived:
        lines.append(f"  - waived ({finding.level.value}): {md_text(finding.waiver_reason or 'no reason given')}")
    return lines


def _none_lines(findings: list[Finding], report: CheckReport) -> list[str]:
    lines = ["| findings | rule | title |", "|---:|---|---|"]
    for rule_id, count in sorted(Counter(f.rule for f in findings).items()):
        rule = report.rules.get(rule_id)
        title = rule.title if rule is not None else rule_id
        lines.append(f"| {count} | {md_code(rule_id)} | {md_text(title)} |")
    return lines


def _side_cells(side: SideSummary) -> list[str]:
    return [
        md_code(side.source.location),
        md_text(side.source.kind.value),
        md_text(side.meta.product_version),
        f"{md_text(side.meta.mpr_format.value)} ({md_code(side.meta.mpr_name)})",
        str(side.units),
        str(side.elements),
        str(side.files),
        f"{side.native_pages} pages, {side.synced_entities} synced entities" if side.native_profile else "none",
    ]


def _snapshot_lines(report: CheckReport) -> list[str]:
    labels = ["source", "kind", "Studio Pro", "MPR", "units", "elements", "side files", "native profile"]
    lines = ["<details><summary>Snapshots</summary>", "", "| | base | head |", "|---|---|---|"]
    for label, base, head in zip(labels, _side_cells(report.base), _side_cells(report.head), strict=True):
        lines.append(f"| {label} | {base} | {head} |")
    lines += ["", "</details>"]
    return lines


def _rule_lines(report: CheckReport, findings: Sequence[Finding]) -> list[str]:
    used = sorted({f.rule for f in findings if not f.unclassified and f.level is not Level.NONE})
    if not used:
        return []
    lines = ["<details><summary>Rules</summary>", ""]
    for rule_id in used:
        rule = report.rules.get(rule_id)
        if rule is None:
            continue
        lines.append(
            f"- {md_code(rule_id)} ({rule.level.value}) **{md_text(rule.title)}** — {md_text(rule.reason)} "
            f"*Advice:* {md_text(rule.advice)} *Source:* {md_text(rule.source)}"
        )
    lines += ["", "</details>"]
    return lines


def markdown_report(report: CheckReport, *, limit: int = COMMENT_LIMIT, heading: str = "##") -> str:
    """The report as Markdown of at most ``limit`` UTF-8 bytes; findings that do not fit are counted."""
    verdict = report.verdict
    icon = "✅" if verdict.gate is Gate.PASS else "❌"
    head = [f"{heading} {icon} mxota: {gate_headline(verdict)}", ""]
    why = "; ".join(verdict.reasons) if verdict.reasons else "nothing at or above the threshold"
    head += [f"Fail-on {md_code(verdict.fail_on.value)}: {md_text(why)}.", ""]
    head += ["| | findings |", "|---|---:|"]
    for category in CATEGORIES:
        count = report.counts.get(category, 0)
        name = f"**{category}**" if count and category in (UNCLASSIFIED_CATEGORY, verdict.level.value) else category
        head.append(f"| {_EMOJI[category]} {name} | {count} |")
    head += ["", "**Next steps**", ""]
    if report.plan.headline:
        head += [f"**{md_text(report.plan.headline)}**", ""]
    head += [f"{number}. {md_text(step)}" for number, step in enumerate(report.plan.steps, start=1)]
    if report.plan.command:
        head += ["", "```sh", report.plan.command, "```"]
    evidence = "; ".join(report.delivery.evidence)
    channel = md_code(report.delivery.channel.value)
    head += ["", f"Over-the-air channel of the released binary: {channel} ({md_text(evidence)})"]
    head.append("")
    tail = ["", *_rule_lines(report, report.findings), "", *_snapshot_lines(report), ""]
    tail.append(f"<sub>mxota {md_text(report.tool_version)} · `mxota explain RULE_ID` explains a rule</sub>")

    reserve = 1_500  # the truncation notice, the closing tags of an open section, and a safety margin
    budget = _Budget(limit - reserve - sum(len(line.encode("utf-8")) + 1 for line in head))
    if not budget.take(tail):
        tail = ["", f"<sub>mxota {md_text(report.tool_version)}</sub>"]
        budget.take(tail)
    body: list[str] = []
    omitted = 0
    full = True
    for category, findings in by_category(report.findings).items():
        if not findings:
            continue
        opening = [
            f"<details><summary>{_EMOJI[category]} <b>{category.upper()}</b> ({len(findings)}) — "
            f"{CATEGORY_BLURBS[category]}</summary>",
            "",
        ]
        closing = ["</details>", ""]
        if not full or not budget.take([*opening, *closing]):
            full = False
            omitted += len(findings)
            continue
        body += opening
        if category == Level.NONE.value:
            table = [*_none_lines(findings, report), ""]
            if budget.take(table):
                body += table
            else:
                omitted += len(findings)
                full = False
            body += closing
            continue
        detailed = category in (UNCLASSIFIED_CATEGORY, Level.STORE.value, Level.DATA_RISK.value, WAIVED_CATEGORY)
        for document, group in by_document(findings):
            title = [f"**{md_text(document)}** ({len(group)})", ""]
            if not full or not budget.take([*title, ""]):
                full = False
                omitted += len(group)
                continue
            body += title
            for index, finding in enumerate(group):
                lines = _finding_lines(finding, max_details=5 if detailed else 2, max_impacts=5 if detailed else 3)
                if not budget.take(lines):
                    full = False
                    omitted += len(group) - index
                    break
                body += lines
            body.append("")
        body += closing
    if omitted:
        body.insert(
            0,
            f"> [!WARNING]\n> {omitted} finding(s) are not listed, to stay under GitHub's size limit; "
            "the counts above include them. See the HTML or JSON report for all of them.\n",
        )
    return "\n".join([*head, *body, *tail]) + "\n"


def render_markdown(report: CheckReport) -> str:
    """A pull-request comment: verdict, counts, next steps, then findings folded per level."""
    return markdown_report(report, limit=COMMENT_LIMIT)
