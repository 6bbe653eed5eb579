"""Every scenario of ``fixtures/scenarios.py`` gets its expected verdict: one or more per rule-table row.

Each side is written as a real Mendix project with the fixtures builder, loaded, and checked with the
shipped rule set. Bases are built once per module; every scenario writes only its after side.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

import pytest
from typer.testing import CliRunner

from analyzer.classify.ruleset import RuleSet
from analyzer.cli import app as cli_app
from analyzer.load.sources import load_source
from analyzer.model.levels import Level
from analyzer.model.report import CheckReport
from analyzer.model.snapshot import MprFormat, Snapshot
from analyzer.pipeline import check_snapshots, load_rules

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    # ``fixtures`` is not an installed package (only ``analyzer`` is); import it from the repository.
    sys.path.insert(0, str(REPO))

from fixtures.builder import model, write_app  # noqa: E402
from fixtures.scenarios import SCENARIOS, SCENARIOS_BY_NAME, Scenario  # noqa: E402

ROWS = (
    *(f"A{n}" for n in range(1, 10)),
    *(f"B{n}" for n in range(1, 6)),
    *(f"C{n}" for n in range(1, 12)),
)
"""The rule-table rows every release must be judged on (knowledge/native-and-rules.md §2)."""

TABLE_LEVEL: Mapping[str, Level] = MappingProxyType(
    {row: Level.OTA for row in ROWS if row.startswith("A")}
    | {row: Level.OTA_REDEPLOY for row in ROWS if row.startswith("B")}
    | {row: Level.DATA_RISK for row in ROWS if row.startswith("C")}
    | {"C10": Level.OTA}
)
"""The verdict the rule table gives each row (OTA, OTA+RT, CAUTION), as a level."""

NOT_YET: Mapping[str, str] = MappingProxyType(
    {}
)
"""Rows whose table verdict the rule set cannot give yet; their scenarios record today's conservative level."""

XFAIL: Mapping[str, str] = MappingProxyType({})
"""Scenarios that fail because of a rule or analyzer bug (never a fixture bug), with the evidence."""

V1_SCENARIOS = (
    "a1-theme-native-variables",
    "a3-page-renamed",
    "b1-microflow-body-changed",
    "c1-synced-attribute-removed",
    "c7-sync-mode-constrained-to-all",
    "d14-ota-enabled",
    "none-microflow-diagram-moved",
)
"""A handful also run with MPR v1 (one SQLite file) to show both storage formats."""

Builder = Callable[[], model.App]


