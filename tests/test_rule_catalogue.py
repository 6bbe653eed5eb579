"""docs/rules.md is the committed output of ``mxota rules --format markdown``; it must not go stale."""

from __future__ import annotations

import difflib
from pathlib import Path

from typer.testing import CliRunner

from analyzer.cli import app

RULES_DOC = Path(__file__).resolve().parents[1] / "docs" / "rules.md"
REGENERATE = "mxota rules --format markdown > docs/rules.md"


def test_rule_catalogue_doc_is_current() -> None:
    result = CliRunner().invoke(app, ["rules", "--format", "markdown"])
    assert result.exit_code == 0, result.output
    generated = result.stdout
    committed = RULES_DOC.read_text(encoding="utf-8") if RULES_DOC.is_file() else ""
    if committed != generated:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                generated.splitlines(keepends=True),
                "docs/rules.md (committed)",
                "mxota rules --format markdown",
                n=1,
            )
        )
        raise AssertionError(
            f"docs/rules.md is out of date with rules/; regenerate it from the repository root with\n\n"
            f"    {REGENERATE}\n\nand commit it. Difference:\n{diff[:4000]}"
        )
