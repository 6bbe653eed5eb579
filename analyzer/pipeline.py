"""Wire the stages: load both sources, graph, diff, classify, decide. Raises or returns; never prints."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import marshal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import analyzer.graph as graph_package
from analyzer import __version__
from analyzer.classify.context import ClassifyContext
from analyzer.classify.engine import classify, count_by_level
from analyzer.classify.ruleset import RuleSet, parse_rule_files, with_levels
from analyzer.diff.diff import diff_indexes
from analyzer.graph.build import ModelGraph, build_graph
from analyzer.graph.index import SnapshotIndex, index_snapshot
from analyzer.graph.queries import NativeFacts, analyze_native, findings_rows, native_facts_from
from analyzer.load.config import find_config, read_config
from analyzer.load.limits import DEFAULT_LIMITS, Limits
from analyzer.load.memo import (
    Progress,
    ReadMemo,
    UnitStore,
    code_fingerprint,
    open_record,
    record_key,
    seal_record,
)
from analyzer.load.rules import read_rule_files
from analyzer.load.sources import load_source, read_ahead
from analyzer.model.changes import Change, ChangeKind, PropertyChange
from analyzer.model.config import NO_CONFIG, Config
from analyzer.model.delivery import Channel, Delivery
from analyzer.model.levels import Level
from analyzer.model.report import CheckReport, SideSummary
from analyzer.model.snapshot import Snapshot
from analyzer.policy.delivery import detect_delivery
from analyzer.policy.plan import build_plan
from analyzer.policy.verdict import decide
from analyzer.policy.waivers import apply_waivers

DEFAULT_FAIL_ON = Level.DATA_RISK


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckOptions:
    """What ``mxota check`` was asked to do."""

    base: str | None
    """``None`` for ``--initial``: no binary in the stores yet."""
    head: str
    fail_on: Level | None = None
    """``None``: the config's ``fail_on``, else ``data-risk``."""
    limits: Limits = DEFAULT_LIMITS
    rules_dir: Path | None = None
    cwd: Path | None = None
    config_path: Path | None = None
    native_template: str | None = None
    rollback: bool = False
    require_ota_channel: bool = False
    today: datetime.date = dataclasses.field(default_factory=datetime.date.today)
    reuse_units: bool = True
    """Read a unit once when both sides hold it byte for byte; off only to prove it changes nothing."""
    progress: Progress | None = None
    """Told how each load goes (the CLI draws a bar on a terminal)."""
    unit_store: UnitStore | None = None
    """Where walked units outlive the run (``--cache DIR``); None: nothing kept."""
    retain: Callable[[object], None] | None = None
    """Handed the loaded and prepared snapshots before the report is returned, so a process about to
    exit can leave them to the operating system: freeing a large app's millions of objects one by one
    took 0.6-0.7 s at scale. None: they are freed as usual when the check returns."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """How to judge: threshold, the team's config, the date waivers are checked against, the mode."""

    fail_on: Level = DEFAULT_FAIL_ON
    config: Config = NO_CONFIG
    today: datetime.date = datetime.date(2000, 1, 1)
    mode: str = "release"
    require_ota_channel: bool = False


def load_rules(rules_dir: Path | None = None) -> RuleSet:
    """Read and validate the rule set."""
    return parse_rule_files(read_rule_files(rules_dir))


