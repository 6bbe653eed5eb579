"""Shared test fixtures: the real Mendix corpus from ../shared, materialized once and cached."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS_SOURCE = SHARED / "corpus"
APPS = REPO / "fixtures" / "apps"


def _bundle_digest() -> str:
    digest = hashlib.sha256()
    for bundle in sorted(CORPUS_SOURCE.glob("*/revisions.bundle")):
        digest.update(bundle.parent.name.encode())
        digest.update(hashlib.sha256(bundle.read_bytes()).digest())
    digest.update((CORPUS_SOURCE / "materialize.py").read_bytes())
    return digest.hexdigest()[:16]


def materialized_corpus() -> Path | None:
    """The corpus expanded into a cache folder keyed by the bundles' hash; ``None`` without ../shared."""
    if not (CORPUS_SOURCE / "materialize.py").is_file():
        return None
    cache_root = Path(os.environ.get("MXOTA_CORPUS_CACHE", tempfile.gettempdir()))
    target = cache_root / f"mxota-corpus-{_bundle_digest()}"
    if (target / ".complete").is_file():
        return target
    with (cache_root / f"{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test workers: one materializes, the others wait
        if (target / ".complete").is_file():
            return target
        return _materialize(cache_root, target)


def _materialize(cache_root: Path, target: Path) -> Path:
    scratch = Path(tempfile.mkdtemp(prefix="mxota-corpus-", dir=cache_root))
    listing = subprocess.run(
        [sys.executable, str(CORPUS_SOURCE / "materialize.py"), "--list"],
        capture_output=True, text=True, check=True,
    ).stdout
    subprocess.run(
        [sys.executable, str(CORPUS_SOURCE / "materialize.py"), str(scratch)],
        capture_output=True, check=True,
    )
    (scratch / "revisions.txt").write_text(listing, encoding="utf-8")
    (scratch / ".complete").write_text("ok\n", encoding="utf-8")
    if target.exists():
        shutil.rmtree(scratch, ignore_errors=True)
        return target
    scratch.rename(target)
    return target


def corpus_revisions(root: Path) -> list[tuple[str, list[Path]]]:
    """Each project with its revision folders, oldest first."""
    result: list[tuple[str, list[Path]]] = []
    for line in (root / "revisions.txt").read_text(encoding="utf-8").splitlines():
        project, *labels = line.split()
        result.append((project, [root / project / label for label in labels]))
    return result


@pytest.fixture(scope="session")
def corpus() -> Iterator[Path]:
    """The materialized corpus; tests using it skip cleanly when ../shared is absent."""
    root = materialized_corpus()
    if root is None:
        pytest.skip("../shared/corpus is absent")
    yield root
