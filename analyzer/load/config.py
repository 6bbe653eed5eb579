"""Read ``.mxota.toml`` (from the app directory, or ``--config FILE``) into a frozen :class:`Config`.

Every problem is a usage error (exit 2) naming the file, the key and what is wrong; all problems are
reported at once.
"""

from __future__ import annotations

import datetime
import difflib
import tomllib
from pathlib import Path
from types import MappingProxyType
from typing import Any

from analyzer.errors import UsageError
from analyzer.model.config import NO_CONFIG, Config, Waiver
from analyzer.model.delivery import Channel
from analyzer.model.levels import Level

CONFIG_NAME = ".mxota.toml"
KEYS = frozenset(
    {"fail_on", "ota_channel", "require_ota_channel", "native_dependencies_in_binary", "levels", "waiver"}
)
WAIVER_KEYS = frozenset({"rule", "element", "reason", "owner", "expires"})
STATED_CHANNELS = {c.value: c for c in Channel if c is not Channel.UNKNOWN}


def find_config(explicit: Path | None, head: str, cwd: Path) -> Path | None:
    """``--config FILE``, else ``.mxota.toml`` in the head app directory (or in cwd for ``git:`` heads)."""
    if explicit is not None:
        if not explicit.is_file():
            raise UsageError(f"{explicit}: config file not found")
        return explicit
    if head.startswith("git:"):
        candidate = cwd / CONFIG_NAME
    else:
        head_path = cwd / head
        folder = head_path if head_path.is_dir() else head_path.parent
        candidate = folder / CONFIG_NAME
    return candidate if candidate.is_file() else None


def read_config(path: Path | None, known_rules: frozenset[str]) -> Config:
    """The config at ``path`` (``NO_CONFIG`` when there is none), validated against the rule ids."""
    if path is None:
        return NO_CONFIG
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read config ({exc})") from None
    return parse_config(text, str(path), known_rules)


def parse_config(text: str, location: str, known_rules: frozenset[str]) -> Config:
    """Parse config text; one error listing every problem, each as ``file: key: problem``."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{location}: invalid TOML ({exc})") from None
    problems: list[str] = []

    def problem(key: str, message: str) -> None:
        problems.append(f"{location}: {key}: {message}")

    for key in raw:
        if key not in KEYS:
            hint = difflib.get_close_matches(key, sorted(KEYS), n=1)
            problem(key, "unknown key" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    fail_on = _level(raw.get("fail_on"), "fail_on", problem)
    channel: Channel | None = None
    if "ota_channel" in raw:
        channel = STATED_CHANNELS.get(str(raw["ota_channel"]))
        if channel is None:
            problem("ota_channel", f"must be one of {', '.join(STATED_CHANNELS)}, not {raw['ota_channel']!r}")
    require = raw.get("require_ota_channel", False)
    if not isinstance(require, bool):
        problem("require_ota_channel", "must be true or false")
        require = False
    deps = raw.get("native_dependencies_in_binary", [])
    if not (isinstance(deps, list) and all(isinstance(d, str) and d for d in deps)):
        problem("native_dependencies_in_binary", "must be a list of 'name' or 'name@version' strings")
        deps = []
    levels: dict[str, Level] = {}
    raw_levels = raw.get("levels", {})
    if not isinstance(raw_levels, dict):
        problem("levels", "must be a table of rule id = level")
        raw_levels = {}
    for rule_id, value in raw_levels.items():
        if rule_id not in known_rules:
            hint = difflib.get_close_matches(rule_id, sorted(known_rules), n=1)
            problem(f"levels.{rule_id}", "no such rule" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
            continue
        level = _level(value, f"levels.{rule_id}", problem)
        if level is not None:
            levels[rule_id] = level
    waivers = _waivers(raw.get("waiver", []), known_rules, problem)
    if problems:
        raise UsageError(f"invalid config ({len(problems)} problems): " + "; ".join(problems))
    return Config(
        path=location,
        fail_on=fail_on,
        ota_channel=channel,
        require_ota_channel=require,
        native_dependencies_in_binary=tuple(deps),
        levels=MappingProxyType(levels),
        waivers=waivers,
    )


def _level(value: Any, key: str, problem: Any) -> Level | None:
    if value is None:
        return None
    try:
        return Level.parse(str(value))
    except ValueError as exc:
        problem(key, str(exc))
        return None


def _waivers(raw: Any, known_rules: frozenset[str], problem: Any) -> tuple[Waiver, ...]:
    if not isinstance(raw, list):
        problem("waiver", "must be an array of tables ([[waiver]])")
        return ()
    waivers: list[Waiver] = []
    for number, entry in enumerate(raw, start=1):
        key = f"waiver #{number}"
        if not isinstance(entry, dict):
            problem(key, "must be a table")
            continue
        for extra in set(entry) - WAIVER_KEYS:
            problem(f"{key}.{extra}", "unknown key")
        missing = [name for name in ("rule", "element", "reason", "owner", "expires") if not entry.get(name)]
        if missing:
            problem(key, f"needs {', '.join(missing)} (a waiver must say what, why, who and until when)")
            continue
        if entry["rule"] not in known_rules and entry["rule"] != "unclassified":
            problem(f"{key}.rule", f"no such rule {entry['rule']!r}")
            continue
        expires = entry["expires"]
        if isinstance(expires, datetime.datetime):
            expires = expires.date()
        if not isinstance(expires, datetime.date):
            problem(f"{key}.expires", "must be a date such as 2027-01-31")
            continue
        waivers.append(
            Waiver(
                rule=str(entry["rule"]),
                element=str(entry["element"]),
                reason=str(entry["reason"]),
                owner=str(entry["owner"]),
                expires=expires,
            )
        )
    return tuple(waivers)
