"""Verification: checking a result by substituting back, re-computing, or comparing with the target.

A verification announces a check ("let me verify", "double-check"), performs one
("substituting back", "plugging in x = 3"), or states its outcome ("that checks out", "which
matches the target", "Yes, that's correct").
"""

from __future__ import annotations

from sftlens.trace_tagger._rules import rule

_CHECK_VERBS = [
    "check",
    "verify",
    "confirm",
    "recheck",
    "re-check",
    "validate",
    "cross-check",
    "doublecheck",
    "re-verify",
    "reverify",
    "recompute",
    "re-compute",
    "recalculate",
    "re-calculate",
    "recount",
    "re-count",
]


@rule("verification")
def check_intent():
    """The writer announces or performs a check of a result.

    Must match:
        - Let me verify that.
        - Let me double-check the multiplication.
        - To confirm, 6 * 4 = 24.
        - Just to make sure, compute 12 + 12 again.
        - Checking: 25 - 1 = 24.
        - Let me recalculate the sum.
        - As a sanity check, n = 1 gives 3.
        - I can check this by expanding.
    Must not match:
        - The check digit is 7.
        - Let me compute the sum of the digits.
        - Make a table of the values.
    """
    return [
        [{"LEMMA": {"IN": _CHECK_VERBS}, "LOWER": {"NOT_IN": ["check", "checks"]}}],
        [
            {
                "LOWER": {
                    "IN": [
                        "let",
                        "to",
                        "can",
                        "i",
                        "we",
                        "should",
                        "must",
                        "'ll",
                        "will",
                        "just",
                        "quickly",
                        "now",
                        "me",
                        "us",
                    ]
                }
            },
            {"LOWER": {"IN": ["check", "verify", "confirm"]}},
        ],
        [{"IS_SENT_START": True, "LOWER": {"IN": ["check", "verify", "verification", "checking"]}}],
        [{"LOWER": "double"}, {"ORTH": "-", "OP": "?"}, {"LEMMA": "check"}],
        [{"LOWER": {"IN": ["make", "making", "be", "being"]}}, {"LOWER": "sure"}],
        [{"LOWER": {"IN": ["sanity", "quick", "final"]}}, {"LOWER": "check"}],
        [
            {"LEMMA": "compute"},
            {"LOWER": {"IN": ["it", "this", "that"]}, "OP": "?"},
            {"LOWER": "again"},
        ],
    ]


@rule("verification")
def substitute_back():
    """The writer substitutes a result back or plugs it in to test it.

    Must match:
        - Substituting back, 2(3) + 1 = 7.
        - Plug x = 2 back into the equation.
        - Let me plug in n = 4 to test.
        - Plugging it back in gives 0.
    Must not match:
        - Substitute u = x^2 to simplify the integral.
        - The plug was loose.
    """
    return [
        [
            {"LEMMA": {"IN": ["substitute", "plug", "put"]}},
            {"OP": "?"},
            {"OP": "?"},
            {"OP": "?"},
            {"LOWER": "back"},
        ],
        [
            {"LEMMA": "plug"},
            {"LOWER": "in"},
            {"OP": "?"},
            {"OP": "?"},
            {"OP": "?"},
            {"LOWER": "to"},
            {"LEMMA": {"IN": ["test", "check", "see", "verify", "confirm"]}},
        ],
        [{"LOWER": "let"}, {"LOWER": {"IN": ["me", "us", "'s"]}}, {"LEMMA": "plug"}],
    ]


@rule("verification")
def confirmation():
    """The writer states that a result passed a check.

    Must match:
        - Yes, that's correct.
        - Correct.
        - That checks out.
        - 6 * 4 = 24, which matches the target.
        - So 24 equals the target.
        - So the result is consistent.
        - Layer 2: 1 + 3 * 4 = 13 ✓
        - Yep, 49 is right.
        - The answer seems right.
        - So 6.18% is correct.
        - Which matches the earlier computation.
        - I think that makes sense.
        - The two results are consistent with each other.
    Must not match:
        - Which option is correct?
        - That's not correct.
        - This doesn't make sense.
        - The correct formula is the binomial theorem.
        - The target is 24.
        - Yesterday I learned this.
    """
    return [
        [
            {"IS_SENT_START": True, "LOWER": {"IN": ["yes", "yep", "yeah", "correct", "right"]}},
            {"IS_PUNCT": True},
        ],
        [{"LEMMA": "check"}, {"LOWER": "out"}],
        [
            {
                "LOWER": {
                    "IN": [
                        "matches",
                        "match",
                        "matched",
                        "equals",
                        "reaches",
                        "hits",
                        "gives",
                        "is",
                    ]
                }
            },
            {"LOWER": {"IN": ["the", "our", "my"]}},
            {"LOWER": {"IN": ["target", "goal", "expected"]}},
            {"IS_PUNCT": True},
        ],
        [
            {"LOWER": {"IN": ["is", "'s", "seems", "looks"]}},
            {"LOWER": {"IN": ["consistent", "correct", "right", "confirmed", "verified"]}},
            {"ORTH": {"IN": [".", "!", ",", ";", ":"]}},
        ],
        [
            {"LOWER": {"IN": ["all", "everything", "both"]}},
            {"LEMMA": {"IN": ["add", "match", "agree"]}},
        ],
        [{"ORTH": {"IN": ["✓", "✔", "✔️", "✅"]}}],
        [{"LOWER": "as"}, {"LOWER": "expected"}],
        # A closing verdict: "... so 6.18% is correct." (not "... is not correct.").
        [
            {"LOWER": {"NOT_IN": ["not", "n't", "n’t", "never", "be"]}},
            {"LOWER": {"IN": ["correct", "right", "reasonable"]}},
            {"ORTH": {"IN": [".", "!"]}},
        ],
        [
            {"LOWER": {"IN": ["which", "that", "this", "it"]}},
            {"LOWER": {"IN": ["matches", "agrees", "match", "agree"]}},
        ],
        [{"LOWER": {"IN": ["makes", "made"]}}, {"LOWER": "sense"}],
        [{"LOWER": "consistent"}],
    ]


