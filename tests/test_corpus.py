"""Every revision of the shared corpus: loads, round-trips through XML, checks clean against itself,
and every consecutive pair of a project runs to a verdict that reads right to a Mendix developer."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import bson
import pytest

from analyzer.classify.ruleset import RuleSet
from analyzer.load.memo import ReadMemo
from analyzer.load.sources import load_source
from analyzer.load.xml_snapshot import parse_snapshot, render_snapshot
from analyzer.model.changes import ChangeKind
from analyzer.model.levels import Level
from analyzer.model.report import CheckReport
from analyzer.model.snapshot import element_keys, outline_of
from analyzer.pipeline import Prepared, check_snapshots, load_rules, prepare
from analyzer.report.json_report import render_json
from analyzer.report.text import render_text
from tests.conftest import corpus_revisions

PROJECTS = [
    "MendixCap__MX--SFTP-Module",
    "SuperBypassUdinnn__SIGARA",
    "TimvanSteenbergen__LocationService",
    "mendix__Native-Mobile-Resources",
    "openwallet-foundation-labs__farmworker-wallet-os",
]


def unit_contents(app: Path) -> list[tuple[str, bytes]]:
    """Every unit's id and BSON straight from the Unit table: its ``Contents`` (MPR v1) or its
    ``mprcontents`` file (v2), without mxota's reader."""
    mpr = next(app.glob("*.mpr"))
    connection = sqlite3.connect(mpr.resolve().as_uri() + "?mode=ro&immutable=1", uri=True)
    try:
        columns = {row[1] for row in connection.execute("pragma table_info(Unit)")}
        if "Contents" in columns:
            rows = connection.execute("select UnitID, Contents from Unit")
            return [(bytes(raw).hex(), contents) for raw, contents in rows]
        found: list[tuple[str, bytes]] = []
        for (raw,) in connection.execute("select UnitID from Unit"):
            import uuid

            name = str(uuid.UUID(bytes_le=bytes(raw)))
            found.append((name, (app / "mprcontents" / name[0:2] / name[2:4] / f"{name}.mxunit").read_bytes()))
        return found
    finally:
        connection.close()


def independent_counts(app: Path) -> Counter[str]:
    """Count ``$ID`` objects per ``$Type`` straight from the unit BSON, without mxota's reader."""
    blobs = [contents for _, contents in unit_contents(app)]
    counts: Counter[str] = Counter()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "$ID" in value:
                counts[value["$Type"]] += 1
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    for blob in blobs:
        walk(bson.decode(blob))
    return counts


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return load_rules()


def _revisions() -> list[tuple[str, str]]:
    """(project, revision) for every corpus revision, read from the bundles' REVISIONS.md tables."""
    from tests.conftest import CORPUS_SOURCE

    found: list[tuple[str, str]] = []
    for project in PROJECTS:
        table = CORPUS_SOURCE / project / "REVISIONS.md"
        if not table.is_file():
            continue
        for line in table.read_text(encoding="utf-8").splitlines():
            cells = [cell.strip() for cell in line.split("|")]
            if len(cells) > 2 and cells[1].startswith("`") and cells[1].endswith("`"):
                found.append((project, cells[1].strip("`")))
    return found


@pytest.mark.corpus
@pytest.mark.parametrize(("project", "revision"), _revisions() or [("absent", "absent")])
def test_revision_loads_round_trips_and_checks_clean(
    corpus: Path, ruleset: RuleSet, project: str, revision: str
) -> None:
    app = corpus / project / revision
    snapshot = load_source(str(app))
    # Element counts per type agree with an independent count of $ID objects.
    assert Counter(snapshot.element_counts()) == independent_counts(app)
    # The outline read at load (names, references, ids, types) is what the built elements say.
    # (A unit walked by the split worker comes back with its ids as one string: compared as a tuple.)
    for model in snapshot.elements.models:
        outline = dataclasses.replace(model.outline, keys=element_keys(model.outline))
        assert outline_of(model.elements) == outline, model.unit_id
    # Loading the app and loading its exported snapshot give equal snapshots.
    assert parse_snapshot(render_snapshot(snapshot), "exported") == snapshot
    # Checking a revision against itself finds nothing.
    prepared = prepare(snapshot)
    assert check_snapshots(prepared, prepared, ruleset, Level.DATA_RISK).findings == ()


