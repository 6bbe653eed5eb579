"""The reporters: golden files for every format, determinism, size limits, and format validity.

Golden files live in ``tests/golden/``; ``MXOTA_UPDATE_GOLDEN=1 pytest tests/test_reports.py`` rewrites
them (review the diff before committing).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import pytest
from lxml import etree
from lxml import html as lxml_html

from analyzer.classify.engine import count_by_level
from analyzer.model.changes import ABSENT, FILE_TYPE, Change, ChangeKind, PropertyChange
from analyzer.model.findings import UNCLASSIFIED, Finding, Gate, Rule
from analyzer.model.levels import Level
from analyzer.model.report import CheckReport, SideSummary
from analyzer.model.snapshot import MprFormat, SnapshotMeta, SourceInfo, SourceKind
from analyzer.pipeline import CheckOptions, run_check
from analyzer.policy.verdict import decide
from analyzer.report.github import escape_data, escape_property, render_github, render_github_step_summary
from analyzer.report.html import render_html
from analyzer.report.junit import render_junit
from analyzer.report.markdown import COMMENT_LIMIT, fails_gate, render_markdown
from analyzer.report.registry import RENDERERS, OutputFormat
from analyzer.report.sarif import artifact_path, render_sarif, sarif_level, unit_path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fixtures.builder import edit, field_service_1_0, write_app  # noqa: E402
from fixtures.builder import model as m  # noqa: E402
from fixtures.builder.variants import VARIANTS  # noqa: E402

GOLDEN = REPO / "tests" / "golden"
SCHEMAS = Path(__file__).resolve().parents[2] / "shared" / "schemas"
SARIF_SCHEMA = SCHEMAS / "sarif-schema-2.1.0.json"
UPDATE = os.environ.get("MXOTA_UPDATE_GOLDEN") == "1"
TEST_VERSION = "0.0.0-golden"
"""Golden files carry this tool version, so a version bump does not rewrite them."""

EXTENSIONS: dict[OutputFormat, str] = {
    OutputFormat.TEXT: "txt",
    OutputFormat.JSON: "json",
    OutputFormat.MARKDOWN: "md",
    OutputFormat.HTML: "html",
    OutputFormat.SARIF: "sarif",
    OutputFormat.JUNIT: "junit.xml",
    OutputFormat.GITHUB: "github.txt",
}
STORE_VARIANTS = (
    "remove-synced-attribute",
    "new-native-dependency",
    "sync-mode-changed",
    "rename-page",
    "new-association",
)
WAIVED_ELEMENT = "FieldService.Visit_Customer"


# ------------------------------------------------------------------------------------------ the reports


def _pinned(report: CheckReport) -> CheckReport:
    """The report with what depends on where the tests run pinned: the version, and no git repository
    around the apps (paths inside one are tested on their own)."""

    def outside_git(side: SideSummary) -> SideSummary:
        return dataclasses.replace(side, source=dataclasses.replace(side.source, repository_path=None))

    return dataclasses.replace(
        report, tool_version=TEST_VERSION, base=outside_git(report.base), head=outside_git(report.head)
    )


def field_service_report() -> CheckReport:
    """The committed example pair: field-service 1.0 → 1.1."""
    options = CheckOptions(base="fixtures/apps/field-service-1.0", head="fixtures/apps/field-service-1.1", cwd=REPO)
    return _pinned(run_check(options))


def _write_store_scenario(directory: Path) -> None:
    """field-service 1.0 as ``before`` and, as ``after``, with five variants applied (store, data-risk,
    ota-redeploy, ota and none findings)."""
    base = field_service_1_0()
    head = base
    for name in STORE_VARIANTS:
        head = VARIANTS[name](head)
    # an additive change on an entity no device syncs: the ota-redeploy finding
    head = edit.add_attribute(head, "FieldService.Invoice", m.Attribute(name="DueDate", type="DateTime"))
    write_app(base, directory / "before")
    write_app(head, directory / "after")


def store_scenario_report(directory: Path) -> CheckReport:
    """field-service 1.0 with five variants applied (store, data-risk, ota-redeploy, ota and none findings),
    and one data-risk finding waived the way the policy layer marks waivers."""
    _write_store_scenario(directory)
    report = run_check(CheckOptions(base="before", head="after", cwd=directory))
    findings = tuple(
        dataclasses.replace(finding, waived=True, waiver_reason="Visits get customers in 2.0; accepted by QA (#42)")
        if finding.change.qualified_name == WAIVED_ELEMENT
        else finding
        for finding in report.findings
    )
    assert any(finding.waived for finding in findings), "the waived element is gone from the scenario"
    return _pinned(
        dataclasses.replace(
            report,
            findings=findings,
            verdict=decide(findings, report.verdict.fail_on),
            counts=MappingProxyType(dict(count_by_level(findings))),
        )
    )


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CheckReport]:
    return {
        "field-service": field_service_report(),
        "store-scenario": store_scenario_report(tmp_path_factory.mktemp("scenario")),
    }


def _side(location: str, mpr_format: MprFormat = MprFormat.V2) -> SideSummary:
    return SideSummary(
        source=SourceInfo(kind=SourceKind.APP_DIRECTORY, location=location),
        meta=SnapshotMeta(
            mpr_name="Big.mpr",
            mpr_format=mpr_format,
            format_version=2,
            product_version="10.24.0",
            build_version="10.24.0.1",
            schema_hash="x",
        ),
        units=1,
        elements=1,
        files=1,
        native_profile=True,
        native_pages=3,
        synced_entities=2,
    )


SYNTHETIC_RULES = {
    level: Rule(
        id=f"synthetic-{level.value}",
        level=level,
        title=f"Synthetic {level.value} rule",
        reason='Because <tests> & "quotes" say so.',
        advice="Do | the * right _ thing.",
        source="tests",
        rows=("Z1",),
        file="rules/synthetic.toml",
    )
    for level in Level
}


def synthetic_report(count: int, mpr_format: MprFormat = MprFormat.V2, fail_on: Level = Level.DATA_RISK) -> CheckReport:
    """``count`` findings over every level, with unclassified, waived, hostile names and long values."""
    levels = tuple(Level)
    findings: list[Finding] = []
    for index in range(count):
        level = levels[index % len(levels)]
        unclassified = index % 97 == 0
        waived = index % 89 == 0
        document = f"Module{index % 13}.Page_{index % 401}"
        is_file = index % 50 == 7
        change = Change(
            kind=tuple(ChangeKind)[index % len(ChangeKind)],
            element_id=f"file:theme/native/f{index}.js" if is_file else f"{index:08x}-0000-4000-8000-000000000000",
            element_type=FILE_TYPE if is_file else "Forms$TextBox",
            qualified_name=(
                f"theme/native/f{index}.js" if is_file else f"{document}.box{index}<script>alert({index})</script>|`x`"
            ),
            before_name=f"{document}.old{index}",
            after_name=f"{document}.box{index}",
            document_id=f"{index % 401:08x}-1111-4000-8000-000000000000",
            document_type="Forms$Page",
            document_name="theme/" if is_file else document,
            properties=(
                PropertyChange(path="Caption.Text", before="Old " * 40, after="New\nline & <b>bold</b>"),
                PropertyChange(path="Visible", before=ABSENT, after=True),
            ),
            moved_from="Folder A" if index % 7 == 0 else None,
            moved_to="Folder B" if index % 7 == 0 else None,
        )
        rule = SYNTHETIC_RULES[level]
        findings.append(
            Finding(
                fingerprint=f"{index:020x}",
                change=change,
                level=Level.STORE if unclassified else level,
                rule=UNCLASSIFIED if unclassified else rule.id,
                rules=() if unclassified else (rule.id,),
                title="No rule knows this change" if unclassified else rule.title,
                reason=rule.reason,
                advice=rule.advice,
                impacts=tuple(f"Module{index % 13}.Native{n}" for n in range(index % 20)),
                unclassified=unclassified,
                waived=waived,
                waiver_reason="accepted: 100% sure, see ::error:: notes" if waived else None,
            )
        )
    result = tuple(findings)
    return CheckReport(
        tool_version=TEST_VERSION,
        base=_side("apps/big-1.0", mpr_format),
        head=_side("apps/big-1.1", mpr_format),
        findings=result,
        verdict=decide(result, fail_on),
        counts=MappingProxyType(dict(count_by_level(result))),
        rules=MappingProxyType({rule.id: rule for rule in SYNTHETIC_RULES.values()}),
    )


def by_id(root: etree._Element, element_id: str) -> etree._Element:
    """The one element with this id."""
    found = [element for element in root.iter() if element.get("id") == element_id]
    assert len(found) == 1, f"{len(found)} elements with id {element_id!r}"
    return found[0]


def by_class(root: etree._Element, name: str) -> list[etree._Element]:
    """Elements under ``root`` whose class list holds ``name``."""
    return [element for element in root.iter() if name in (element.get("class") or "").split()]


def text_of(element: etree._Element) -> str:
    return "".join(str(text) for text in element.itertext())


# ---------------------------------------------------------------------------------------------- registry


def test_every_format_has_a_renderer() -> None:
    assert set(RENDERERS) == set(OutputFormat)
    assert set(EXTENSIONS) == set(OutputFormat)
    assert {fmt.value for fmt in OutputFormat} == {"text", "json", "markdown", "html", "sarif", "junit", "github"}
    assert OutputFormat.parse("sarif") is OutputFormat.SARIF
    with pytest.raises(ValueError, match="formats are"):
        OutputFormat.parse("pdf")


# ------------------------------------------------------------------------------------------------ golden


@pytest.mark.parametrize("fmt", list(OutputFormat), ids=lambda fmt: fmt.value)
@pytest.mark.parametrize("scenario", ["field-service", "store-scenario"])
def test_golden(reports: dict[str, CheckReport], scenario: str, fmt: OutputFormat) -> None:
    text = RENDERERS[fmt](reports[scenario])
    path = GOLDEN / f"{scenario}.{EXTENSIONS[fmt]}"
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    assert path.is_file(), f"{path} is missing; run with MXOTA_UPDATE_GOLDEN=1 to create it"
    expected = path.read_bytes().decode("utf-8")
    assert text == expected, f"{path.name} differs; rerun with MXOTA_UPDATE_GOLDEN=1 and review the diff"


def test_store_scenario_covers_the_severe_levels(reports: dict[str, CheckReport]) -> None:
    report = reports["store-scenario"]
    levels = {finding.level for finding in report.findings if not finding.waived}
    assert {Level.STORE, Level.DATA_RISK, Level.OTA_REDEPLOY, Level.OTA, Level.NONE} <= levels
    assert report.verdict.level is Level.STORE
    assert report.verdict.gate is Gate.FAIL
    assert report.counts["waived"] == 1


@pytest.mark.parametrize("fmt", list(OutputFormat), ids=lambda fmt: fmt.value)
def test_two_runs_give_the_same_bytes(fmt: OutputFormat) -> None:
    first, second = field_service_report(), field_service_report()
    assert first is not second
    assert RENDERERS[fmt](first).encode("utf-8") == RENDERERS[fmt](second).encode("utf-8")


def test_synthetic_output_is_deterministic() -> None:
    for fmt, render in RENDERERS.items():
        assert render(synthetic_report(300)) == render(synthetic_report(300)), fmt


# ---------------------------------------------------------------------------------------------- markdown


def test_markdown_stays_under_the_comment_limit_with_20000_findings() -> None:
    report = synthetic_report(20_000)
    text = render_markdown(report)
    assert len(text) < COMMENT_LIMIT
    assert len(text.encode("utf-8")) < COMMENT_LIMIT
    assert text.startswith("## ❌ mxota: STORE — gate failed")
    shown = text.count("\n- **")
    match = re.search(r"(\d+) finding\(s\) are not listed", text)
    assert match is not None
    # ``none`` findings are summarised per rule when their section fits, else counted as left out
    none_findings = report.counts["none"] if "<b>NONE</b>" in text else 0
    assert shown + int(match.group(1)) + none_findings == len(report.findings)
    assert text.rstrip().endswith("</sub>")
    assert text.count("<details>") == text.count("</details>")
    summary = render_github_step_summary(report)
    assert len(summary.encode("utf-8")) <= 1_000_000
    assert summary.count("\n- **") > shown


ALLOWED_TAGS = re.compile(r"</?(details|summary|b|sub)>")


def test_markdown_escapes_names() -> None:
    text = render_markdown(synthetic_report(120))
    assert "<script>" in text  # the hostile names are there, but only inside code spans
    for line in text.splitlines():
        outside_code = ALLOWED_TAGS.sub("", re.sub(r"(`+)(.+?)\1", "", line))
        assert "<" not in outside_code, line


def test_markdown_verdict_comes_first(reports: dict[str, CheckReport]) -> None:
    for report in reports.values():
        first = render_markdown(report).splitlines()[0]
        assert report.verdict.level.value.upper() in first
        assert ("passed" if report.verdict.gate is Gate.PASS else "failed") in first


# ------------------------------------------------------------------------------------------------- sarif


def _validate_sarif(document: dict[str, object]) -> None:
    if not SARIF_SCHEMA.is_file():
        pytest.skip(f"{SARIF_SCHEMA} is absent")
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    try:
        jsonschema = importlib.import_module("jsonschema")
    except ImportError:
        _check_sarif_by_hand(document)
        return
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda error: list(error.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def _check_sarif_by_hand(document: dict[str, object]) -> None:
    """The key parts of the schema, for environments without ``jsonschema``."""
    assert document["version"] == "2.1.0"
    runs = document["runs"]
    assert isinstance(runs, list) and len(runs) == 1
    run = runs[0]
    rules = run["tool"]["driver"]["rules"]
    for rule in rules:
        assert set(rule) >= {"id", "shortDescription", "fullDescription", "help", "defaultConfiguration"}
        assert rule["defaultConfiguration"]["level"] in {"none", "note", "warning", "error"}
    for result in run["results"]:
        assert result["level"] in {"none", "note", "warning", "error"}
        assert result["message"]["text"]
        assert 0 <= result["ruleIndex"] < len(rules)
        location = result["locations"][0]
        assert location["physicalLocation"]["artifactLocation"]["uri"]
        assert location["physicalLocation"]["region"]["startLine"] >= 1


def test_sarif_validates_against_the_schema(reports: dict[str, CheckReport]) -> None:
    for report in [*reports.values(), synthetic_report(200), synthetic_report(50, MprFormat.V1)]:
        document = json.loads(render_sarif(report))
        _validate_sarif(document)
        _check_sarif_by_hand(document)


def test_sarif_results_carry_rules_levels_locations_and_fingerprints(reports: dict[str, CheckReport]) -> None:
    report = reports["store-scenario"]
    document = json.loads(render_sarif(report))
    run = document["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert len({rule["id"] for rule in rules}) == len(rules)
    assert {rule["id"] for rule in rules} >= {finding.rule for finding in report.findings}
    assert len(run["results"]) == len(report.findings)
    for result, finding in zip(run["results"], report.findings, strict=True):
        assert rules[result["ruleIndex"]]["id"] == finding.rule == result["ruleId"]
        assert result["level"] == sarif_level(finding.level)
        assert result["partialFingerprints"] == {"mxotaFingerprint/v1": finding.fingerprint}
        logical = result["locations"][0]["logicalLocations"][0]
        assert logical["fullyQualifiedName"] == finding.change.qualified_name
        assert logical["kind"] in {"element", "resource", "module"}
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        doc = finding.change.document_id
        if finding.change.element_type == FILE_TYPE:
            assert uri == finding.change.qualified_name
        elif re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", doc):
            assert uri == f"mprcontents/{doc[:2]}/{doc[2:4]}/{doc}.mxunit"
        else:  # project metadata and native settings have no unit of their own
            assert uri == report.head.meta.mpr_name
        assert ("suppressions" in result) == finding.waived


def test_sarif_levels_are_exhaustive() -> None:
    assert {level: sarif_level(level) for level in Level} == {
        Level.STORE: "error",
        Level.DATA_RISK: "error",
        Level.OTA_REDEPLOY: "warning",
        Level.OTA: "note",
        Level.NONE: "none",
    }
    document = json.loads(render_sarif(synthetic_report(200)))
    for result in document["runs"][0]["results"]:
        if result["properties"]["unclassified"]:
            assert result["level"] == "error"


def test_unit_paths_per_mpr_format() -> None:
    unit = "515cc5e3-1889-5d93-87ca-30bcb602b97b"
    assert unit_path(unit, MprFormat.V2, "App.mpr") == f"mprcontents/51/5c/{unit}.mxunit"
    assert unit_path(unit, MprFormat.V1, "App.mpr") == "App.mpr"
    report = synthetic_report(60, MprFormat.V1)
    for finding in report.findings:
        expected = finding.change.qualified_name if finding.change.element_type == FILE_TYPE else "Big.mpr"
        assert artifact_path(finding, report) == expected


# ------------------------------------------------------------------------------------------------- junit


def test_junit_parses_back(reports: dict[str, CheckReport]) -> None:
    for report in [*reports.values(), synthetic_report(500)]:
        root = etree.fromstring(render_junit(report).encode("utf-8"))
        assert root.tag == "testsuites"
        cases = root.findall("testsuite/testcase")
        assert len(cases) == max(1, len(report.findings))
        failing = sum(1 for finding in report.findings if fails_gate(finding, report.verdict))
        assert len(root.findall("testsuite/testcase/failure")) == failing == int(root.get("failures", "-1"))
        assert int(root.get("tests", "-1")) == len(cases)
        waived = sum(1 for finding in report.findings if finding.waived)
        assert len(root.findall("testsuite/testcase/skipped")) == waived == int(root.get("skipped", "-1"))
        assert (failing > 0) == (report.verdict.gate is Gate.FAIL)


def test_junit_threshold_follows_fail_on() -> None:
    strict = etree.fromstring(render_junit(synthetic_report(100, fail_on=Level.OTA)).encode("utf-8"))
    lenient = etree.fromstring(render_junit(synthetic_report(100, fail_on=Level.STORE)).encode("utf-8"))
    assert int(strict.get("failures", "0")) > int(lenient.get("failures", "0")) > 0


# -------------------------------------------------------------------------------------------------- html


def _external_references(document: lxml_html.HtmlElement) -> list[str]:
    found = []
    for element in document.iter():
        if not isinstance(element.tag, str):
            continue
        for attribute in ("src", "href", "action", "data", "poster", "srcset"):
            value = element.get(attribute)
            if value is not None and not value.startswith(("#", "data:")):
                found.append(f"<{element.tag} {attribute}={value!r}>")
    return found


def test_html_parses_and_is_self_contained(reports: dict[str, CheckReport]) -> None:
    for name, report in reports.items():
        text = render_html(report)
        document = lxml_html.document_fromstring(text)
        assert not _external_references(document), name
        assert 'src="http' not in text and 'href="http' not in text
        assert "@import" not in text and "url(" not in text
        banner = by_id(document, "verdict")
        assert banner.get("data-verdict") == report.verdict.level.value
        findings = by_class(document, "finding")
        assert len(findings) == len(report.findings)
        ids = {element.get("id") for element in document.iter() if isinstance(element.tag, str) and element.get("id")}
        for link in document.iter("a"):
            target = link.get("href", "")
            if target.startswith("#") and "=" not in target:
                assert target[1:] in ids, f"{name}: dangling link {target}"
        catalogue = by_id(document, "rules")
        assert len(by_class(catalogue, "rule")) == len({f.rule for f in report.findings} | set(report.rules))
        assert by_id(document, "snapshots") is not None
        assert by_id(document, "plan") is not None


def test_html_escapes_model_strings() -> None:
    text = render_html(synthetic_report(30))
    assert "<script>alert(" not in text
    assert "&lt;script&gt;alert(0)&lt;/script&gt;" in text
    assert "<b>bold</b>" not in text


def test_html_stays_usable_with_thousands_of_findings() -> None:
    report = synthetic_report(6_000)
    text = render_html(report)
    document = lxml_html.document_fromstring(text)
    assert len(by_class(document, "finding")) == len(report.findings)
    none_section = by_id(document, "cat-none")
    assert by_class(none_section, "doc") == []  # folded into counts per rule
    assert len(by_class(none_section, "rulegroup")) == 1
    ota = by_id(document, "cat-ota")
    assert all(not doc.get("open") for doc in by_class(ota, "doc"))  # big mild groups start closed
    assert len(text.encode("utf-8")) < 12_000_000


# ------------------------------------------------------------------------------------------------ github


def test_github_escaping() -> None:
    assert escape_data("100% done\r\nnext: a, b") == "100%25 done%0D%0Anext: a, b"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


COMMAND = re.compile(r"^::(error|warning|notice)( [a-z]+=[^,:\r\n]*(,[a-z]+=[^,:\r\n]*)*)?::[^\r\n]*$")


def test_github_annotations_are_well_formed(reports: dict[str, CheckReport]) -> None:
    for report in [*reports.values(), synthetic_report(2_000)]:
        lines = render_github(report).splitlines()
        assert lines
        for line in lines:
            assert COMMAND.match(line), line
        first = lines[0]
        assert first.startswith("::error " if report.verdict.gate is Gate.FAIL else "::notice ")
        assert report.verdict.level.value.upper() in first
    big = render_github(synthetic_report(2_000)).splitlines()
    assert sum(1 for line in big if line.startswith("::error")) <= 52
    assert "annotation(s) left out" in big[-1]


def test_github_step_summary_is_markdown(reports: dict[str, CheckReport]) -> None:
    summary = render_github_step_summary(reports["store-scenario"])
    assert summary.startswith("## ❌ mxota: STORE — gate failed")
    assert "<details>" in summary


@pytest.fixture(autouse=True)
def _no_stray_output(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Renderers are pure: they never print."""
    yield
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_report_paths_start_at_the_top_of_the_git_repository(tmp_path: Path) -> None:
    """Code scanning and pull-request annotations name files from the top of the repository: an app in a
    subfolder gets the subfolder in front of every path, read from its folder or from a git revision,
    and every path names a file of the repository."""
    repo = tmp_path / "repo"
    _write_store_scenario(repo / "mobile")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "apps"]):
        subprocess.run([*git, *command], check=True, capture_output=True)
    for base, head in (("mobile/before", "mobile/after"), ("git:HEAD:mobile/before", "git:HEAD:mobile/after")):
        report = run_check(CheckOptions(base=base, head=head, cwd=repo))
        paths = {artifact_path(finding, report) for finding in report.findings}
        assert len(paths) > 3
        assert all(path.startswith(("mobile/before/", "mobile/after/")) for path in paths), paths
        assert all((repo / path).is_file() for path in paths), paths
        sarif = json.loads(render_sarif(report))
        uris = {
            location["physicalLocation"]["artifactLocation"]["uri"]
            for result in sarif["runs"][0]["results"]
            for location in result["locations"]
        }
        assert uris == paths
        annotated = re.findall(r"file=([^,:]+)", render_github(report))
        assert annotated and all(path in {escape_property(p) for p in paths} for path in annotated), annotated
    # Outside any repository the paths stay relative to the app folder (the golden files).
    outside = store_scenario_report(tmp_path / "outside")
    assert all(not artifact_path(finding, outside).startswith("after/") for finding in outside.findings)