@rule("verification")
def compare_target():
    """The writer compares a computed value with the target or the expected value.

    Must match:
        - 2+19=21, too small.
        - 2*19=38, no.
        - 7*3=21, not 24.
        - 39-10=29, which matches 29.
        - 21 misses 24.
        - 5+4=9 is not 24.
        - 6*4=24, equal to the target.
        - C is not the goal P.
        - Is S the goal?
        - Found 24.
        - Reached the target.
        - Reached P.
        - T is not Z.
        - S->P exists.
        - x=3 ok.
    Must not match:
        - Wait, no, that can't be right.
        - The goal is to reach 24.
        - We have 24 apples.
        - Take 6*4=24 first.
        - Found a pattern in the digits.
        - The target is 24.
        - Begin at H; the target is Z.
    """
    goal = {"LOWER": {"IN": ["target", "goal", "answer"]}}
    return [
        [
            {"TEXT": {"REGEX": r"\d$"}},
            {"ORTH": ","},
            {"LOWER": {"IN": ["no", "nope"]}},
            {"ORTH": {"IN": [".", "!", ";"]}},
        ],
        [
            {"LOWER": "too"},
            {
                "LOWER": {
                    "IN": ["small", "big", "large", "high", "low", "much", "little", "many", "few"]
                }
            },
        ],
        [{"ORTH": ","}, {"LOWER": "not"}, {"LIKE_NUM": True}],
        [
            {
                "LEMMA": {"IN": ["miss", "match", "equal", "hit", "reach"]},
                "LOWER": {"NOT_IN": ["reach"]},
            },
            {"LIKE_NUM": True},
        ],
        # "... is (not) 24." and "T is not Z." (a number, or a one-letter name, closing it).
        [
            {"LOWER": {"IN": ["is", "'s", "was"]}},
            {"LOWER": "not"},
            {"LIKE_NUM": True},
            {"IS_PUNCT": True},
        ],
        [
            {"LOWER": {"IN": ["is", "'s", "was"]}},
            {"LOWER": "not"},
            {"IS_UPPER": True, "LENGTH": 1},
            {"ORTH": {"IN": [".", "!", ";"]}},
        ],
        # A relation followed by its verdict: "x=3 ok", "S->P exists".
        [
            {"TEXT": {"REGEX": r"\w(=|->|→|<|>|≤|≥)\w"}},
            {"LOWER": {"IN": ["ok", "okay", "exists", "holds", "works", "valid"]}},
        ],
        [
            {"LOWER": {"IN": ["equal", "equals", "equaling", "matching", "matches"]}},
            {"LOWER": "to", "OP": "?"},
            {"LOWER": {"IN": ["the", "our", "my"]}},
            goal,
        ],
        [{"LOWER": {"IN": ["is", "'s", "was"]}}, {"LOWER": "not"}, {"LOWER": "the"}, goal],
        [
            {"IS_SENT_START": True, "LOWER": {"IN": ["is", "does", "did", "was"]}},
            {"OP": "?"},
            {"OP": "?"},
            {"LOWER": {"IN": ["the", "our", "my"]}},
            goal,
            {"ORTH": "?"},
        ],
        # A short "Found 24." / "Reached the goal!" sentence.
        [
            {"IS_SENT_START": True, "LOWER": {"IN": ["found", "reached", "hit"]}},
            {"IS_PUNCT": False},
            {"IS_PUNCT": False, "OP": "?"},
            {"ORTH": {"IN": [".", "!"]}},
        ],
    ]


RULES = (check_intent, substitute_back, confirmation, compare_target)
