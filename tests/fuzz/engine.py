"""The hypothesis engine: feed a target arbitrary bytes and mutated seeds for a time budget."""

from __future__ import annotations

import time
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.targets import TARGETS, seeds
from tests.hostile import mutate

_edits = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 1 << 20), st.integers(0, 255), st.binary(min_size=1, max_size=32)),
    min_size=1,
    max_size=12,
)


def inputs(target: str) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, and seeds with a few edits (most of the budget goes to the latter)."""
    mutated = st.builds(mutate, st.sampled_from(seeds(target)), _edits)
    return st.one_of(st.binary(max_size=4096), mutated, mutated, mutated)


def run(target: str, seconds: float, batch: int = 2_000) -> int:
    """Run one target for about ``seconds``; returns how many inputs it ran. A finding raises."""
    function: Callable[[bytes], None] = TARGETS[target]
    counter = [0]

    @settings(
        max_examples=batch,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(inputs(target))
    def fuzz(data: bytes) -> None:
        counter[0] += 1
        function(data)

    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        fuzz()
    return counter[0]
