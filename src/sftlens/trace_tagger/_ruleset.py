"""The registered rule sets; `RULESET_ID` is the default written into every Tags record."""

from __future__ import annotations

from sftlens.trace_tagger import (
    _rules_backtracking,
    _rules_hedging,
    _rules_planning,
    _rules_verification,
)
from sftlens.trace_tagger._rules import RULESETS, Rule

RULESET_ID = "sftlens-rules-v3"

RULESETS.add(
    RULESET_ID,
    (
        *_rules_backtracking.RULES,
        *_rules_verification.RULES,
        *_rules_planning.RULES_SUBGOAL,
        *_rules_planning.RULES_BACKWARD,
        *_rules_hedging.RULES,
    ),
)


def get_ruleset(name: str = RULESET_ID) -> tuple[Rule, ...]:
    """The rules of a registered rule set (a `ConfigError` lists the known ids on a miss)."""
    return RULESETS.get(name)
