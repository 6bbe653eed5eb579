"""Print what loading and checking cost against the floor of reading and decoding the model.

    python -m benchmarks.load [APP_DIR [OTHER_APP_DIR]]

Without arguments it materializes the largest revision pair of the shared corpus
(farmworker-wallet-os 60fd7b3 and 7cb66ee) into a temporary folder. The machine is shared and noisy:
compare the ratios printed by one run, not absolute times across runs.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bson

from analyzer.load.sources import load_source
from analyzer.model.levels import Level
from analyzer.pipeline import check_snapshots, load_rules

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
PROJECT = "openwallet-foundation-labs__farmworker-wallet-os"
REVISIONS = ("60fd7b3", "7cb66ee")


def floor(app: Path) -> float:
    """Seconds to read every unit file (or the .mpr) and ``bson.decode`` each unit, single process."""
    start = time.perf_counter()
    units = sorted(app.glob("mprcontents/*/*/*.mxunit"))
    if units:
        for unit in units:
            bson.decode(unit.read_bytes())
    else:
        import sqlite3

        mpr = next(app.glob("*.mpr"))
        connection = sqlite3.connect(mpr.resolve().as_uri() + "?mode=ro&immutable=1", uri=True)
        for (contents,) in connection.execute("select Contents from Unit"):
            bson.decode(contents)
        connection.close()
    return time.perf_counter() - start


def best(function: object, runs: int = 3) -> float:
    """The fastest of a few runs (the least disturbed by other work on the machine)."""
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        function()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str]) -> int:
    if argv:
        apps = [Path(a) for a in argv]
    else:
        scratch = Path(tempfile.mkdtemp(prefix="mxota-bench-"))
        for revision in REVISIONS:
            subprocess.run(
                [sys.executable, str(CORPUS / "materialize.py"), str(scratch), "--project", PROJECT, "--rev", revision],
                check=True, capture_output=True,
            )
        apps = [scratch / PROJECT / revision for revision in REVISIONS]
    base, head = apps[0], apps[-1]
    ruleset = load_rules()
    floor_time = min(floor(base) for _ in range(3))
    load_time = best(lambda: load_source(str(base)))
    a, b = load_source(str(base)), load_source(str(head))
    check_time = best(lambda: check_snapshots(a, b, ruleset, Level.DATA_RISK), runs=2)
    elements = len(a.elements)
    print(f"app: {base} ({len(a.units)} units, {elements} elements, {len(a.files)} side files)")
    print(f"floor (read + bson.decode every unit): {floor_time:.2f} s")
    print(f"mxota load of one snapshot:             {load_time:.2f} s   ratio to floor {load_time / floor_time:.2f}x")
    print(f"check of the pair after loading:  {check_time:.2f} s   ratio to one load {check_time / load_time:.2f}x")
    total = 2 * load_time + check_time
    print(f"whole check (two loads + check):  {total:.2f} s   ratio to loading both {total / (2 * load_time):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
