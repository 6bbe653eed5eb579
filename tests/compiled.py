"""The modules setup.py compiles with mypyc, and their pure-Python source loaded beside them.

A compiled module must do exactly what its source does: the reader tests run both and compare.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import analyzer.load.units as units


@functools.cache
def pure_units() -> ModuleType | None:
    """``analyzer.load.units`` run from its source, or None when the imported module is the source."""
    if not units.walk_is_compiled():
        return None
    name = "analyzer.load._units_from_source"
    spec = importlib.util.spec_from_file_location(name, Path(str(units.__file__)).with_name("units.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and postponed annotations look the module up by name
    spec.loader.exec_module(module)
    return module
