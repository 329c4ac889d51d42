"""The rule machinery: named pattern functions grouped into versioned rule sets.

A rule is a small function decorated with `rule(label)` that returns its patterns: a string is a
phrase (matched by a `PhraseMatcher` on ``NORM``, so curly apostrophes and case do not matter), a
list of dicts is a token pattern for a `Matcher` built with ``validate=True``. The function's
docstring lists phrases the rule must and must not match::

    Must match:
        - Wait, that can't be right.
    Must not match:
        - We wait for the bus.

Those examples are the rule's tests (`rule_examples`). A rule may *yield* to labels or to single
rules (``label.name``): its span is dropped when a span of one of those labels (from any rule) or
of that rule is in the same sentence. This is how "uncertainty without a change of course"
(hedging) steps aside for backtracking, and how one sentence gets one reading where two labels
compete (a plain "Wait, let me check" is a check; "But wait, let me check" re-opens a step).

A *context rule* (`context_rule`) has no patterns: it looks at which rules fired in which
sentences after resolution and labels whole sentences that carry no span, such as the
re-computation between "Let me double-check that." and "Yes, that's correct." Its docstring
examples are short texts, tested the same way.

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
    context: Callable[[dict[int, set[str]]], list[int]] | None = None

    @property
    def key(self) -> str:
        """``label.name``: the id a matcher reports."""
        return f"{self.label}.{self.name}"


def rule(label: str, yields_to: tuple[str, ...] = ()) -> Callable[[Callable], Rule]:
    """Decorator turning a pattern function into a `Rule` labelled `label`.

    Args:
        label: one of `LABELS`.
        yields_to: labels, or rule keys ``label.name``, whose span in the same sentence drops
            this rule's span.
    """
    if label not in LABELS:
        raise ValueError(f"unknown label {label!r}; known: {', '.join(LABELS)}")
    for target in yields_to:
        if target.split(".", 1)[0] not in LABELS:
            raise ValueError(
                f"yields_to entry {target!r} is neither a label nor a rule key 'label.name'; "
                f"known labels: {', '.join(LABELS)}"
            )

    def deco(fn: Callable[[], list[Pattern]]) -> Rule:
        r = Rule(fn.__name__, label, fn, tuple(yields_to))
        # Keep the docstring reachable for rule_examples and the docs.
        object.__setattr__(r, "__doc__", fn.__doc__)
        return r

    return deco


def _no_patterns() -> list[Pattern]:
    return []


def context_rule(label: str) -> Callable[[Callable], Rule]:
    """Decorator turning a sentence-context function into a `Rule` labelled `label`.

    The function takes ``{sentence index: rule keys with a span there}`` for one text (after
    yields are resolved) and returns the indices of span-free sentences to label; each gets a
    span covering the sentence.
    """
    if label not in LABELS:
        raise ValueError(f"unknown label {label!r}; known: {', '.join(LABELS)}")

    def deco(fn: Callable[[dict[int, set[str]]], list[int]]) -> Rule:
        r = Rule(fn.__name__, label, _no_patterns, (), fn)
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
    for line in ((r.context or r.patterns).__doc__ or "").splitlines():
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
