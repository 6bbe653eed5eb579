"""The fuzz targets as a bounded, optional test: skipped unless ``MXOTA_FUZZ=1``.

``MXOTA_FUZZ_SECONDS`` sets the time per target (default 60). The long runs with coverage guidance are
``python -m tests.fuzz`` (atheris when installed).
"""

from __future__ import annotations

import os

import pytest

from tests.fuzz.targets import TARGETS


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("MXOTA_FUZZ") != "1", reason="fuzzing is opt-in: set MXOTA_FUZZ=1")
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_target(target: str) -> None:
    from tests.fuzz.engine import run

    seconds = float(os.environ.get("MXOTA_FUZZ_SECONDS", "60"))
    assert run(target, seconds) > 0


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_target_accepts_its_seeds(target: str) -> None:
    from tests.fuzz.targets import seeds

    for seed in seeds(target):
        TARGETS[target](seed)
