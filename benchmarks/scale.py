"""Generate an enterprise-size app pair and print what checking it costs against the floor.

    python -m benchmarks.scale [--copies N] [--source APP_DIR] [--keep DIR] [--rounds N]

The generator replicates every module of a real MPR v2 app (by default the largest corpus revision,
materialized from ../shared/corpus) N times, with fresh GUIDs and consistently renamed qualified names
(``Module.Doc`` → ``Module_c3.Doc`` in every string), so references still resolve. HEAD is a copy with a
few dozen realistic edits (page captions, a microflow expression, a new attribute). Everything is written
to a temporary folder and removed afterwards (``--keep`` keeps it). The script prints, from one run: the
floor (read and ``bson.decode`` every unit of both sides, one process), ``mxota check`` wall time and its
ratio to the floor, mxota's peak RSS, and the same for a one-unit change read through ``git:`` revisions
(no cache, a warm cache, a cache that knows only the base revision), and for ``git:HEAD~1`` against
the repository's working folder (the pull-request gate of docs/ci.md).
This machine is shared and its speed drifts by tens of percent within minutes: every measurement is
taken in rounds, one after the other, and each ratio is between runs of the same round; each round also
says how much of a second core the machine gave it (:func:`second_core`).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import bson

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
PROJECT = "openwallet-foundation-labs__farmworker-wallet-os"
REVISION = "7cb66ee"
NAMESPACE = uuid.UUID("6f1d2c4e-8a5b-4f0e-9c3d-2b7a1e5f4c90")


def guid(raw: bytes) -> str:
    """A Mendix GUID (.NET byte order) as a UUID string."""
    return str(uuid.UUID(bytes_le=raw))


def unit_path(app: Path, unit_id: str) -> Path:
    """Where MPR v2 keeps a unit."""
    return app / "mprcontents" / unit_id[0:2] / unit_id[2:4] / f"{unit_id}.mxunit"


def materialize_source() -> Path:
    """The default source app, expanded from the shared corpus into a temporary folder."""
    scratch = Path(tempfile.mkdtemp(prefix="mxota-scale-src-"))
    subprocess.run(
        [sys.executable, str(CORPUS / "materialize.py"), str(scratch), "--project", PROJECT, "--rev", REVISION],
        check=True,
        capture_output=True,
    )
    return scratch / PROJECT / REVISION


def _rewrite(value: Any, ids: dict[bytes, bytes], rename: re.Pattern[str], suffix: str) -> Any:
    if isinstance(value, dict):
        return {key: _rewrite(inner, ids, rename, suffix) for key, inner in value.items()}
    if isinstance(value, list):
        return [_rewrite(inner, ids, rename, suffix) for inner in value]
    if isinstance(value, bytes) and len(value) == 16 and value in ids:
        return bson.Binary(ids[value], 0)
    if isinstance(value, str):
        return rename.sub(lambda match: match.group(1) + suffix + ".", value)
    return value


def _collect_ids(value: Any, found: set[bytes]) -> None:
    if isinstance(value, dict):
        raw = value.get("$ID")
        if isinstance(raw, bytes):
            found.add(raw)
        for inner in value.values():
            _collect_ids(inner, found)
    elif isinstance(value, list):
        for inner in value:
            _collect_ids(inner, found)


def generate(source: Path, target: Path, copies: int) -> int:
    """Write ``source`` plus ``copies`` renamed copies of its modules to ``target``; return the unit count."""
    shutil.copytree(source, target, symlinks=True)
    mpr = next(target.glob("*.mpr"))
    connection = sqlite3.connect(mpr)
    rows = connection.execute("select UnitID, ContainerID, ContainmentName from Unit").fetchall()
    parent = {guid(bytes(u)): (guid(bytes(c)) if c else None) for u, c, _ in rows}
    documents: dict[str, dict[str, Any]] = {}
    for unit_id in parent:
        documents[unit_id] = bson.decode(unit_path(source, unit_id).read_bytes())
    modules = {uid: doc["Name"] for uid, doc in documents.items() if doc.get("$Type") == "Projects$ModuleImpl"}

    def module_of(unit_id: str) -> str | None:
        seen: set[str] = set()
        current: str | None = unit_id
        while current is not None and current not in seen:
            seen.add(current)
            if current in modules:
                return current
            current = parent.get(current)
        return None

    in_module = {uid: module_of(uid) for uid in parent}
    names = sorted(modules.values(), key=len, reverse=True)
    rename = re.compile(r"(?<![\w.])(" + "|".join(re.escape(name) for name in names) + r")\.")
    total = len(rows)
    for copy in range(1, copies + 1):
        suffix = f"_c{copy}"
        ids: dict[bytes, bytes] = {}
        for unit_id, module in in_module.items():
            if module is None:
                continue
            found: set[bytes] = set()
            _collect_ids(documents[unit_id], found)
            for raw in found:
                ids[raw] = uuid.uuid5(NAMESPACE, f"{copy}:{guid(raw)}").bytes_le
        new_rows = []
        for (unit_raw, container_raw, containment), unit_id in zip(rows, parent, strict=True):
            if in_module[unit_id] is None:
                continue
            document = _rewrite(documents[unit_id], ids, rename, suffix)
            if unit_id in modules:
                document["Name"] = modules[unit_id] + suffix
            data = bson.encode(document)
            fresh = uuid.uuid5(NAMESPACE, f"{copy}:{unit_id}").bytes_le
            new_id = ids.get(bytes(unit_raw), fresh)
            container = bytes(container_raw) if container_raw else None
            new_container = ids.get(container, container) if container else None
            path = unit_path(target, guid(new_id))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            digest = base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
            new_rows.append((new_id, new_container, containment, 0, digest, ""))
        connection.executemany("insert into Unit values (?, ?, ?, ?, ?, ?)", new_rows)
        total += len(new_rows)
    connection.commit()
    connection.close()
    return total


def edit_head(head: Path, edits: int) -> int:
    """Realistic edits: append to page captions, change microflow expressions; return how many units changed."""
    changed = 0
    for path in sorted(head.glob("mprcontents/*/*/*.mxunit")):
        if changed >= edits:
            break
        document = bson.decode(path.read_bytes())
        if document.get("$Type") not in ("Forms$Page", "Microflows$Microflow"):
            continue
        text = bson.encode(document)
        marker = b"Text\x00"
        if marker not in text:
            continue

        def touch(value: Any) -> bool:
            if isinstance(value, dict):
                if value.get("$Type") == "Texts$Translation" and isinstance(value.get("Text"), str):
                    value["Text"] = value["Text"] + " (v2)"
                    return True
                return any(touch(inner) for inner in value.values())
            if isinstance(value, list):
                return any(touch(inner) for inner in value)
            return False

        if touch(document):
            data = bson.encode(document)
            path.write_bytes(data)
            unit_id = path.stem
            mpr = next(head.glob("*.mpr"))
            connection = sqlite3.connect(mpr)
            connection.execute(
                "update Unit set ContentsHash = ? where UnitID = ?",
                (base64.b64encode(hashlib.sha256(data).digest()).decode("ascii"), uuid.UUID(unit_id).bytes_le),
            )
            connection.commit()
            connection.close()
            changed += 1
    return changed


def read_through(*folders: Path) -> None:
    """Read every file under the folders, untimed, so that the run measured next finds its input in the
    page cache, as every run here is meant to.

    Reading everything once at the start is not enough on this machine: it pages out file pages left
    idle for about a minute (a DAMON ``pageout`` scheme, ``/sys/kernel/mm/damon``), so a run whose input
    was last read a few runs earlier read part of it from disk again (a warm one-unit check measured
    4.7-4.9 s so, 2.9 s with its input read just before). Each run, the floor too, now reads what it is
    given from memory; ``--no-read-through`` measures without it.
    """
    for folder in folders:
        for parent, _, names in os.walk(folder):
            for name in names:
                path = Path(parent) / name
                if path.is_file() and not path.is_symlink():
                    with path.open("rb") as stream:
                        while stream.read(1 << 20):
                            pass


def floor(*apps: Path) -> float:
    """Read and decode every unit file of the apps, one process."""
    start = time.perf_counter()
    for app in apps:
        for unit in app.glob("mprcontents/*/*/*.mxunit"):
            bson.decode(unit.read_bytes())
    return time.perf_counter() - start


Run = tuple[float, int, int]
"""One ``mxota check``: wall seconds, exit code, peak RSS in KiB."""

_BUSY = "for _ in range(6_000_000): pass"


SECOND_CORE_TAKEN = 0.85
"""Below this :func:`second_core` share, a round is said to have run with its second core taken."""


def second_core() -> float:
    """How much of a second core the machine gives now: the time of one busy loop alone over the time
    of two run at once, each in its own process. About 1.0 with both cores free; about 0.6 while
    something else keeps a core busy (three loops then share two cores: measured here 0.54-0.63 with
    a busy loop beside it). A check uses both cores and the floor one, so a round measured with the
    second core taken reads high: with a busy loop on one core the floor took 1-3% longer and the
    cold check 35% longer (README)."""

    def started() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-S", "-c", _BUSY])

    start = time.perf_counter()
    started().wait()
    alone = time.perf_counter() - start
    start = time.perf_counter()
    for loop in [started(), started()]:
        loop.wait()
    return alone / (time.perf_counter() - start)


class Round(NamedTuple):
    """One round of measurements, run one after the other: the floor in seconds, and each check."""

    floor: float
    check: Run
    fill: Run
    """The full check filling an empty ``--cache`` (a first CI run, or the first after an upgrade)."""
    warm: Run
    git: Run
    git_warm: Run
    git_new_head: Run
    """The one-unit pair with a cache that knows the base revision only, as the first check of a new
    commit finds it: HEAD's tree is new, its changed unit unknown."""
    folder_warm: Run
    """``git:HEAD~1`` against the repository's working folder, as docs/ci.md runs a pull-request gate."""
    second_core: float = 1.0
    """:func:`second_core` at the round's start or its end, whichever was lower."""


