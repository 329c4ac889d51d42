"""The registered rule sets; `RULESET_ID` is the default written into every Tags record.

A rule set's id is a hash of its rules (`rules_hash`): every rule's label, name, yields and
patterns, and the source of every context rule. Changing any pattern changes the id, so a count
(or a fitted layer, see `_calibration`) always names the exact rules that produced it.
"""

from __future__ import annotations

import hashlib
import inspect
import json

from sftlens.trace_tagger import (
    _rules_backtracking,
    _rules_hedging,
    _rules_planning,
    _rules_verification,
)
from sftlens.trace_tagger._rules import RULESETS, Rule

RULESET_PREFIX = "sftlens-rules-"


def rules_hash(rules: tuple[Rule, ...]) -> str:
    """A 12-hex-digit hash of `rules`, in order: what each matches and how it resolves."""
    h = hashlib.sha256()
    for r in rules:
        entry = {
            "key": r.key,
            "yields_to": list(r.yields_to),
            "patterns": r.patterns(),
            "context": inspect.getsource(r.context) if r.context is not None else None,
        }
        h.update(json.dumps(entry, sort_keys=True, ensure_ascii=True).encode())
        h.update(b"\n")
    return h.hexdigest()[:12]


_DEFAULT_RULES = (
    *_rules_backtracking.RULES,
    *_rules_verification.RULES,
    *_rules_planning.RULES_SUBGOAL,
    *_rules_planning.RULES_BACKWARD,
    *_rules_hedging.RULES,
)
RULESET_ID = RULESET_PREFIX + rules_hash(_DEFAULT_RULES)

RULESETS.add(RULESET_ID, _DEFAULT_RULES)


def get_ruleset(name: str = RULESET_ID) -> tuple[Rule, ...]:
    """The rules of a registered rule set (a `ConfigError` lists the known ids on a miss)."""
    return RULESETS.get(name)