def run_check(options: CheckOptions) -> CheckReport:
    """Load the config, the rules and both sources, and check them."""
    cwd = options.cwd if options.cwd is not None else Path.cwd()
    ruleset = load_rules(options.rules_dir)
    known = frozenset(loaded.rule.id for loaded in ruleset.rules)
    config = read_config(find_config(options.config_path, options.head, cwd), known)
    ruleset = with_levels(ruleset, config.levels)
    # The two loads share units with equal bytes (analyzer.load.memo); ``reuse_units=False`` is the
    # plain path, which the tests hold to the same reports.
    memo = ReadMemo(store=options.unit_store) if options.reuse_units else None
    load = functools.partial(
        load_source,
        cwd=cwd,
        limits=options.limits,
        native_template=options.native_template,
        memo=memo,
        progress=options.progress,
    )
    base, head, after = _load_both(options, load, memo, cwd)
    store = memo.store if memo is not None else None
    before = prepare(base, like=after, store=store) if base is not None else None
    if options.retain is not None:
        options.retain((memo, head, base, after, before))
    policy = Policy(
        fail_on=options.fail_on or config.fail_on or DEFAULT_FAIL_ON,
        config=config,
        today=options.today,
        mode="initial" if base is None else "rollback" if options.rollback else "release",
        require_ota_channel=options.require_ota_channel or config.require_ota_channel,
    )
    return check_snapshots(before, after, ruleset, policy)


def _load_both(
    options: CheckOptions, load: Callable[..., Snapshot], memo: ReadMemo | None, cwd: Path
) -> tuple[Snapshot | None, Snapshot, Prepared]:
    """Load BASE and HEAD and prepare HEAD, with a worker hashing one side's app folder ahead where the
    second core would idle (:func:`read_ahead`; only a memo uses what it finds).

    Usually HEAD first: while the rest of HEAD's load and its preparation take one core, a worker
    hashes a folder BASE, whose load then reads only the units HEAD does not hold. The worker is forked
    before HEAD's load and let go once HEAD's units are walked: forked after the load, it had made each
    page of HEAD's model the preparation touched a copy-on-write fault (HEAD's index at scale 0.23 ->
    0.45 s); let go after the whole load, it had left BASE's load waiting for it 0.35-0.6 s (a cold
    check at scale 8.60-8.94 -> 8.09-8.38 s, in one process, with BASE's side files read before it
    waits). A ``git:`` BASE names every blob without reading it,
    and with a cache its units come from the cache on one core: then BASE first, while a worker hashes
    a folder HEAD (docs/ci.md's gate: 0.5-2 s of 10-12 s at scale). A ``git:`` BASE is also the side a
    cache most likely knows whole (the released revision, checked before; see
    ``analyzer.load.revision``): read first, it lends its units to a new HEAD, whose load then walks
    only what changed (a one-unit check at scale 8.7-9.1 s -> 7.1-8.4 s). Without a cache BASE's walk
    takes both cores, and hashing HEAD beside it measured no gain.
    """
    store = memo.store if memo is not None else None
    if options.base is None:
        head = load(options.head)
        return None, head, prepare(head, store=store)
    if options.base.startswith("git:") and memo is not None and memo.store is not None:
        ahead = read_ahead(options.head, cwd=cwd, limits=options.limits)
        try:
            base = load(options.base)
            head = load(options.head, ahead=ahead)
        finally:
            if ahead is not None:
                ahead.close()
        return base, head, prepare(head, store=store)
    # Forked now, while this process is small, and let go once HEAD's units are walked, when the rest of
    # its load leaves the second core idle (see ``start_digests``).
    ahead = read_ahead(options.base, cwd=cwd, limits=options.limits, held=True) if memo is not None else None
    try:
        head = load(options.head, walked=ahead.release if ahead is not None else None)
        if ahead is not None:
            ahead.release()  # a source read without a walk (an XML snapshot)
        after = prepare(head, store=store)
        base = load(options.base, ahead=ahead)
    finally:
        if ahead is not None:
            ahead.close()
    return base, head, after


@dataclass(frozen=True, slots=True)
class Prepared:
    """One snapshot with its index, graph and native analysis: built once, usable in many checks."""

    snapshot: Snapshot
    index: SnapshotIndex
    graph: ModelGraph
    native: NativeFacts


def prepare(snapshot: Snapshot, like: Prepared | None = None, store: UnitStore | None = None) -> Prepared:
    """Index, graph and analyse one snapshot (``like``: the other side of the check, whose index and
    graph lend what the units both hold gave them; see :func:`index_snapshot`, :func:`build_graph`;
    ``store``: where the native findings of a snapshot that has a content key are kept)."""
    index = index_snapshot(snapshot, like.index if like is not None else None)
    graph = build_graph(snapshot, index, like.graph if like is not None else None)
    return Prepared(snapshot=snapshot, index=index, graph=graph, native=_native(graph, snapshot, store))


