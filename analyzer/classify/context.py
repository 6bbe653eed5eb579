"""What facts may look at: both snapshots' graphs and their native analyses, read-only."""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.graph.build import ModelGraph
from analyzer.graph.queries import NativeFacts
from analyzer.model.native import TemplateRange


@dataclass(frozen=True, slots=True)
class ClassifyContext:
    """The two sides of a check, each with its graph and native facts."""

    before: ModelGraph
    after: ModelGraph
    before_native: NativeFacts
    after_native: NativeFacts
    template_versions: tuple[TemplateRange, ...] = ()
    """The newest known Studio Pro → native template table (``rules/template-versions.toml``)."""
    known_in_binary: tuple[str, ...] = ()
    """``name`` or ``name@version`` of native modules the team states the released binary contains."""
    template_provides: tuple[str, ...] = ()
    """Native modules every native template ships (globs), so a component needing them needs no build."""
