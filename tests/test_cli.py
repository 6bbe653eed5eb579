"""The command line: exit codes, one-line errors, config and waivers, initial and rollback checks, push."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analyzer.cli import app
from tests.conftest import APPS
from tests.test_fast_paths import commit_revisions

BASE = str(APPS / "field-service-1.0")
HEAD = str(APPS / "field-service-1.1")
runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_check_passes_an_ota_redeploy_release_with_the_default_threshold() -> None:
    code, out, err = run("check", BASE, HEAD)
    assert code == 0, err
    assert out.startswith("mxota: OTA-REDEPLOY — gate PASSED (fail-on data-risk)")
    assert "channel: mendix-ota" in out


def test_fail_on_lowers_the_threshold() -> None:
    code, out, _ = run("check", BASE, HEAD, "--fail-on", "ota")
    assert code == 1
    assert "gate FAILED (fail-on ota)" in out


def test_json_report_is_byte_identical_across_runs(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert run("check", BASE, HEAD, "--format", f"json:{first}")[0] == 0
    assert run("check", BASE, HEAD, "--format", f"json:{second}")[0] == 0
    assert first.read_bytes() == second.read_bytes()
    report = json.loads(first.read_text(encoding="utf-8"))
    assert {"schema_version", "tool", "base", "head", "verdict", "gate", "fail_on", "delivery", "counts",
            "findings", "plan"} <= set(report)
    finding = report["findings"][0]
    assert {"fingerprint", "rule", "level", "change", "element", "details", "reason", "advice", "impacts",
            "waived"} <= set(finding)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("check", BASE), "give two sources"),
        (("check", BASE, HEAD, "--fail-on", "sometimes"), "unknown level 'sometimes'"),
        (("check", BASE, HEAD, "--format", "pdf"), "unknown format 'pdf'"),
        (("check", BASE, HEAD, "--limit", "max_cows=3"), "unknown limit 'max_cows'"),
        (("explain", "page-changd"), "did you mean 'page-changed'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    code, _, err = run(*args)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_missing_input_is_exit_3_with_one_line(tmp_path: Path) -> None:
    code, out, err = run("check", BASE, str(tmp_path / "nope"))
    assert code == 3
    assert err == f"mxota: error: {tmp_path / 'nope'}: no such file or directory\n"
    assert out == ""


def test_initial_release_is_a_store_release() -> None:
    code, out, _ = run("check", "--initial", BASE)
    assert code == 1
    assert "INITIAL RELEASE" in out and "[initial-store-release]" in out


def test_rollback_past_an_added_synced_attribute_is_a_data_risk() -> None:
    code, out, _ = run("check", HEAD, BASE, "--rollback")
    assert code == 1
    assert out.startswith("mxota: DATA-RISK")
    assert "ROLLBACK" in out and "synced-entity-removed-or-renamed" in out


CONFIG = """
fail_on = "ota-redeploy"
ota_channel = "codepush"
native_dependencies_in_binary = ["react-native-maps@1.20.1"]
[levels]
"native-styling-changed" = "ota-redeploy"
[[waiver]]
rule = "domain-model-changed"
element = "FieldService.WorkOrder.ContactPhone"
reason = "optional field; runtime deployed first"
owner = "jane@example.com"
expires = 2099-01-31
[[waiver]]
rule = "page-changed"
element = "FieldService.NoSuchPage"
reason = "left over"
owner = "bob@example.com"
expires = 2099-01-31
"""


def test_config_threshold_channel_levels_and_waivers(tmp_path: Path) -> None:
    config = tmp_path / "mxota.toml"
    config.write_text(CONFIG, encoding="utf-8")
    code, _out, _ = run("check", BASE, HEAD, "--config", str(config), "--format", f"json:{tmp_path / 'r.json'}")
    assert code == 1  # fail_on ota-redeploy from the config
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["fail_on"] == "ota-redeploy"
    assert report["delivery"]["channel"] == "codepush" and report["delivery"]["stated_in_config"]
    assert report["plan"]["command"].startswith("native-builder release push-update")
    styling = [f for f in report["findings"] if f["rule"] == "native-styling-changed"]
    assert styling and styling[0]["level"] == "ota-redeploy"
    waived = [f for f in report["findings"] if f["waived"]]
    assert [f["element"]["qualified_name"] for f in waived] == ["FieldService.WorkOrder.ContactPhone"]
    assert "optional field" in waived[0]["waiver_reason"]
    assert report["counts"]["waived"] == 1
    assert any("matches no finding" in note for note in report["waiver_notes"])


def test_an_expired_waiver_fails_the_gate(tmp_path: Path) -> None:
    config = tmp_path / ".mxota.toml"
    config.write_text(CONFIG.replace("2099-01-31", "2020-01-31").replace('fail_on = "ota-redeploy"', ""),
                      encoding="utf-8")
    code, out, _ = run("check", BASE, HEAD, "--config", str(config))
    assert code == 1
    assert "expired on 2020-01-31" in out.splitlines()[0]


def test_config_errors_name_the_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / ".mxota.toml"
    config.write_text('colour = 1\n[levels]\n"page-changd" = "ota"\n[[waiver]]\nrule = "page-changed"\n',
                      encoding="utf-8")
    code, _, err = run("check", BASE, HEAD, "--config", str(config))
    assert code == 2
    assert f"{config}: colour: unknown key" in err
    assert "levels.page-changd: no such rule (did you mean 'page-changed'?)" in err
    assert "waiver #1: needs element, reason, owner, expires" in err


def test_require_ota_channel_turns_a_missing_channel_into_a_store_finding(tmp_path: Path) -> None:
    config = tmp_path / ".mxota.toml"
    config.write_text('ota_channel = "none"\n', encoding="utf-8")
    code, out, _ = run("check", BASE, HEAD, "--config", str(config), "--require-ota-channel")
    assert code == 1
    assert "[ota-channel-required]" in out


def test_no_channel_is_said_first(tmp_path: Path) -> None:
    config = tmp_path / ".mxota.toml"
    config.write_text('ota_channel = "none"\n', encoding="utf-8")
    _, out, _ = run("check", BASE, HEAD, "--config", str(config))
    assert out.splitlines()[1].startswith("WARNING: the released binary has no over-the-air channel")


def test_push_runs_the_command_only_when_the_gate_passes(tmp_path: Path) -> None:
    marker = tmp_path / "pushed"
    command = [sys.executable, "-c", f"open({str(marker)!r}, 'w').write('x')"]
    code, _, err = run("push", BASE, HEAD, "--fail-on", "ota", "--", *command)
    assert code == 1 and not marker.exists()
    assert err.startswith("mxota: not pushing: OTA-REDEPLOY")
    code, out, _ = run("push", BASE, HEAD, "--", *command)
    assert code == 0 and marker.exists()
    assert "pushed: " in out


def test_push_passes_the_command_exit_code_through() -> None:
    code, _, _ = run("push", BASE, HEAD, "--", sys.executable, "-c", "raise SystemExit(7)")
    assert code == 7


def test_github_format_appends_the_step_summary(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    code, out, _ = run("check", BASE, HEAD, "--format", "github", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert code == 0
    assert "::" in out
    assert "mxota" in summary.read_text(encoding="utf-8")


def test_rules_and_explain() -> None:
    code, out, _ = run("rules")
    assert code == 0 and "synced-entity-removed-or-renamed" in out
    code, out, _ = run("explain", "synced-entity-removed-or-renamed")
    assert code == 0 and "level: data-risk" in out and "source:" in out


def test_snapshot_round_trip_through_the_cli(tmp_path: Path) -> None:
    target = tmp_path / "baseline.xml"
    assert run("snapshot", BASE, "-o", str(target))[0] == 0
    code, out, _ = run("check", str(target), HEAD)
    assert code == 0
    assert out.startswith("mxota: OTA-REDEPLOY")


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("check", BASE, HEAD), 0),
        (("check", BASE, HEAD, "--fail-on", "ota", "--format", "markdown"), 1),
        (("push", BASE, HEAD, "--", sys.executable, "-c", "raise SystemExit(7)"), 7),
        (("check", BASE), 2),
        (("check", BASE, str(APPS / "no-such-app")), 3),
        (("version",), 0),
    ],
)
def test_the_console_entry_point_ends_with_the_same_code_and_output(args: tuple[str, ...], code: int) -> None:
    """``mxota`` ends with ``os._exit`` (it leaves its models to the operating system): every exit code
    and every byte of output must come out as when the command returns normally."""
    buffered = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    done = subprocess.run(
        [sys.executable, "-m", "analyzer", *args],
        capture_output=True, text=True, check=False, timeout=120, env=buffered,
    )
    in_process, out, err = run(*args)
    assert (done.returncode, done.stdout) == (in_process, out)
    assert done.returncode == code
    if code in (2, 3):
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("mxota: error: ")
    else:
        assert done.stderr == err == ""


def _imported(*args: str, cwd: Path | None = None, whole: bool = False) -> set[str]:
    """Top-level packages (``whole``: every module) a fresh ``mxota`` process imports for ``args``
    (from ``-X importtime``)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "analyzer", *args],
        capture_output=True, text=True, check=False, timeout=120, cwd=cwd,
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    lines = (line.rpartition("|")[2] for line in done.stderr.splitlines() if line.startswith("import time:"))
    return {name.strip() if whole else name.strip().partition(".")[0] for name in lines}


