"""The primary-purpose heuristic (Apple 2.5.2): a release that adds most native pages asks a person."""

from __future__ import annotations

from pathlib import Path

from analyzer.load.sources import load_source
from analyzer.model.levels import Level
from analyzer.pipeline import check_snapshots, load_rules
from fixtures.builder import edit
from fixtures.builder import model as m
from fixtures.builder.apps import NATIVE_LAYOUT, field_service_1_0
from fixtures.builder.writer import write_app


def _with_new_native_pages(count: int) -> m.App:
    app = field_service_1_0()
    for number in range(count):
        page = m.Page(
            name=f"Survey{number}",
            layout=NATIVE_LAYOUT,
            title=f"Survey {number}",
            widgets=(m.Text(name="intro", text="A different app"),),
        )
        app = edit.add_document(app, "FieldService", page)
    return app


def _check(tmp_path: Path, after: m.App) -> set[str]:
    write_app(field_service_1_0(), tmp_path / "before")
    write_app(after, tmp_path / "after")
    report = check_snapshots(
        load_source(str(tmp_path / "before")), load_source(str(tmp_path / "after")), load_rules(), Level.DATA_RISK
    )
    return {finding.rule for finding in report.findings}


def test_many_new_native_pages_ask_for_a_human_decision(tmp_path: Path) -> None:
    assert "primary-purpose-review" in _check(tmp_path, _with_new_native_pages(4))


def test_a_single_new_page_does_not(tmp_path: Path) -> None:
    assert "primary-purpose-review" not in _check(tmp_path, _with_new_native_pages(1))