@pytest.mark.corpus
@pytest.mark.parametrize("project", PROJECTS)
def test_consecutive_revisions_run_to_a_verdict_that_reads_right(
    corpus: Path, ruleset: RuleSet, project: str
) -> None:
    revisions = dict(corpus_revisions(corpus))[project]
    previous: Prepared | None = None
    previous_fast: Prepared | None = None
    memo = ReadMemo()
    reports: list[tuple[str, CheckReport]] = []
    for revision in revisions:
        prepared = prepare(load_source(str(revision)))
        # The fast path: every revision read through one memo, so equal units are decoded once and
        # shared, and the diff passes over them. It must give the very report the plain path gives.
        fast = prepare(load_source(str(revision), memo=memo))
        if previous is not None and previous_fast is not None:
            report = check_snapshots(previous, prepared, ruleset, Level.DATA_RISK)
            assert render_text(report)  # runs to a verdict and renders
            fast_report = check_snapshots(previous_fast, fast, ruleset, Level.DATA_RISK)
            assert render_json(fast_report) == render_json(report), revision.name
            reports.append((revision.name, report))
        previous, previous_fast = prepared, fast
    assert memo.hits > 0
    EXPECTATIONS[project](dict(reports))


def _kinds(report: CheckReport, document: str) -> Counter[str]:
    return Counter(f.change.kind.value for f in report.findings if f.change.document_name == document)


def _sftp(reports: dict[str, CheckReport]) -> None:
    # Mendix 6.5 → 6.8 stays inside one native template range (no native app in Mendix 6 at all): the
    # upgrade needs a runtime redeploy, and its 49 rewritten units are not edits.
    upgrade = reports["6c17378"]
    assert upgrade.verdict.level is Level.OTA_REDEPLOY
    assert "studio-pro-upgrade-in-template-range" in {f.rule for f in upgrade.findings}
    # The two domain models whose hash changed only by key order are not reported at all.
    assert not [f for f in upgrade.findings if f.change.document_type == "DomainModels$DomainModel"]
    assert upgrade.verdict.unclassified == 0


def _sigara(reports: dict[str, CheckReport]) -> None:
    assert all(r.verdict.unclassified == 0 for r in reports.values())
    # d841a9a "Reset server to localhost": one settings change, nothing else.
    reset = reports["d841a9a"]
    assert [(f.rule, f.change.kind) for f in reset.findings] == [("settings-changed", ChangeKind.MODIFIED)]
    # 6c8e969 renames SettingsModule.Page to Settings_Page: a rename, not a removal and an addition.
    dashboard = reports["6c8e969"]
    renames = [
        f for f in dashboard.findings
        if f.change.kind is ChangeKind.RENAMED and f.change.element_id == f.change.document_id
    ]
    assert [(f.change.before_name, f.change.after_name) for f in renames] == [
        ("SettingsModule.Page", "SettingsModule.Settings_Page")
    ]


def _location_service(reports: dict[str, CheckReport]) -> None:
    assert all(r.verdict.unclassified == 0 for r in reports.values())
    assert all(r.verdict.level <= Level.OTA_REDEPLOY for r in reports.values())


def _native_resources(reports: dict[str, CheckReport]) -> None:
    # The Studio Pro 11 upgrade wrote 32 offline sync configuration rows: a data risk for devices.
    upgrade = reports["16634131"]
    assert upgrade.verdict.level is Level.STORE
    sync_rows = [f for f in upgrade.findings if f.rule == "offline-sync-config-changed"]
    assert len(sync_rows) == 32
    # A page-order edit only.
    assert reports["ce643de9"].verdict.level is Level.OTA


def _farmworker(reports: dict[str, CheckReport]) -> None:
    # 60fd7b3 re-imports modules with new ids: matched by name, not ~1,800 removals and additions.
    reimport = reports["60fd7b3"]
    removed_documents = [
        f
        for f in reimport.findings
        if f.change.kind is ChangeKind.REMOVED and f.change.element_id == f.change.document_id
    ]
    assert len(removed_documents) < 20
    assert reports["33035ec"].verdict.level <= Level.OTA_REDEPLOY


EXPECTATIONS = {
    "MendixCap__MX--SFTP-Module": _sftp,
    "SuperBypassUdinnn__SIGARA": _sigara,
    "TimvanSteenbergen__LocationService": _location_service,
    "mendix__Native-Mobile-Resources": _native_resources,
    "openwallet-foundation-labs__farmworker-wallet-os": _farmworker,
}
