"""The rule machinery: named pattern functions grouped into versioned rule sets.

A rule is a small function decorated with `rule(label)` that returns its patterns: a string is a
phrase (matched by a `PhraseMatcher` on ``NORM``, so curly apostrophes and case do not matter), a
list of dicts is a token pattern for a `Matcher` built with ``validate=True``. The function's
docstring lists phrases the rule must and must not match::

    Must match:
        - Wait, that can't be right.
    Must not match:
        - We wait for the bus.

Those examples are the rule's tests (`rule_examples`). A rule may *yield* to labels: its span is
dropped when a span of one of those labels (from any rule) is in the same sentence, which is how
"uncertainty without a change of course" (hedging) steps aside for backtracking.

A rule set is an ordered list of rules under an id; the id is written into every output, so a
count can always be traced to the rules that produced it. Changing any rule's patterns means a
new id.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from sftlens.core import Registry

LABELS = ("backtracking", "verification", "subgoal_setting", "backward_chaining", "hedging")

Pattern = str | list[dict]


@dataclasses.dataclass(frozen=True)
class Rule:
    """One named pattern function and what it labels."""

    name: str
    label: str
    patterns: Callable[[], list[Pattern]]
    yields_to: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """``label.name``: the id a matcher reports."""
        return f"{self.label}.{self.name}"


def rule(label: str, yields_to: tuple[str, ...] = ()) -> Callable[[Callable], Rule]:
    """Decorator turning a pattern function into a `Rule` labelled `label`."""
    if label not in LABELS:
        raise ValueError(f"unknown label {label!r}; known: {', '.join(LABELS)}")

    def deco(fn: Callable[[], list[Pattern]]) -> Rule:
        r = Rule(fn.__name__, label, fn, tuple(yields_to))
        # Keep the docstring reachable for rule_examples and the docs.
        object.__setattr__(r, "__doc__", fn.__doc__)
        return r

    return deco


_SECTION = re.compile(r"^\s*Must (not )?match:\s*$")
_ITEM = re.compile(r"^\s*-\s+(.*\S)\s*$")


def rule_examples(r: Rule) -> tuple[list[str], list[str]]:
    """The ``Must match`` and ``Must not match`` phrases of a rule's docstring."""
    must: list[str] = []
    must_not: list[str] = []
    target = None
    for line in (r.patterns.__doc__ or "").splitlines():
        m = _SECTION.match(line)
        if m:
            target = must_not if m.group(1) else must
            continue
        item = _ITEM.match(line)
        if item and target is not None:
            target.append(item.group(1))
        elif line.strip() and not item:
            target = None
    return must, must_not


RULESETS: Registry[tuple[Rule, ...]] = Registry("rule set")