NATIVE_RECORD_FORMAT = 2
"""Bump when the layout of a native findings record changes."""


@functools.cache
def _graph_fingerprint() -> str:
    """A hash of the code that works out native facts from a loaded model (``analyzer.graph``)."""
    return code_fingerprint(sorted(Path(graph_package.__file__ or "").parent.glob("*.py")))


def _native(graph: ModelGraph, snapshot: Snapshot, store: UnitStore | None) -> NativeFacts:
    """The native facts of a graph. A snapshot with a content key (a ``git:`` tree a cache knows) has
    its findings (:class:`NativeFindings`) kept in the store beside its revision record, under that key
    and the graph code's fingerprint: read back in 1-2 ms where working them out took 0.1-0.2 s at scale,
    for each side of a check whose trees the cache knows. A missing or damaged record is worked out
    again; the facts are the same either way (the tests hold that)."""
    content = snapshot.source.content_key
    if store is None or content is None:
        return analyze_native(graph)
    key = record_key("native", NATIVE_RECORD_FORMAT, _graph_fingerprint(), content)
    record = store.get_revision(key)
    if record is not None:
        try:
            return native_facts_from(graph, marshal.loads(open_record(record, "native findings")))
        except (ValueError, EOFError, TypeError):
            pass  # a miss: worked out again and kept again
    facts = analyze_native(graph)
    store.put_revision(key, seal_record(marshal.dumps(findings_rows(facts))))
    return facts


def check_snapshots(
    base: Snapshot | Prepared | None,
    head: Snapshot | Prepared,
    ruleset: RuleSet,
    policy: Policy | Level = DEFAULT_FAIL_ON,
) -> CheckReport:
    """The pure part of a check: from two snapshots (or one, for an initial release) to the report.

    Either side may come already prepared, so a series of checks (consecutive revisions, a snapshot
    against itself) builds each graph once.
    """
    if isinstance(policy, Level):
        policy = Policy(fail_on=policy)
    after = head if isinstance(head, Prepared) else prepare(head)
    if base is None or base is head or (isinstance(base, Snapshot) and base is after.snapshot):
        before = after
    else:
        before = base if isinstance(base, Prepared) else prepare(base, like=after)
    initial = base is None
    released, head_snapshot = before.snapshot, after.snapshot
    before_index, after_index = before.index, after.index
    before_graph, after_graph = before.graph, after.graph
    before_native, after_native = before.native, after.native
    delivery = _delivery(before_graph, policy.config)
    if initial:
        changes: tuple[Change, ...] = (_initial_release(head_snapshot),)
    else:
        changes = diff_indexes(before_index, after_index, ruleset.no_effect)
    scope = _scope_change(before, after, changes) if not initial else None
    if scope is not None:
        changes = (*changes, scope)
    if policy.require_ota_channel and before_native.has_native_profile and delivery.channel in (
        Channel.NONE,
        Channel.UNKNOWN,
    ):
        changes = (*changes, _missing_channel(delivery))
    ctx = ClassifyContext(
        before=before_graph,
        after=after_graph,
        before_native=before_native,
        after_native=after_native,
        known_in_binary=policy.config.native_dependencies_in_binary,
        template_provides=ruleset.template_provides,
        template_versions=ruleset.template_versions,
    )
    outcome = apply_waivers(classify(changes, ruleset, ctx), policy.config.waivers, policy.today)
    findings = outcome.findings
    verdict = decide(findings, policy.fail_on, outcome.expired)
    named = {finding.rule for finding in findings} | {rule for finding in findings for rule in finding.rules}
    rules = {loaded.rule.id: loaded.rule for loaded in ruleset.rules if loaded.rule.id in named}
    return CheckReport(
        tool_version=__version__,
        base=_summary(released, before_native),
        head=_summary(head_snapshot, after_native),
        findings=findings,
        verdict=verdict,
        counts=MappingProxyType(dict(count_by_level(findings))),
        rules=MappingProxyType(dict(sorted(rules.items()))),
        delivery=delivery,
        plan=build_plan(verdict.level, findings, delivery, released.native, mode=policy.mode),
        mode=policy.mode,
        waiver_notes=(*outcome.expired, *outcome.unused),
        config=policy.config.path,
    )


