"""Every report format and its renderer: one explicit mapping, each renderer a pure function."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from types import MappingProxyType

from analyzer.model.report import CheckReport
from analyzer.report.github import render_github
from analyzer.report.html import render_html
from analyzer.report.json_report import render_json
from analyzer.report.junit import render_junit
from analyzer.report.markdown import render_markdown
from analyzer.report.sarif import render_sarif
from analyzer.report.text import render_text

Renderer = Callable[[CheckReport], str]


class OutputFormat(enum.Enum):
    """The names ``--format`` accepts."""

    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"
    HTML = "html"
    SARIF = "sarif"
    JUNIT = "junit"
    GITHUB = "github"

    @classmethod
    def parse(cls, text: str) -> OutputFormat:
        """A format from its name, with a message listing the valid names when it is wrong."""
        for fmt in cls:
            if fmt.value == text:
                return fmt
        raise ValueError(f"unknown format {text!r}; formats are {', '.join(f.value for f in cls)}")


RENDERERS: Mapping[OutputFormat, Renderer] = MappingProxyType(
    {
        OutputFormat.TEXT: render_text,
        OutputFormat.JSON: render_json,
        OutputFormat.MARKDOWN: render_markdown,
        OutputFormat.HTML: render_html,
        OutputFormat.SARIF: render_sarif,
        OutputFormat.JUNIT: render_junit,
        OutputFormat.GITHUB: render_github,
    }
)
"""Every output format's renderer (a test checks that none is missing)."""
