"""Subgoal setting and backward chaining: planning the solution.

Subgoal setting breaks the problem into steps ("First, I need to find the area"). Backward
chaining works back from the goal ("to get 24 we need 4 * 6", "working backwards").
"""

from __future__ import annotations

from sftlens.trace_tagger._rules import rule

_GOAL_VERBS = [
    "find",
    "figure",
    "compute",
    "calculate",
    "determine",
    "get",
    "solve",
    "work",
    "show",
    "prove",
    "count",
    "express",
    "simplify",
    "identify",
    "understand",
]


@rule("subgoal_setting")
def plan_step():
    """The writer sets the next goal or breaks the task into steps.

    Must match:
        - First, I need to find the common denominator.
        - Next, we have to compute the area.
        - Step 2: solve for x.
        - Let me break this down.
        - The first step is to factor the polynomial.
        - Our goal is to reach 24.
        - Let's start by listing the divisors.
        - Next, we should determine the slope.
        - Let's break this into two cases.
        - The plan: factor, then solve.
        - My plan is to factor first.
    Must not match:
        - I found the common denominator.
        - The steps are shown below.
        - We need 3 apples.
        - We can compute it directly.
        - The plane is tilted.
    """
    return [
        [
            {"LOWER": {"IN": ["i", "we"]}},
            {"LOWER": {"IN": ["need", "have", "want", "'ll", "should", "must", "will"]}},
            {"LOWER": "to", "OP": "?"},
            {"LEMMA": {"IN": _GOAL_VERBS}},
        ],
        [{"LOWER": "step"}, {"LIKE_NUM": True}, {"ORTH": {"IN": [":", ")", "."]}}],
        [
            {"LEMMA": "break"},
            {"LOWER": {"IN": ["this", "it", "the"]}},
            {"LOWER": "problem", "OP": "?"},
            {"LOWER": "down"},
        ],
        [
            {"LOWER": {"IN": ["first", "next", "last", "final"]}},
            {"LOWER": "step"},
            {"LOWER": "is"},
            {"LOWER": "to"},
        ],
        [
            {"LEMMA": {"IN": ["break", "split", "divide"]}},
            {"OP": "?"},
            {"OP": "?"},
            {"LOWER": "into"},
            {"OP": "?"},
            {"LOWER": {"IN": ["cases", "parts", "steps", "subproblems", "pieces", "stages"]}},
        ],
        [
            {"LOWER": {"IN": ["goal", "aim", "task", "subgoal", "plan"]}},
            {"LOWER": "is"},
            {"LOWER": "to"},
        ],
        [{"LOWER": "plan"}, {"ORTH": ":"}],
        [{"LOWER": {"IN": ["start", "begin"]}}, {"LOWER": "by"}],
    ]


@rule("backward_chaining")
def from_the_goal():
    """The writer reasons from the goal back to what would produce it.

    Must match:
        - Working backwards, the last step must give 24.
        - Let me work backward from the answer.
        - To get 24, I need 4 and 6.
        - To reach the target, we need a factor of 3.
        - Starting from the target, 24 = 4 * 6.
        - For the sum to be 10, x must be 3.
        - For the product to be even, one factor must be even.
    Must not match:
        - To get started, list the numbers.
        - We work forward from the first term.
        - I get 24.
    """
    num_or_goal = {"LIKE_NUM": True}
    return [
        [
            {"LEMMA": {"IN": ["work", "reason", "go", "think"]}},
            {"LOWER": {"IN": ["backward", "backwards"]}},
        ],
        [
            {"LOWER": "to"},
            {"LEMMA": {"IN": ["get", "reach", "make", "obtain", "hit"]}},
            num_or_goal,
            {"IS_PUNCT": True, "OP": "?"},
            {"LOWER": {"IN": ["i", "we", "you"]}},
            {"LOWER": {"IN": ["need", "'d", "would", "must"]}},
        ],
        [
            {"LOWER": "to"},
            {"LEMMA": {"IN": ["get", "reach", "make", "obtain", "hit"]}},
            {"LOWER": {"IN": ["the", "our"]}},
            {"LOWER": {"IN": ["target", "goal", "answer"]}},
        ],
        [
            {"LEMMA": {"IN": ["start", "begin", "work"]}},
            {"LOWER": "from"},
            {"LOWER": {"IN": ["the", "our"]}},
            {"LOWER": {"IN": ["target", "goal", "answer", "end", "result"]}},
        ],
        [
            {"LOWER": "for"},
            {"OP": "?"},
            {"OP": "?"},
            {"OP": "?"},
            {"LOWER": "to"},
            {"LOWER": {"IN": ["be", "equal", "reach", "make"]}},
            {"OP": "?"},
            {"OP": "?"},
            {"IS_PUNCT": True, "OP": "?"},
            {"OP": "?"},
            {"OP": "?"},
            {"LOWER": {"IN": ["must", "needs", "need", "has", "should"]}},
        ],
    ]


RULES_SUBGOAL = (plan_step,)
RULES_BACKWARD = (from_the_goal,)
