"""The rule set: every rule's examples, the loader's refusals, and the rule-table coverage."""

from __future__ import annotations

import pytest

from analyzer.classify.facts import FACTS
from analyzer.classify.ruleset import LoadedRule, RuleSetError, matches, parse_rule_files
from analyzer.load.rules import read_rule_files
from analyzer.pipeline import load_rules

RULESET = load_rules()
EXAMPLES = [
    pytest.param(loaded, example, id=f"{loaded.rule.id}:{number}:{example.name}")
    for loaded in RULESET.rules
    for number, example in enumerate(loaded.examples)
]


@pytest.mark.parametrize(("loaded", "example"), EXAMPLES)
def test_rule_example(loaded: LoadedRule, example: object) -> None:
    from analyzer.classify.ruleset import Example

    assert isinstance(example, Example)
    result = matches(loaded.match, example.change, lambda name: name in example.facts)
    assert result is example.expect_match


def test_every_rule_has_a_matching_and_a_non_matching_example() -> None:
    for loaded in RULESET.rules:
        assert any(e.expect_match for e in loaded.examples), loaded.rule.id
        assert any(not e.expect_match for e in loaded.examples), loaded.rule.id


def test_rule_table_rows_a_b_c_are_all_covered() -> None:
    rows = {row for loaded in RULESET.rules for row in loaded.rule.rows}
    wanted = {f"A{n}" for n in range(1, 10)} | {f"B{n}" for n in range(1, 6)} | {f"C{n}" for n in range(1, 12)}
    wanted |= {f"D{n}" for n in range(1, 20)} - {"D1", "D18"}  # D1 is --initial, D18 a heuristic
    assert wanted - rows == set()


def _rule(extra: str = "", **overrides: str) -> str:
    fields = {
        "id": '"a-rule"', "level": '"ota"', "title": '"T"', "reason": '"R"', "advice": '"A"', "source": '"S"',
    }
    fields.update(overrides)
    body = "\n".join(f"{key} = {value}" for key, value in fields.items())
    return f"""
[[rule]]
{body}
match = {{ element = ["Forms$Page"] }}
{extra}
[[rule.example]]
expect = "match"
element = "Forms$Page"
[[rule.example]]
expect = "no-match"
element = "Forms$Snippet"
"""


def test_loader_accepts_a_minimal_rule() -> None:
    ruleset = parse_rule_files([("rules/x.toml", _rule())])
    assert [r.rule.id for r in ruleset.rules] == ["a-rule"]


def test_loader_reports_every_problem_at_once() -> None:
    bad = _rule(level='"sometimes"') + _rule(id='"Bad Id"', colour='"red"')
    unknown_fact = """
[[rule]]
id = "other"
level = "ota"
title = "T"
reason = "R"
advice = "A"
source = "S"
match = { facts = ["entity_synched"] }
"""
    with pytest.raises(RuleSetError) as error:
        parse_rule_files([("rules/x.toml", bad), ("rules/y.toml", unknown_fact)])
    message = str(error.value)
    assert "unknown level 'sometimes'" in message
    assert "unknown key 'colour'" in message
    assert "kebab-case" in message
    assert "unknown fact 'entity_synched' (did you mean 'entity_synced'?)" in message
    assert "needs at least one example" in message


def test_loader_rejects_duplicate_ids() -> None:
    with pytest.raises(RuleSetError, match="duplicate id 'a-rule'"):
        parse_rule_files([("rules/x.toml", _rule()), ("rules/y.toml", _rule())])


def test_loader_rejects_unknown_match_keys_with_a_hint() -> None:
    text = _rule().replace('match = { element = ["Forms$Page"] }', 'match = { elements = ["Forms$Page"] }')
    with pytest.raises(RuleSetError, match="unknown key 'elements' \\(did you mean 'element'\\?\\)"):
        parse_rule_files([("rules/x.toml", text)])


def test_loader_rejects_a_rule_without_examples() -> None:
    text = _rule().split("[[rule.example]]")[0]
    with pytest.raises(RuleSetError, match="needs at least one example that matches and one that does not"):
        parse_rule_files([("rules/x.toml", text)])


def test_shipped_rules_name_only_known_facts() -> None:
    for loaded in RULESET.rules:
        assert set(loaded.match.facts) | set(loaded.match.not_facts) <= set(FACTS)


def test_rule_files_are_read_in_a_stable_order() -> None:
    names = [path for path, _ in read_rule_files()]
    assert names == sorted(names)
