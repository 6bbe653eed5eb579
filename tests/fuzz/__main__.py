"""Run the fuzz targets: ``python -m tests.fuzz [--seconds N] [--engine auto|atheris|hypothesis] [TARGET...]``.

With atheris installed (``pip install atheris``) each target runs under libFuzzer in its own process,
seeded from the example apps; crashing inputs are written to ``--findings`` (default
``/tmp/mxota-fuzz``). Without it, the hypothesis engine runs each target for the same time. Exit status
is non-zero when any target found something.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.fuzz.targets import TARGETS, seeds

REPO = Path(__file__).resolve().parents[2]


def _atheris(target: str, seconds: int, findings: Path, extra: list[str]) -> tuple[bool, str]:
    corpus = Path(tempfile.mkdtemp(prefix=f"mxota-fuzz-{target}-"))
    for index, seed in enumerate(seeds(target)):
        (corpus / f"seed-{index}").write_bytes(seed)
    out = findings / target
    out.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "tests.fuzz.atheris_main",
        target,
        f"-max_total_time={seconds}",
        "-rss_limit_mb=4096",
        "-timeout=30",
        f"-artifact_prefix={out}/",
        "-print_final_stats=1",
        *extra,
        str(corpus),
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if not line.startswith("INFO: Instr")]
    marker = next((i for i, line in enumerate(lines) if "Uncaught Python exception" in line), None)
    finding = lines[marker : marker + 30] if marker is not None else []
    summary = [line for line in lines if line.startswith(("Done ", "stat::", "artifact_prefix", "SUMMARY"))]
    return done.returncode == 0, "\n".join(finding + summary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("targets", nargs="*", default=sorted(TARGETS), help=f"of {', '.join(sorted(TARGETS))}")
    parser.add_argument("--seconds", type=int, default=60, help="time per target (default 60)")
    parser.add_argument("--engine", choices=["auto", "atheris", "hypothesis"], default="auto")
    parser.add_argument("--findings", type=Path, default=Path(tempfile.gettempdir()) / "mxota-fuzz")
    parser.add_argument("--libfuzzer", action="append", default=[], help="extra libFuzzer flag (atheris)")
    args = parser.parse_args(argv)
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if importlib.util.find_spec("atheris") else "hypothesis"
    failed = []
    for target in args.targets:
        if target not in TARGETS:
            parser.error(f"unknown target {target!r}")
        started = time.monotonic()
        if engine == "atheris":
            ok, report = _atheris(target, args.seconds, args.findings, args.libfuzzer)
        else:
            from tests.fuzz.engine import run

            try:
                count = run(target, args.seconds)
                ok, report = True, f"{count} inputs"
            except Exception as error:  # a finding: report it and go on with the next target
                ok, report = False, f"{type(error).__name__}: {error}"
        took = time.monotonic() - started
        print(f"[{engine}] {target}: {'ok' if ok else 'FINDING'} in {took:.0f}s\n{report}\n", flush=True)
        if not ok:
            failed.append(target)
    if failed:
        print(f"findings in: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
