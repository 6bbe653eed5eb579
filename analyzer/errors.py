"""Errors that end a run, and the exit codes of the command-line contract.

Only the CLI turns these into output; every other layer raises them with a message a user can act on.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The exit codes of DESIGN.md section 4; never reuse a number."""

    PASSED = 0
    GATE_FAILED = 1
    USAGE = 2
    INPUT = 3


class MxotaError(Exception):
    """Base of every error mxota reports as one line on stderr."""

    exit_code: ExitCode = ExitCode.USAGE


class InputError(MxotaError):
    """An input could not be read fully: missing, corrupt, unsupported or over a limit."""

    exit_code = ExitCode.INPUT

    def __init__(self, location: str, problem: str) -> None:
        super().__init__(f"{location}: {problem}")
        self.location = location
        self.problem = problem


class UsageError(MxotaError):
    """The command line, a config file or the rule set is wrong."""

    exit_code = ExitCode.USAGE