def test_a_check_imports_what_only_some_runs_need_when_they_need_it(tmp_path: Path) -> None:
    """A check of a small app is mostly start-up: the progress bar's ``rich``, the HTML report's
    ``jinja2`` and the document graph's ``networkx`` are imported only by the runs that use them."""
    plain = _imported("check", BASE, HEAD, "--format", "json")
    assert "bson" in plain and "typer" in plain  # the probe sees what is imported
    assert plain.isdisjoint({"rich", "jinja2", "networkx"})
    assert "jinja2" in _imported("check", BASE, HEAD, "--format", f"html:{tmp_path / 'report.html'}")


def test_a_check_that_forks_nothing_and_reads_no_snapshot_imports_neither_module(tmp_path: Path) -> None:
    """``multiprocessing`` is imported by the first worker a run forks, the XML snapshot reader by the
    first snapshot it reads or writes (7 ms each of a start-up that a warm ``git:`` check at scale
    pays on 1.8-2 s): a ``git:`` check of a small app forks nothing."""
    repo = tmp_path / "repo"
    commit_revisions(repo, [APPS / "field-service-1.0", APPS / "field-service-1.1"])
    checked = _imported("check", "git:HEAD~1:app", "git:HEAD:app", "--format", "json", cwd=repo, whole=True)
    assert "analyzer.load.mpr" in checked  # the probe sees mxota's own modules
    assert not {"multiprocessing", "analyzer.load.xml_snapshot"} & checked
    exported = _imported("snapshot", BASE, "-o", str(tmp_path / "base.xml"), whole=True)
    assert "analyzer.load.xml_snapshot" in exported
    assert "analyzer.load.xml_snapshot" in _imported("check", str(tmp_path / "base.xml"), HEAD, whole=True)
