"""Print what loading and checking cost against the floor of reading and decoding the model.

    python -m benchmarks.load [APP_DIR [OTHER_APP_DIR]]

Without arguments it materializes the largest revision pair of the shared corpus
(farmworker-wallet-os 60fd7b3 and 7cb66ee) into a temporary folder. It prints the floor (read and
``bson.decode`` every unit, one process), one load cold and from a warm ``--cache``, and the whole check
of the pair both ways. The machine is shared and noisy: compare the ratios printed by one run, not
absolute times across runs.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import bson

from analyzer.cache import DiskUnitStore
from analyzer.load.memo import ReadMemo
from analyzer.load.sources import load_source
from analyzer.pipeline import CheckOptions, run_check

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


def best(function: Callable[[], object], runs: int = 3) -> float:
    """The fastest of a few runs (the least disturbed by other work on the machine)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str]) -> int:
    # As the CLI does (analyzer.cli.main): one batch, every object lives to the end, no cyclic collector.
    gc.disable()
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
    floor_time = min(floor(base) for _ in range(3))
    both_floor = floor_time + min(floor(head) for _ in range(3))
    load_time = best(lambda: load_source(str(base)))
    with tempfile.TemporaryDirectory(prefix="mxota-bench-cache-") as cache:
        store = DiskUnitStore(Path(cache))
        load_source(str(base), memo=ReadMemo(store=store))  # fills the cache
        warm_time = best(lambda: load_source(str(base), memo=ReadMemo(store=store)))
        check_time = best(lambda: run_check(CheckOptions(base=str(base), head=str(head))), runs=2)
        warm_check = best(lambda: run_check(CheckOptions(base=str(base), head=str(head), unit_store=store)), runs=2)
    snapshot = load_source(str(base))
    print(f"app: {base} ({len(snapshot.units)} units, {len(snapshot.elements)} elements, "
          f"{len(snapshot.files)} side files)")
    print(f"floor (read + bson.decode every unit):  {floor_time:6.2f} s")
    print(f"load of one snapshot:                   {load_time:6.2f} s   {load_time / floor_time:5.2f}x floor "
          "(target 1.5x)")
    print(f"load of one snapshot, warm --cache:     {warm_time:6.2f} s   {warm_time / floor_time:5.2f}x floor")
    print(f"whole check of the pair:                {check_time:6.2f} s   {check_time / both_floor:5.2f}x floor "
          f"of both, {check_time / (2 * load_time):.2f}x loading both")
    print(f"whole check of the pair, warm --cache:  {warm_check:6.2f} s   "
          f"{warm_check / both_floor:5.2f}x floor of both")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
