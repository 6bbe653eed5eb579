"""The progress bar the CLI shows while a large model loads: on a terminal only, never in CI logs.

Loads call a :data:`analyzer.load.memo.Progress` callback once per unit; this turns those calls into a
``rich`` bar on stderr, shown only once a load has taken more than a second (small apps never see it)
and redrawn at most ten times a second (a call per unit must stay far cheaper than reading the unit).
Machine outputs are untouched: the bar goes to stderr and is removed when the load ends.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID  # imported when a bar is first drawn: most runs draw none

SHOW_AFTER = 1.0
"""Seconds a load runs before the bar appears."""
REDRAW_EVERY = 0.1


def wanted(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether to draw a bar on ``stream``: a terminal, not a CI job, not a dumb terminal."""
    env = os.environ if environ is None else environ
    if env.get("CI") or env.get("TERM") == "dumb" or env.get("MXOTA_NO_PROGRESS"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class LoadBar:
    """Units and megabytes read so far, for each load of a run in turn."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._started = 0.0
        self._drawn = 0.0
        self._load = 0

    def __call__(self, units: int, total_units: int, read: int, total_bytes: int) -> None:
        now = self._clock()
        if units <= 1:
            self._started = now
            self._load += 1
        if now - self._started < SHOW_AFTER or (now - self._drawn < REDRAW_EVERY and units < total_units):
            return
        self._drawn = now
        progress = self._start()
        description = f"reading model {self._load}: {read / 2**20:,.0f} of {total_bytes / 2**20:,.0f} MB"
        if self._task is None or progress.tasks[-1].fields.get("load") != self._load:
            self._task = progress.add_task(description, total=total_units, load=self._load)
        progress.update(self._task, completed=units, total=total_units, description=description)

    def _start(self) -> Progress:
        if self._progress is None:
            from rich.console import Console  # here, not at the top: 70 ms of every run's start-up
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("units"),
                TimeElapsedColumn(),
                console=Console(file=self._stream, force_terminal=True),  # only made for a terminal
                transient=True,
            )
            self._progress.start()
        return self._progress

    @property
    def shown(self) -> bool:
        """Whether the bar was drawn at all (tests ask)."""
        return self._progress is not None

    def close(self) -> None:
        """Remove the bar from the terminal."""
        if self._progress is not None:
            self._progress.stop()
