"""Read the rule files; parsing and validation are the classify layer's (pure) job."""

from __future__ import annotations

import sys
from pathlib import Path

from analyzer.errors import UsageError

SOURCE_RULES_DIR = Path(__file__).resolve().parent.parent.parent / "rules"
"""``rules/`` at the top of the project, beside the ``analyzer`` package (a checkout or editable install)."""
INSTALLED_RULES_DIR = Path(sys.prefix) / "share" / "mxota" / "rules"
"""Where a wheel installs the rule set (``[tool.setuptools.data-files]`` in pyproject.toml)."""


def default_rules_dir() -> Path:
    """The project's ``rules/`` when running from a checkout, else the installed copy."""
    return SOURCE_RULES_DIR if SOURCE_RULES_DIR.is_dir() else INSTALLED_RULES_DIR


def read_rule_files(directory: Path | None = None) -> list[tuple[str, str]]:
    """``(path, text)`` of every ``*.toml`` in the rules directory, sorted by name."""
    folder = directory if directory is not None else default_rules_dir()
    if not folder.is_dir():
        raise UsageError(f"{folder}: rules directory not found")
    files: list[tuple[str, str]] = []
    for path in sorted(folder.glob("*.toml")):
        try:
            files.append((f"rules/{path.name}", path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: cannot read rule file ({exc})") from None
    return files