class Workspace:
    """Builds and loads apps under one temporary directory; each base is written once per format."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._bases: dict[tuple[Builder, str], tuple[Path, Snapshot]] = {}
        self._count = 0

    def write(self, app: model.App, mpr_format: model.MprFormat) -> Path:
        self._count += 1
        target = self.root / f"app{self._count}"
        write_app(app, target, mpr_format)
        return target

    def base(self, build: Builder, mpr_format: model.MprFormat) -> tuple[Path, Snapshot]:
        key = (build, mpr_format)
        if key not in self._bases:
            path = self.write(build(), mpr_format)
            self._bases[key] = (path, load_source(str(path)))
        return self._bases[key]

    def pair(self, scenario: Scenario, mpr_format: model.MprFormat) -> tuple[Path, Path, Snapshot, Snapshot]:
        before_path, before = self.base(scenario.before, mpr_format)
        after_path = self.write(scenario.after(), mpr_format)
        return before_path, after_path, before, load_source(str(after_path))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("scenarios"))


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return load_rules()


def _params(names: tuple[str, ...] | None = None) -> list[object]:
    chosen = [s for s in SCENARIOS if names is None or s.name in names]
    return [
        pytest.param(
            s,
            id=s.name,
            marks=[pytest.mark.xfail(strict=True, reason=XFAIL[s.name])] if s.name in XFAIL else [],
        )
        for s in chosen
    ]


def _check(workspace: Workspace, ruleset: RuleSet, scenario: Scenario, mpr_format: model.MprFormat) -> CheckReport:
    _, _, before, after = workspace.pair(scenario, mpr_format)
    expected_format = MprFormat.V1 if mpr_format == "v1" else MprFormat.V2
    assert before.meta.mpr_format is expected_format and after.meta.mpr_format is expected_format
    return check_snapshots(before, after, ruleset, Level.DATA_RISK)


def _assert_expected(scenario: Scenario, report: CheckReport) -> None:
    decisive = {finding.rule for finding in report.findings}
    summary = sorted(
        f"{f.level.value} {f.rule} {f.change.kind.value} {f.change.qualified_name}" for f in report.findings
    )
    assert not [f for f in report.findings if f.unclassified], summary
    assert report.verdict.level is Level.parse(scenario.verdict), summary
    missing = set(scenario.expect_rules) - decisive
    assert not missing, (missing, summary)
    forbidden = set(scenario.forbid_rules) & decisive
    assert not forbidden, (forbidden, summary)


@pytest.mark.parametrize("scenario", _params())
def test_scenario(workspace: Workspace, ruleset: RuleSet, scenario: Scenario) -> None:
    _assert_expected(scenario, _check(workspace, ruleset, scenario, "v2"))


@pytest.mark.parametrize("scenario", _params(V1_SCENARIOS))
def test_scenario_mpr_v1(workspace: Workspace, ruleset: RuleSet, scenario: Scenario) -> None:
    _assert_expected(scenario, _check(workspace, ruleset, scenario, "v1"))


def test_page_rename_is_a_rename_and_its_referrers_follow_it(workspace: Workspace, ruleset: RuleSet) -> None:
    report = _check(workspace, ruleset, SCENARIOS_BY_NAME["a3-page-renamed"], "v2")
    page = [f for f in report.findings if f.change.element_type == "Forms$Page"]
    assert [(f.change.kind.value, f.change.qualified_name, f.rule) for f in page] == [
        ("renamed", "FieldService.JobDetail", "page-changed")
    ]
    others = [f for f in report.findings if f not in page]
    assert others
    assert all(f.rule == "no-effect-rename-follow-up" and f.level is Level.NONE for f in others), others


def test_scenario_names_are_unique_and_rows_are_known() -> None:
    assert len(SCENARIOS_BY_NAME) == len(SCENARIOS)
    known = {*ROWS, "C12", *(f"D{n}" for n in range(1, 20))}
    assert {row for s in SCENARIOS for row in s.rows} <= known
    assert {s.name for s in SCENARIOS} >= set(XFAIL) | set(V1_SCENARIOS)
    for scenario in SCENARIOS:
        Level.parse(scenario.verdict)


def test_every_rule_table_row_has_a_scenario() -> None:
    covered = {row for s in SCENARIOS for row in s.rows}
    assert not [row for row in ROWS if row not in covered]
    at_table_level = {row for s in SCENARIOS for row in s.rows if Level.parse(s.verdict) is TABLE_LEVEL.get(row)}
    not_expressed = {row for row in ROWS if row not in at_table_level}
    # A row is either judged as the table says by some scenario, or listed (with the reason) in NOT_YET.
    assert not_expressed == set(NOT_YET), "update NOT_YET: it must list exactly the rows not yet expressible"


STORE_RULES_WITHOUT_SCENARIO: Mapping[str, str] = MappingProxyType(
    {
        "initial-store-release": "needs no base snapshot (mxota check with no released binary); tests/test_cli.py",
        "ota-channel-required": "needs --require-ota-channel / .mxota.toml; tests/test_cli.py",
        "native-analysis-problem": "needs unreadable native files, not a release edit; "
        "reader problems: tests/test_native_readers.py",
        "native-template-changed": "template files the native analysis does not read (package-lock.json); "
        "tests/test_rules.py examples",
    }
)
"""Store-level rules no scenario expects to decide, each with where it is covered instead."""


def test_every_store_rule_is_expected_by_a_scenario() -> None:
    store = {loaded.rule.id for loaded in load_rules().rules if loaded.rule.level is Level.STORE}
    expected = {rule for s in SCENARIOS for rule in s.expect_rules}
    assert set(STORE_RULES_WITHOUT_SCENARIO) <= store
    assert not sorted(store - expected - set(STORE_RULES_WITHOUT_SCENARIO))


def test_data_risk_rows_have_a_milder_twin() -> None:
    """Each data-risk row about entities or flows has a scenario of the same row at a milder level."""
    for row in ("B5", "C1", "C2", "C3", "C4", "C5", "C6", "C8"):
        levels = {Level.parse(s.verdict) for s in SCENARIOS if row in s.rows}
        assert Level.DATA_RISK in levels and min(levels) < Level.DATA_RISK, row


@pytest.mark.parametrize(
    ("name", "exit_code"),
    [
        ("a1-theme-native-variables", 0),
        ("b1-microflow-body-changed", 0),
        ("c7-sync-mode-constrained-to-all", 1),
        ("d14-ota-enabled", 1),
        ("none-page-template-edited", 0),
    ],
)
def test_cli_check_exit_code(workspace: Workspace, name: str, exit_code: int) -> None:
    scenario = SCENARIOS_BY_NAME[name]
    before, after, _, _ = workspace.pair(scenario, "v2")
    result = CliRunner().invoke(cli_app, ["check", str(before), str(after), "--rules", str(REPO / "rules")])
    assert result.exit_code == exit_code, result.output
    assert scenario.verdict in result.output
