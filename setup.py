"""Build mxota: the unit walk compiled with mypyc where a C compiler is at hand, pure Python elsewhere.

The walk over every decoded unit is most of what a load costs beyond ``bson.decode`` (see the README's
"Performance"); mypyc compiles the same typed source to C. ``MXOTA_PURE_PYTHON=1`` builds without it; a
machine without a compiler gets the pure-Python package with a warning, never a failed install.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup

COMPILED = ["analyzer/load/units.py"]
"""Modules compiled with mypyc: leaf modules no test patches, whose source is the same either way."""


def _compiled_extensions() -> list[Extension]:
    if os.environ.get("MXOTA_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify

        extensions: list[Extension] = mypycify(COMPILED, opt_level="3")
    except Exception as error:  # mypyc missing or refusing the code: the pure-Python package still works
        print(f"mxota: building without compiled modules ({error})", file=sys.stderr)
        return []
    for extension in extensions:
        extension.optional = True  # no C compiler: a warning and the pure-Python modules
    return extensions


setup(ext_modules=_compiled_extensions())