def _delivery(graph: ModelGraph, config: Config) -> Delivery:
    if config.ota_channel is not None:
        return Delivery(
            channel=config.ota_channel,
            evidence=(f"stated in {config.path}: ota_channel = {config.ota_channel.value}",),
            stated=True,
        )
    return detect_delivery(graph)


def _release_change(
    kind: ChangeKind, element_id: str, element_type: str, label: str, *details: PropertyChange
) -> Change:
    """A change of the release as a whole (no model element carries it), attributed to the project."""
    return Change(
        kind=kind,
        element_id=element_id,
        element_type=element_type,
        qualified_name=label,
        before_name=None,
        after_name=label if kind is ChangeKind.ADDED else None,
        document_id="project",
        document_type="Project",
        document_name="(project)",
        properties=details,
    )


def _initial_release(head: Snapshot) -> Change:
    name = next((s.value for s in head.native if s.kind == "config" and s.key.endswith(".appName")), None)
    return _release_change(
        ChangeKind.ADDED, "release", "Release", f"first store release of {name or head.meta.mpr_name}"
    )


PURPOSE_SHARE = 0.5
"""Share of native pages added or removed, of native navigation changed, that asks for a human review."""
PURPOSE_PERMISSIONS = 2
"""New device permissions in one release that ask for a human review."""


def _scope_change(before: Prepared, after: Prepared, changes: tuple[Change, ...]) -> Change | None:
    """A heuristic for Apple's rule on changing an app's primary purpose over the air (App Store Review
    Guideline 2.5.2, DPLA 3.3.2): a release that adds or replaces a large share of the native pages, or
    adds several permissions, gets a finding with the figures, for a person to decide."""
    old_pages, new_pages = before.native.native_pages, after.native.native_pages
    if not old_pages:
        return None
    added = len(new_pages - old_pages)
    removed = len(old_pages - new_pages)
    share = (added + removed) / len(old_pages)
    permissions = [
        c.qualified_name for c in changes
        if c.kind is ChangeKind.ADDED and c.element_type in ("NativeConfig", "NativeTemplate")
        and (".permission." in c.qualified_name or c.qualified_name.startswith("ios.NS"))
    ]
    if share < PURPOSE_SHARE and len(permissions) < PURPOSE_PERMISSIONS:
        return None
    return _release_change(
        ChangeKind.MODIFIED,
        "release-scope",
        "ReleaseScope",
        "scope of this release (heuristic)",
        PropertyChange(path="native pages", before=len(old_pages), after=len(new_pages)),
        PropertyChange(path="native pages added or removed", before=None, after=f"{added + removed} ({share:.0%})"),
        PropertyChange(path="permissions added", before=None, after=", ".join(permissions) or "none"),
    )


def _missing_channel(delivery: Delivery) -> Change:
    return _release_change(
        ChangeKind.MODIFIED,
        "delivery-channel",
        "DeliveryChannel",
        "over-the-air channel of the released binary",
        PropertyChange(path="channel", before=delivery.channel.value, after=delivery.channel.value),
    )


def _summary(snapshot: Snapshot, native: NativeFacts) -> SideSummary:
    return SideSummary(
        source=snapshot.source,
        meta=snapshot.meta,
        units=len(snapshot.units),
        elements=len(snapshot.elements),
        files=len(snapshot.files),
        native_profile=native.has_native_profile,
        native_pages=len(native.native_pages),
        synced_entities=len(native.synced_entities),
    )
