"""Print what loading and checking cost against the floor of reading and decoding the model.

    python -m benchmarks.load [--rounds N] [APP_DIR [OTHER_APP_DIR]]

Without arguments it materializes the largest revision pair of the shared corpus
(farmworker-wallet-os 60fd7b3 and 7cb66ee) into a temporary folder. It prints the floor (read and
``bson.decode`` every unit, one process), one load cold and from a warm ``--cache``, and the whole check
of the pair both ways. The machine is shared and its speed drifts within minutes: every measurement is
taken in rounds (five by default), one after the other, and each ratio is between runs of one round.
"""

from __future__ import annotations

import gc
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

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


class Round(NamedTuple):
    """Seconds of every measurement of one round, taken one after the other."""

    floor: float
    head_floor: float
    load: float
    warm_load: float
    check: float
    warm_check: float


def timed(function: Callable[[], object]) -> float:
    """Seconds one call takes."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _round(base: Path, head: Path, store: DiskUnitStore) -> Round:
    return Round(
        floor=floor(base),
        head_floor=floor(head),
        load=timed(lambda: load_source(str(base))),
        warm_load=timed(lambda: load_source(str(base), memo=ReadMemo(store=store))),
        check=timed(lambda: run_check(CheckOptions(base=str(base), head=str(head)))),
        warm_check=timed(lambda: run_check(CheckOptions(base=str(base), head=str(head), unit_store=store))),
    )


def _span(times: Iterable[float]) -> str:
    """``0.29-0.33 s``: the fastest and slowest of the rounds."""
    ordered = sorted(times)
    return f"{ordered[0]:.2f}-{ordered[-1]:.2f} s"


def _measure(base: Path, head: Path, rounds_wanted: int) -> None:
    """Measure in rounds and print the figures."""
    with tempfile.TemporaryDirectory(prefix="mxota-bench-cache-") as cache:
        store = DiskUnitStore(Path(cache))
        # Untimed first: the page cache holds both apps, and the cache holds every unit of both.
        floor(base), floor(head)
        run_check(CheckOptions(base=str(base), head=str(head), unit_store=store))
        rounds = [_round(base, head, store) for _ in range(rounds_wanted)]
    snapshot = load_source(str(base))
    print(f"app: {base} ({len(snapshot.units)} units, {len(snapshot.elements)} elements, "
          f"{len(snapshot.files)} side files)")
    print(f"{rounds_wanted} rounds; each ratio is between runs of one round (best and worst round shown)")
    print(f"floor (read + bson.decode every unit):  {_span(r.floor for r in rounds)}")

    def row(label: str, wall: Callable[[Round], float], against: Callable[[Round], float], what: str) -> None:
        ratios = sorted(wall(r) / against(r) for r in rounds)
        print(f"{label:40}{_span(wall(r) for r in rounds):>14}   {ratios[0]:.2f}-{ratios[-1]:.2f}x {what}")

    row("load of one snapshot:", lambda r: r.load, lambda r: r.floor, "floor (target 1.5x)")
    row("load of one snapshot, warm --cache:", lambda r: r.warm_load, lambda r: r.floor, "floor")
    row("whole check of the pair:", lambda r: r.check, lambda r: r.floor + r.head_floor, "floor of both")
    row("  against loading both:", lambda r: r.check, lambda r: 2 * r.load, "loading both (issue 3: 2x)")
    row("whole check of the pair, warm --cache:", lambda r: r.warm_check, lambda r: r.floor + r.head_floor,
        "floor of both")


def main(argv: list[str]) -> int:
    # As the CLI does (analyzer.cli.main): one batch, every object lives to the end, no cyclic collector.
    gc.disable()
    rounds_wanted = 5
    if argv[:1] == ["--rounds"]:
        rounds_wanted, argv = int(argv[1]), argv[2:]
    if argv:
        _measure(Path(argv[0]), Path(argv[-1]), rounds_wanted)
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="mxota-bench-"))
    try:
        for revision in REVISIONS:
            subprocess.run(
                [sys.executable, str(CORPUS / "materialize.py"), str(scratch), "--project", PROJECT, "--rev", revision],
                check=True, capture_output=True,
            )
        _measure(scratch / PROJECT / REVISIONS[0], scratch / PROJECT / REVISIONS[1], rounds_wanted)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
