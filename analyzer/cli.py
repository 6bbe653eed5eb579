"""The ``mxota`` command line: parse arguments, run the pipeline, write outputs, pick the exit code.

This is the only module that writes files or prints; everything it calls returns data or raises an
:class:`~analyzer.errors.MxotaError`, which becomes one line on stderr and the contract's exit code.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer

from analyzer import __version__
from analyzer.errors import ExitCode, MxotaError, UsageError
from analyzer.load.limits import DEFAULT_LIMITS, Limits
from analyzer.load.sources import load_source
from analyzer.load.xml_snapshot import render_snapshot
from analyzer.model.findings import Gate
from analyzer.model.levels import Level
from analyzer.pipeline import CheckOptions, load_rules, run_check
from analyzer.report.json_report import render_json
from analyzer.report.text import render_text

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="mxota",
    help=(
        "Can this Mendix native release go over the air, does it need a store release, "
        "and does it put offline users' data at risk?\n\n"
        "Exit codes: 0 gate passed, 1 gate failed, 2 usage/config/rule-set error, 3 unreadable input."
    ),
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
)

LimitOption = Annotated[
    list[str] | None,
    typer.Option(
        "--limit",
        metavar="NAME=VALUE",
        help="Raise a resource limit for a genuinely huge app, e.g. --limit max_model_bytes=8589934592.",
    ),
]


def _fail(message: str, code: ExitCode) -> None:
    sys.stderr.write(f"mxota: error: {message}\n")
    raise typer.Exit(int(code))


def guarded(command: Callable[P, R]) -> Callable[P, R]:
    """Turn mxota errors into one stderr line and an exit code; never show a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except MxotaError as error:
            _fail(str(error), error.exit_code)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except RecursionError:
            _fail("input is nested too deeply to read", ExitCode.INPUT)
        except MemoryError:
            _fail("input is too large to read in memory", ExitCode.INPUT)
        except Exception as error:  # fail closed and loud, but without a traceback
            if os.environ.get("MXOTA_DEBUG"):
                raise
            _fail(f"internal error, please report it: {type(error).__name__}: {error}", ExitCode.INPUT)
        raise AssertionError("unreachable")

    return wrapper


def limits_from(options: list[str] | None) -> Limits:
    """Limits from ``--limit NAME=VALUE`` options and ``MXOTA_LIMIT_<NAME>`` variables."""
    overrides: dict[str, str] = {}
    for key, value in os.environ.items():
        if key.startswith("MXOTA_LIMIT_"):
            overrides[key[len("MXOTA_LIMIT_") :]] = value
    for option in options or ():
        name, sep, value = option.partition("=")
        if not sep:
            raise UsageError(f"--limit needs NAME=VALUE, not {option!r}")
        overrides[name] = value
    return DEFAULT_LIMITS.with_overrides(overrides)


@app.command()
@guarded
def snapshot(
    source: Annotated[str, typer.Argument(help="App directory, .mpr, .mpk, git:REV[:SUBDIR] or XML snapshot.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the XML snapshot.")],
    limit: LimitOption = None,
) -> None:
    """Export one source as a canonical XML snapshot (the baseline to archive with a store release)."""
    loaded = load_source(source, limits=limits_from(limit))
    data = render_snapshot(loaded)
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"{output}: cannot write: {exc.strerror}") from None
    sys.stdout.write(f"wrote {output} ({len(loaded.elements)} elements, {len(loaded.files)} files)\n")


@app.command()
@guarded
def inspect(
    sources: Annotated[list[str], typer.Argument(help="One or more sources to summarise.")],
    limit: LimitOption = None,
) -> None:
    """Read sources and print what they hold: Studio Pro version, format, units, elements, files."""
    limits = limits_from(limit)
    for spec in sources:
        loaded = load_source(spec, limits=limits)
        meta = loaded.meta
        counts = loaded.element_counts()
        documents = sum(1 for unit in loaded.units if unit.containment == "Documents")
        sys.stdout.write(
            f"{spec}: {loaded.source.kind.value}, {meta.mpr_name}, MPR {meta.mpr_format.value}, "
            f"Studio Pro {meta.product_version}\n"
            f"  {len(loaded.units)} units ({documents} documents), {len(loaded.elements)} elements "
            f"of {len(counts)} types, {len(loaded.files)} side files\n"
        )


RENDERERS = {"text": render_text, "json": render_json}
"""Every report format by name; each is a pure function of the report."""


