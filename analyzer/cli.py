"""The ``mxota`` command line: parse arguments, run the pipeline, write outputs, pick the exit code.

This is the only module that writes files or prints; everything it calls returns data or raises an
:class:`~analyzer.errors.MxotaError`, which becomes one line on stderr and the contract's exit code.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, ParamSpec, TypeVar

import typer

from analyzer import __version__
from analyzer.cache import DiskUnitStore
from analyzer.errors import ExitCode, MxotaError, UsageError
from analyzer.load.limits import DEFAULT_LIMITS, Limits
from analyzer.load.sources import load_source
from analyzer.load.units import walk_is_compiled
from analyzer.model.findings import Gate
from analyzer.model.levels import Level
from analyzer.model.report import CheckReport
from analyzer.pipeline import CheckOptions, load_rules, run_check
from analyzer.progress import LoadBar
from analyzer.progress import wanted as progress_wanted
from analyzer.report.github import render_github_step_summary
from analyzer.report.registry import RENDERERS, OutputFormat
from analyzer.report.text import render_gate_line

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

CacheOption = Annotated[
    Path | None,
    typer.Option(
        "--cache",
        envvar="MXOTA_CACHE_DIR",
        metavar="DIR",
        help="Keep walked units and git: revisions in DIR between runs: a later check decodes only units "
        "whose bytes are new.",
    ),
]

LimitOption = Annotated[
    list[str] | None,
    typer.Option(
        "--limit",
        metavar="NAME=VALUE",
        help="Raise a resource limit for a genuinely huge app, e.g. --limit max_model_bytes=8589934592.",
    ),
]


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _fail(message: str, code: ExitCode) -> None:
    """One line on stderr, whatever the message holds (a file name can contain a line break)."""
    _close_bars()
    one_line = _CONTROL.sub(lambda match: repr(match.group(0))[1:-1], message)
    sys.stderr.write(f"mxota: error: {one_line}\n")
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

    def closing(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return wrapper(*args, **kwargs)
        finally:
            _close_bars()

    return functools.wraps(command)(closing)


def _close_bars() -> None:
    """Take any progress bar off the terminal before the report or an error line is written."""
    while _BARS:
        _BARS.pop().close()


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
    from analyzer.load.xml_snapshot import render_snapshot  # here: a check has no use for it (7 ms)

    loaded = load_source(source, limits=limits_from(limit), progress=_load_bar())
    _close_bars()
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
        loaded = load_source(spec, limits=limits, progress=_load_bar())
        _close_bars()
        meta = loaded.meta
        counts = loaded.element_counts()
        documents = sum(1 for unit in loaded.units if unit.containment == "Documents")
        sys.stdout.write(
            f"{spec}: {loaded.source.kind.value}, {meta.mpr_name}, MPR {meta.mpr_format.value}, "
            f"Studio Pro {meta.product_version}\n"
            f"  {len(loaded.units)} units ({documents} documents), {len(loaded.elements)} elements "
            f"of {len(counts)} types, {len(loaded.files)} side files\n"
        )


def _formats(specs: list[str] | None) -> list[tuple[OutputFormat, Path | None]]:
    chosen: list[tuple[OutputFormat, Path | None]] = []
    for spec in specs or ["text"]:
        name, sep, target = spec.partition(":")
        try:
            fmt = OutputFormat.parse(name)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        chosen.append((fmt, Path(target) if sep and target else None))
    return chosen


def _level(text: str | None) -> Level | None:
    if text is None:
        return None
    try:
        return Level.parse(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _write_reports(report: CheckReport, formats: list[tuple[OutputFormat, Path | None]]) -> None:
    """Render every requested format; files are written here and nowhere else."""
    for fmt, target in formats:
        text = RENDERERS[fmt](report)
        if target is None:
            sys.stdout.write(text)
        else:
            try:
                target.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"{target}: cannot write report: {exc.strerror}") from None
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if fmt is OutputFormat.GITHUB and summary:
            try:
                with Path(summary).open("a", encoding="utf-8") as handle:
                    handle.write(render_github_step_summary(report))
            except OSError as exc:
                raise UsageError(f"{summary}: cannot append the step summary: {exc.strerror}") from None


FormatOption = Annotated[
    list[str] | None,
    typer.Option(
        "--format", "-f", metavar="FMT[:PATH]",
        help="text (default), json, markdown, html, sarif, junit or github; to stdout or PATH; repeatable.",
    ),
]
FailOnOption = Annotated[
    str | None,
    typer.Option("--fail-on", metavar="LEVEL", help="Least severe level that fails the gate (default data-risk)."),
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Config file (default: .mxota.toml in the head app directory).")
]
TemplateOption = Annotated[
    str | None, typer.Option("--native-template", metavar="DIR", help="Native template folder the app is built from.")
]
InitialOption = Annotated[
    bool, typer.Option("--initial", help="No binary in the stores yet: the one source is the first release.")
]
RollbackOption = Annotated[
    bool, typer.Option("--rollback", help="BASE is the live release, HEAD the older one to go back to.")
]
RulesOption = Annotated[Path | None, typer.Option("--rules", help="Rule directory (default: rules/).")]
RequireChannelOption = Annotated[
    bool,
    typer.Option("--require-ota-channel", help="Fail (store) when the released binary has no over-the-air channel."),
]


_BARS: list[LoadBar] = []
"""Bars drawn in this process, closed when the command ends (``guarded`` does it)."""


def _load_bar() -> LoadBar | None:
    """A progress bar for long loads when stderr is a terminal (never in CI or when piped)."""
    if not progress_wanted(sys.stderr):
        return None
    bar = LoadBar(sys.stderr)
    _BARS.append(bar)
    return bar


_RETAINED: list[object] = []
"""The models of this run's check, kept to the end: :func:`main` leaves them to the operating system."""


