"""Parse and validate the rule set (``rules/*.toml``); every error is collected and reported at once.

A rule matches a change when every condition it states holds: element type, document type, change
kind, file path, changed properties, and named facts. Conditions are conjunctive; for "or", write two
rules. All matching rules apply; the most severe level wins; every matching id is kept.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from analyzer.classify.facts import FACTS
from analyzer.errors import UsageError
from analyzer.model.changes import Change, ChangeKind, NoEffect, NoEffectSpec, PropertyChange
from analyzer.model.findings import UNCLASSIFIED, Rule
from analyzer.model.levels import Level
from analyzer.model.native import TemplateRange
from analyzer.model.versions import parse_range

RULE_KEYS = frozenset({"id", "level", "title", "reason", "advice", "source", "rows", "match", "example"})
MATCH_KEYS = frozenset(
    {
        "element", "document", "change", "path", "not_path", "any_property", "only_properties", "no_effect",
        "facts", "not_facts",
    }
)
EXAMPLE_KEYS = frozenset(
    {"expect", "element", "document", "change", "path", "properties", "facts", "name", "no_effect"}
)
NO_EFFECT_KEYS = frozenset(f.name for f in dataclasses.fields(NoEffectSpec))
_ID = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


class RuleSetError(UsageError):
    """The rule set is invalid; the message lists every problem found."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    """The conditions of one rule; empty tuples mean "any"."""

    element: tuple[str, ...] = ()
    document: tuple[str, ...] = ()
    change: tuple[ChangeKind, ...] = ()
    path: tuple[str, ...] = ()
    not_path: tuple[str, ...] = ()
    any_property: tuple[str, ...] = ()
    only_properties: tuple[str, ...] = ()
    no_effect: tuple[NoEffect, ...] = ()
    facts: tuple[str, ...] = ()
    not_facts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Example:
    """A change a rule must (or must not) match, with the facts assumed to hold; run by the tests."""

    name: str
    expect_match: bool
    change: Change
    facts: frozenset[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedRule:
    """A rule with its match and examples."""

    rule: Rule
    match: Match
    examples: tuple[Example, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleSet:
    """Every rule, in id order."""

    rules: tuple[LoadedRule, ...]
    no_effect: NoEffectSpec = field(default_factory=NoEffectSpec)
    template_provides: tuple[str, ...] = ()
    """Native modules (globs) every native template ships, from ``rules/native-template-provides.toml``."""
    template_versions: tuple[TemplateRange, ...] = ()
    """The newest known ``mendix_version.json`` table, in file order, from ``rules/template-versions.toml``."""

    def get(self, rule_id: str) -> LoadedRule | None:
        """The rule with this id, if any."""
        for loaded in self.rules:
            if loaded.rule.id == rule_id:
                return loaded
        return None


def _glob(patterns: Sequence[str], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


def _property_glob(patterns: Sequence[str], change: PropertyChange) -> bool:
    return _glob(patterns, change.path)


def matches(match: Match, change: Change, fact: Callable[[str], bool]) -> bool:
    """Whether a change meets every condition; facts are asked only when all else holds (they cost)."""
    if match.element and not _glob(match.element, change.element_type):
        return False
    if match.document and not _glob(match.document, change.document_type):
        return False
    if match.change and change.kind not in match.change:
        return False
    if match.path and not _glob(match.path, change.qualified_name):
        return False
    if match.not_path and _glob(match.not_path, change.qualified_name):
        return False
    if match.any_property and not any(_property_glob(match.any_property, p) for p in change.properties):
        return False
    if match.no_effect and change.no_effect not in match.no_effect:
        return False
    if match.only_properties and (
        not change.properties or not all(_property_glob(match.only_properties, p) for p in change.properties)
    ):
        return False
    return all(fact(name) for name in match.facts) and not any(fact(name) for name in match.not_facts)


# -------------------------------------------------------------------------------------------- parsing


class _Errors:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.messages.append(f"{where}: {message}")


def _strings(value: Any, where: str, errors: _Errors) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    errors.add(where, "must be a string or a list of strings")
    return ()


def _unknown(keys: Mapping[str, Any], allowed: frozenset[str], where: str, errors: _Errors) -> None:
    for key in keys:
        if key not in allowed:
            hint = difflib.get_close_matches(key, sorted(allowed), n=1)
            errors.add(where, f"unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))


def _facts(names: tuple[str, ...], where: str, errors: _Errors) -> None:
    for name in names:
        if name not in FACTS:
            hint = difflib.get_close_matches(name, sorted(FACTS), n=1)
            errors.add(where, f"unknown fact {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))


def _kinds(values: tuple[str, ...], where: str, errors: _Errors) -> tuple[ChangeKind, ...]:
    kinds: list[ChangeKind] = []
    for value in values:
        try:
            kinds.append(ChangeKind(value))
        except ValueError:
            errors.add(where, f"unknown change {value!r}; changes are {', '.join(k.value for k in ChangeKind)}")
    return tuple(kinds)


def _no_effects(values: tuple[str, ...], where: str, errors: _Errors) -> tuple[NoEffect, ...]:
    found: list[NoEffect] = []
    for value in values:
        try:
            found.append(NoEffect(value))
        except ValueError:
            errors.add(where, f"unknown no-effect reason {value!r}; reasons are {', '.join(r.value for r in NoEffect)}")
    return tuple(found)


def _match(raw: Any, where: str, errors: _Errors) -> Match:
    if not isinstance(raw, dict):
        errors.add(where, "match must be a table")
        return Match()
    _unknown(raw, MATCH_KEYS, where, errors)
    fields = {key: _strings(raw[key], f"{where}.{key}", errors) for key in MATCH_KEYS & raw.keys()}
    _facts(fields.get("facts", ()), f"{where}.facts", errors)
    _facts(fields.get("not_facts", ()), f"{where}.not_facts", errors)
    no_effect = _no_effects(fields.get("no_effect", ()), f"{where}.no_effect", errors)
    return Match(
        no_effect=no_effect,
        element=fields.get("element", ()),
        document=fields.get("document", ()),
        change=_kinds(fields.get("change", ()), f"{where}.change", errors),
        path=fields.get("path", ()),
        not_path=fields.get("not_path", ()),
        any_property=fields.get("any_property", ()),
        only_properties=fields.get("only_properties", ()),
        facts=fields.get("facts", ()),
        not_facts=fields.get("not_facts", ()),
    )


def _example(raw: Any, where: str, errors: _Errors) -> Example | None:
    if not isinstance(raw, dict):
        errors.add(where, "example must be a table")
        return None
    _unknown(raw, EXAMPLE_KEYS, where, errors)
    expect = raw.get("expect")
    if expect not in ("match", "no-match"):
        errors.add(where, "expect must be 'match' or 'no-match'")
        return None
    kinds = _kinds(_strings(raw.get("change", "modified"), f"{where}.change", errors), f"{where}.change", errors)
    facts = _strings(raw.get("facts", []), f"{where}.facts", errors)
    _facts(facts, f"{where}.facts", errors)
    element = str(raw.get("element", "File"))
    path = str(raw.get("path", "example"))
    properties = tuple(
        PropertyChange(path=name, before=None, after=None)
        for name in _strings(raw.get("properties", []), f"{where}.properties", errors)
    )
    change = Change(
        kind=kinds[0] if kinds else ChangeKind.MODIFIED,
        element_id="example",
        element_type=element,
        qualified_name=path,
        before_name=None,
        after_name=None,
        document_id="example-document",
        document_type=str(raw.get("document", element)),
        document_name="Example",
        properties=properties,
        no_effect=(
            _no_effects(_strings(raw["no_effect"], f"{where}.no_effect", errors), f"{where}.no_effect", errors)
            or (None,)
        )[0]
        if "no_effect" in raw
        else None,
    )
    return Example(
        name=str(raw.get("name", expect)), expect_match=expect == "match", change=change, facts=frozenset(facts)
    )


def parse_rule_files(files: Sequence[tuple[str, str]]) -> RuleSet:
    """Parse ``(path, text)`` pairs into a rule set, or raise one error listing every problem."""
    errors = _Errors()
    loaded: list[LoadedRule] = []
    seen: dict[str, str] = {}
    no_effect = NoEffectSpec()
    template_provides: tuple[str, ...] = ()
    template_versions: tuple[TemplateRange, ...] = ()
    if not files:
        errors.add("rules", "no rule files found")
    for path, text in files:
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            errors.add(path, f"invalid TOML ({exc})")
            continue
        _unknown(document, frozenset({"rule", "no_effect", "template_provides", "template_versions"}), path, errors)
        if "template_versions" in document:
            where = f"{path} [template_versions]"
            template_versions += _template_versions(document["template_versions"], where, errors)
        if "template_provides" in document:
            provides = document["template_provides"]
            if not isinstance(provides, dict) or set(provides) - {"packages", "source"}:
                errors.add(f"{path} [template_provides]", "needs exactly 'packages' and 'source'")
            else:
                template_provides += _strings(provides.get("packages", []), f"{path} [template_provides]", errors)
        if "no_effect" in document:
            no_effect = _no_effect_spec(document["no_effect"], f"{path} [no_effect]", errors, no_effect)
        raw_rules = document.get("rule", [])
        if not isinstance(raw_rules, list):
            errors.add(path, "'rule' must be an array of tables ([[rule]])")
            continue
        for position, raw in enumerate(raw_rules):
            rule = _rule(raw, f"{path} rule #{position + 1}", path, errors, seen)
            if rule is not None:
                loaded.append(rule)
    if errors.messages:
        raise RuleSetError(f"invalid rule set ({len(errors.messages)} problems): " + "; ".join(errors.messages))
    return RuleSet(
        rules=tuple(sorted(loaded, key=lambda r: r.rule.id)),
        no_effect=no_effect,
        template_provides=tuple(sorted(set(template_provides))),
        template_versions=template_versions,
    )


def _template_versions(raw: Any, where: str, errors: _Errors) -> tuple[TemplateRange, ...]:
    if not isinstance(raw, dict) or set(raw) != {"ranges", "source"}:
        errors.add(where, "needs exactly 'ranges' and 'source'")
        return ()
    ranges: list[TemplateRange] = []
    for entry in raw["ranges"] if isinstance(raw["ranges"], list) else []:
        if not (isinstance(entry, list) and len(entry) == 3 and all(isinstance(v, str) for v in entry)):
            errors.add(where, f"each range is [studio_pro_pattern, min, max], not {entry!r}")
            continue
        try:
            parse_range(entry[0])
        except ValueError as exc:
            errors.add(where, f"{entry[0]!r} is not a version range ({exc})")
            continue
        ranges.append(TemplateRange(studio_pro_pattern=entry[0], min=entry[1], max=entry[2]))
    return tuple(ranges)


def _no_effect_spec(raw: Any, where: str, errors: _Errors, current: NoEffectSpec) -> NoEffectSpec:
    if not isinstance(raw, dict):
        errors.add(where, "must be a table")
        return current
    _unknown(raw, NO_EFFECT_KEYS, where, errors)
    values = {
        key: getattr(current, key) + _strings(raw[key], f"{where}.{key}", errors)
        for key in NO_EFFECT_KEYS & raw.keys()
    }
    return dataclasses.replace(current, **values)


def _rule(raw: Any, where: str, path: str, errors: _Errors, seen: dict[str, str]) -> LoadedRule | None:
    if not isinstance(raw, dict):
        errors.add(where, "a rule must be a table")
        return None
    rule_id = raw.get("id")
    if isinstance(rule_id, str):
        where = f"{path} rule {rule_id}"
    _unknown(raw, RULE_KEYS, where, errors)
    missing = [key for key in ("id", "level", "title", "reason", "advice", "source", "match") if key not in raw]
    if missing:
        errors.add(where, f"missing {', '.join(missing)}")
        return None
    text_fields = {key: raw[key] for key in ("id", "level", "title", "reason", "advice", "source")}
    for key, value in text_fields.items():
        if not isinstance(value, str) or not value.strip():
            errors.add(where, f"{key} must be a non-empty string")
            return None
    if not _ID.match(raw["id"]) or raw["id"] == UNCLASSIFIED:
        errors.add(where, f"id {raw['id']!r} must be kebab-case and not {UNCLASSIFIED!r}")
    if raw["id"] in seen:
        errors.add(where, f"duplicate id {raw['id']!r} (also in {seen[raw['id']]})")
    seen[raw["id"]] = path
    try:
        level = Level.parse(raw["level"])
    except ValueError as exc:
        errors.add(where, str(exc))
        return None
    match = _match(raw["match"], f"{where}.match", errors)
    raw_examples = raw.get("example", [])
    examples = [
        example
        for position, item in enumerate(raw_examples if isinstance(raw_examples, list) else [])
        if (example := _example(item, f"{where} example #{position + 1}", errors)) is not None
    ]
    if not any(e.expect_match for e in examples) or not any(not e.expect_match for e in examples):
        errors.add(where, "needs at least one example that matches and one that does not")
    rows = _strings(raw.get("rows", []), f"{where}.rows", errors)
    return LoadedRule(
        rule=Rule(
            id=raw["id"],
            level=level,
            title=raw["title"].strip(),
            reason=raw["reason"].strip(),
            advice=raw["advice"].strip(),
            source=raw["source"].strip(),
            rows=rows,
            file=path,
        ),
        match=match,
        examples=tuple(examples),
    )


def with_levels(ruleset: RuleSet, levels: Mapping[str, Level]) -> RuleSet:
    """The rule set with a team's level overrides (``.mxota.toml`` ``[levels]``) applied."""
    if not levels:
        return ruleset
    rules = tuple(
        dataclasses.replace(loaded, rule=dataclasses.replace(loaded.rule, level=levels[loaded.rule.id]))
        if loaded.rule.id in levels
        else loaded
        for loaded in ruleset.rules
    )
    return dataclasses.replace(ruleset, rules=rules)