def _span(times: Iterable[float]) -> str:
    """``9.6-10.7 s``: the fastest and slowest of the rounds."""
    ordered = sorted(times)
    return f"{ordered[0]:.1f}-{ordered[-1]:.1f} s"


_CHILD_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
"""Each check runs as an installed mxota does, from compiled bytecode (the untimed runs write it):
without it every run compiled every module first (0.15-0.25 s a run here), whatever the caller's
environment said."""


def _one_check(base: str, head: str, cwd: Path, cache: Path | None = None) -> tuple[float, int, int]:
    """Wall seconds, exit code and peak RSS (KiB) of one ``mxota check`` in a fresh child process.

    The peak comes from ``wait4`` on that child: mxota ends with ``os._exit`` (it leaves its models to
    the operating system), so nothing inside it can report on the way out.
    """
    command = [sys.executable, "-m", "analyzer", "check", base, head, "--format", "json:/dev/null"]
    if cache is not None:
        command += ["--cache", str(cache)]
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=cwd, env=_CHILD_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert child.stderr is not None
    errors = child.stderr.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.returncode = code = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    child.stderr.close()
    if code not in (0, 1):
        raise SystemExit(f"mxota check failed: {errors.strip()}")
    return elapsed, code, usage.ru_maxrss


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=10, help="module copies (10 ≈ 25,000 units)")
    parser.add_argument("--source", type=Path, help="an MPR v2 app directory (default: the corpus)")
    parser.add_argument("--edits", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every measurement (default 2)")
    parser.add_argument(
        "--keep", type=Path, help="keep the generated apps in this folder (and reuse them when already there)"
    )
    parser.add_argument(
        "--no-read-through", action="store_true", help="do not read each run's input just before timing it"
    )
    options = parser.parse_args(argv)
    kept = options.keep is not None and (options.keep / "base").is_dir()
    source = options.source or (options.keep if kept else materialize_source())
    work = options.keep or Path(tempfile.mkdtemp(prefix="mxota-scale-"))
    try:
        base, head = work / "base", work / "head"
        for stale in ("repo", "cache", "git-cache", "base-cache", "new-head-cache", "fill-cache"):
            shutil.rmtree(work / stale, ignore_errors=True)
        if options.keep is not None and base.is_dir() and head.is_dir():
            units, edited = len(list(base.glob("mprcontents/*/*/*.mxunit"))), options.edits  # kept from before
        else:
            units = generate(source, base, options.copies)
            shutil.copytree(base, head, symlinks=True)
            edited = edit_head(head, options.edits)
        size = sum(p.stat().st_size for p in base.glob("mprcontents/*/*/*.mxunit"))
        print(f"generated: {units} units, {size / 2**20:.0f} MiB of unit files per side, {edited} units edited")
        cache, repo, git_cache = work / "cache", work / "repo", work / "git-cache"
        base_cache, new_head_cache, fill_cache = work / "base-cache", work / "new-head-cache", work / "fill-cache"
        shutil.copytree(base, repo, symlinks=True)
        git = ["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
        subprocess.run([*git, "init", "-q"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", "base"], check=True)
        edit_head(repo, 1)
        subprocess.run([*git, "commit", "-qam", "one unit"], check=True)
        # Everything is read once untimed, so every timed run reads from the page cache (a floor read
        # from disk would flatter every ratio; the first git run reads a fresh repository's loose
        # objects), and each cache is left as the last CI run of the branch would leave it.
        floor(base, head)
        _one_check(str(base), str(head), work, cache)
        _one_check("git:HEAD~1", "git:HEAD", repo)
        _one_check("git:HEAD~1", "git:HEAD", repo, git_cache)
        _one_check("git:HEAD~1", ".", repo, git_cache)
        _one_check("git:HEAD~1", "git:HEAD~1", repo, base_cache)  # knows the base revision only

        def new_head() -> Run:
            shutil.rmtree(new_head_cache, ignore_errors=True)
            shutil.copytree(base_cache, new_head_cache)  # untimed: each round starts from the same cache
            os.sync()  # and the copy's writes are not left to slow down the run measured next
            warmed(repo / ".git", new_head_cache)
            return _one_check("git:HEAD~1", "git:HEAD", repo, new_head_cache)

        def filled() -> Run:
            shutil.rmtree(fill_cache, ignore_errors=True)
            os.sync()  # the last run's writes are not left to slow down this one
            warmed(base, head)
            return _one_check(str(base), str(head), work, fill_cache)

        def warmed(*folders: Path) -> None:
            if not options.no_read_through:
                read_through(*folders)

        def measured(folders: tuple[Path, ...], run: Callable[[], Any]) -> Any:
            warmed(*folders)
            return run()

        # Then rounds of every measurement, one after the other: this machine's speed drifts by tens of
        # percent within minutes, so a ratio is taken between runs of the same round.
        def one_round() -> Round:
            at_start = second_core()
            measured_round = Round(
                floor=measured((base, head), lambda: floor(base, head)),
                check=measured((base, head), lambda: _one_check(str(base), str(head), work)),
                fill=filled(),
                warm=measured((base, head, cache), lambda: _one_check(str(base), str(head), work, cache)),
                git=measured((repo / ".git",), lambda: _one_check("git:HEAD~1", "git:HEAD", repo)),
                git_warm=measured(
                    (repo / ".git", git_cache), lambda: _one_check("git:HEAD~1", "git:HEAD", repo, git_cache)
                ),
                git_new_head=new_head(),
                folder_warm=measured((repo, git_cache), lambda: _one_check("git:HEAD~1", ".", repo, git_cache)),
            )
            return measured_round._replace(second_core=min(at_start, second_core()))

        rounds = [one_round() for _ in range(options.rounds)]
        codes = {(r.check[1], r.warm[1]) for r in rounds} | {(r.check[1], r.fill[1]) for r in rounds}
        codes |= {(r.git[1], r.git_warm[1]) for r in rounds} | {(r.git[1], r.git_new_head[1]) for r in rounds}
        assert all(cold == warm for cold, warm in codes), "the cache changed a verdict"
        print(f"{options.rounds} rounds; each ratio is between runs of one round (best and worst round shown)")
        print(f"floor (read + bson.decode both sides, one process): {_span(r.floor for r in rounds)}")
        print("                                  wall            ratio                 peak RSS")
        rows: list[tuple[str, Callable[[Round], Run], Callable[[Round], float], str, str]] = [
            ("check, no cache", lambda r: r.check, lambda r: r.floor, "floor", "(targets: <= 1.5x, <= 2 GiB)"),
            ("check, filling an empty --cache", lambda r: r.fill, lambda r: r.floor, "floor", ""),
            ("check, warm --cache", lambda r: r.warm, lambda r: r.floor, "floor", ""),
            ("one-unit git: check, no cache", lambda r: r.git, lambda r: r.check[0], "full check",
             "(target: <= 0.25x)"),
            ("one-unit git: check, warm cache", lambda r: r.git_warm, lambda r: r.check[0], "full check", ""),
            ("  same, cache knows base only", lambda r: r.git_new_head, lambda r: r.check[0], "full check", ""),
            ("git base, working folder, warm", lambda r: r.folder_warm, lambda r: r.check[0], "full check", ""),
        ]
        for label, run, against, unit, target in rows:
            ratios = sorted(run(r)[0] / against(r) for r in rounds)
            peak = max(run(r)[2] for r in rounds)
            print(
                f"{label:32}{_span(run(r)[0] for r in rounds):>14}  {ratios[0]:.2f}-{ratios[-1]:.2f}x {unit:10}"
                f"  {peak / 2**20:.2f} GiB   {target}"
            )
        shares = ", ".join(f"{r.second_core:.2f}" for r in rounds)
        print(f"second core free, each round (1.0: both cores free; about 0.6: one busy elsewhere): {shares}")
        if min(r.second_core for r in rounds) < SECOND_CORE_TAKEN:
            print(
                f"  a round under {SECOND_CORE_TAKEN} ran while something else used a core: a check uses both"
                " and the floor one, so that round's ratios read high"
            )
        size = sum(path.stat().st_size for path in fill_cache.rglob("*") if path.is_file())
        print(f"a cache filled by one full check: {size / 2**20:.0f} MiB")
    finally:
        if options.keep is None:
            shutil.rmtree(work, ignore_errors=True)
        if options.source is None and not kept:
            shutil.rmtree(source.parents[1], ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