def _options(
    sources: list[str], initial: bool, rollback: bool, fail_on: str | None, config: Path | None,
    native_template: str | None, rules_dir: Path | None, require: bool, limit: list[str] | None,
    cache: Path | None,
) -> CheckOptions:
    if initial and rollback:
        raise UsageError("--initial and --rollback exclude each other")
    if initial and len(sources) != 1:
        raise UsageError("--initial takes exactly one source: the first release (HEAD)")
    if not initial and len(sources) != 2:
        raise UsageError("give two sources: BASE (released, or LIVE with --rollback) and HEAD (or OLDER)")
    return CheckOptions(
        progress=_load_bar(),
        base=None if initial else sources[0],
        head=sources[-1],
        fail_on=_level(fail_on),
        limits=limits_from(limit),
        rules_dir=rules_dir,
        config_path=config,
        native_template=native_template,
        rollback=rollback,
        require_ota_channel=require,
        unit_store=DiskUnitStore(cache.expanduser()) if cache is not None else None,
        retain=_RETAINED.append,
    )


@app.command()
@guarded
def check(
    sources: Annotated[list[str], typer.Argument(help="BASE HEAD (released, candidate); HEAD alone with --initial.")],
    output_format: FormatOption = None,
    fail_on: FailOnOption = None,
    config: ConfigOption = None,
    native_template: TemplateOption = None,
    initial: InitialOption = False,
    rollback: RollbackOption = False,
    require_ota_channel: RequireChannelOption = False,
    rules_dir: RulesOption = None,
    limit: LimitOption = None,
    cache: CacheOption = None,
) -> None:
    """Compare two snapshots and gate the release: exit 0 passes, 1 fails."""
    formats = _formats(output_format)
    report = run_check(
        _options(
            sources, initial, rollback, fail_on, config, native_template, rules_dir, require_ota_channel, limit, cache
        )
    )
    _close_bars()
    _write_reports(report, formats)
    raise typer.Exit(int(ExitCode.PASSED if report.verdict.gate is Gate.PASS else ExitCode.GATE_FAILED))


@app.command()
@guarded
def push(
    base: Annotated[str, typer.Argument(help="The released snapshot.")],
    head: Annotated[str, typer.Argument(help="The candidate snapshot.")],
    command: Annotated[list[str], typer.Argument(help="-- then the push command and its arguments.")],
    output_format: FormatOption = None,
    fail_on: FailOnOption = None,
    config: ConfigOption = None,
    native_template: TemplateOption = None,
    require_ota_channel: RequireChannelOption = False,
    rules_dir: RulesOption = None,
    limit: LimitOption = None,
    cache: CacheOption = None,
) -> None:
    """Run the push command (after --) only when the gate passes; otherwise print why and exit 1."""
    if not command:
        raise UsageError("give the push command after --, e.g. -- native-builder release push-update ...")
    formats = _formats(output_format)
    report = run_check(
        _options(
            [base, head], False, False, fail_on, config, native_template, rules_dir, require_ota_channel, limit, cache
        )
    )
    _close_bars()
    if report.verdict.gate is not Gate.PASS:
        _write_reports(report, formats)
        sys.stderr.write(f"mxota: not pushing: {render_gate_line(report)}\n")
        raise typer.Exit(int(ExitCode.GATE_FAILED))
    sys.stdout.flush()
    try:
        done = subprocess.run(command, check=False)
    except FileNotFoundError:
        raise UsageError(f"{command[0]}: push command not found") from None
    except OSError as exc:
        raise UsageError(f"{command[0]}: cannot run the push command: {exc.strerror}") from None
    pushed = dataclasses.replace(report, pushed=(shlex.join(command), f"exit code {done.returncode}"))
    _write_reports(pushed, formats)
    raise typer.Exit(done.returncode)


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
    """Print the mxota version, and whether its unit walk is compiled (see the README's set-up)."""
    build = "unit walk compiled with mypyc" if walk_is_compiled() else "unit walk in pure Python"
    sys.stdout.write(f"mxota {__version__} ({build})\n")


def main() -> NoReturn:
    """Console entry point. A closed pipe (``mxota check ... | head``) ends the run quietly, as for any
    Unix tool, instead of reporting an internal error.

    The cyclic garbage collector is off: a run is one short batch whose model objects (millions in a
    large app) all live until it exits, and the collector only rescanned them, again and again, as the
    graphs and reports were built (a third of a large check; see the README's performance section).
    Nothing mxota builds relies on it: its data is acyclic frozen records, freed by reference counting.
    For the same reason the process ends without freeing them (:func:`_exit`).
    """
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    gc.disable()
    try:
        app()
    except SystemExit as done:
        _exit(done.code)
    _exit(0)


def _exit(code: object) -> NoReturn:
    """End the process with ``code`` as ``sys.exit`` would, without tearing the interpreter down.

    Every report is written and closed by now; what is left is freeing the models object by object
    (0.6-0.7 s of a check at scale) and the interpreter's own shutdown, which the operating system does
    at once. Standard streams are flushed first; nothing else of mxota's waits for shutdown (no
    ``atexit`` handlers, worker processes already joined, temporary folders already removed).
    """
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        sys.stderr.write(f"{code}\n")
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 120  # as Python itself ends when it cannot flush at exit
    os._exit(status)
