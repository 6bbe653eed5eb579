"""libFuzzer entry point for one target: ``python -m tests.fuzz.atheris_main TARGET [libFuzzer flags]``.

Normally started by ``python -m tests.fuzz``; needs ``pip install atheris``.
"""

from __future__ import annotations

import sys

import atheris  # type: ignore[import-untyped, import-not-found, unused-ignore]

with atheris.instrument_imports(include=["analyzer", "tests.hostile", "tests.fuzz"]):
    from tests.fuzz.targets import TARGETS


def main() -> None:
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