def _formats(specs: list[str] | None) -> list[tuple[str, Path | None]]:
    chosen: list[tuple[str, Path | None]] = []
    for spec in specs or ["text"]:
        name, sep, target = spec.partition(":")
        if name not in RENDERERS:
            raise UsageError(f"unknown format {name!r}; formats are {', '.join(RENDERERS)}")
        chosen.append((name, Path(target) if sep and target else None))
    return chosen


def _level(text: str) -> Level:
    try:
        return Level.parse(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


@app.command()
@guarded
def check(
    base: Annotated[str, typer.Argument(help="The released snapshot (what devices run now).")],
    head: Annotated[str, typer.Argument(help="The candidate snapshot.")],
    output_format: Annotated[
        list[str] | None,
        typer.Option("--format", "-f", metavar="FMT[:PATH]", help="text (default) or json; repeatable."),
    ] = None,
    fail_on: Annotated[
        str, typer.Option("--fail-on", metavar="LEVEL", help="Least severe level that fails the gate.")
    ] = "data-risk",
    rules_dir: Annotated[Path | None, typer.Option("--rules", help="Rule directory (default: rules/).")] = None,
    limit: LimitOption = None,
) -> None:
    """Compare two snapshots and gate the release: exit 0 passes, 1 fails."""
    formats = _formats(output_format)
    options = CheckOptions(
        base=base, head=head, fail_on=_level(fail_on), limits=limits_from(limit), rules_dir=rules_dir
    )
    report = run_check(options)
    for name, target in formats:
        text = RENDERERS[name](report)
        if target is None:
            sys.stdout.write(text)
        else:
            try:
                target.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"{target}: cannot write report: {exc.strerror}") from None
    raise typer.Exit(int(ExitCode.PASSED if report.verdict.gate is Gate.PASS else ExitCode.GATE_FAILED))


@app.command()
@guarded
def rules(
    output_format: Annotated[str, typer.Option("--format", help="text, markdown or json.")] = "text",
    rules_dir: Annotated[Path | None, typer.Option("--rules", help="Rule directory (default: rules/).")] = None,
) -> None:
    """Print the rule catalogue."""
    ruleset = load_rules(rules_dir)
    if output_format == "json":
        import json

        data = [
            {
                "id": r.rule.id, "level": r.rule.level.value, "title": r.rule.title, "reason": r.rule.reason,
                "advice": r.rule.advice, "source": r.rule.source, "rows": list(r.rule.rows),
            }
            for r in ruleset.rules
        ]
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return
    if output_format == "markdown":
        lines = ["# mxota rule catalogue", "", "Generated by `mxota rules --format markdown`.", ""]
        lines += ["| id | level | title | rows |", "|---|---|---|---|"]
        lines += [
            f"| [`{r.rule.id}`](#{r.rule.id}) | {r.rule.level.value} | {r.rule.title} | {', '.join(r.rule.rows)} |"
            for r in ruleset.rules
        ]
        for r in ruleset.rules:
            lines += ["", f"## {r.rule.id}", "", f"**{r.rule.title}** — level `{r.rule.level.value}`", "",
                      f"Why: {r.rule.reason}", "", f"Advice: {r.rule.advice}", "", f"Source: {r.rule.source}"]
        sys.stdout.write("\n".join(lines) + "\n")
        return
    if output_format != "text":
        raise UsageError(f"unknown format {output_format!r}; formats are text, markdown, json")
    for r in ruleset.rules:
        sys.stdout.write(f"{r.rule.id:<40} {r.rule.level.value:<13} {r.rule.title}\n")


@app.command()
@guarded
def explain(
    rule_id: Annotated[str, typer.Argument(help="A rule id, as printed in reports.")],
    rules_dir: Annotated[Path | None, typer.Option("--rules", help="Rule directory (default: rules/).")] = None,
) -> None:
    """Explain one rule: level, why, what to do, and the source it rests on."""
    ruleset = load_rules(rules_dir)
    loaded = ruleset.get(rule_id)
    if loaded is None:
        import difflib

        hint = difflib.get_close_matches(rule_id, [r.rule.id for r in ruleset.rules], n=1)
        raise UsageError(f"no rule {rule_id!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    rule = loaded.rule
    rows = f" (rule table rows {', '.join(rule.rows)})" if rule.rows else ""
    sys.stdout.write(
        f"{rule.id}: {rule.title}\nlevel: {rule.level.value}{rows}\n\nwhy: {rule.reason}\n\n"
        f"advice: {rule.advice}\n\nsource: {rule.source}\ndefined in: {rule.file}\n"
    )


@app.command()
def version() -> None:
    """Print the mxota version."""
    sys.stdout.write(f"mxota {__version__}\n")


def main() -> None:
    """Console entry point."""
    app()
