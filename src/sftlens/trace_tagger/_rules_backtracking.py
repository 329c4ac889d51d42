"""Backtracking: abandoning a path and going back, or switching approach.

A backtrack is a change of course: the writer stops ("wait", "hold on"), declares what they did
wrong ("that's not right", "I made a mistake"), or leaves the current path for another ("let me
try a different approach", "go back to"). Doubt that does not change course is hedging.
"""

from __future__ import annotations

from sftlens.trace_tagger._rules import rule

_STOP_WORDS = ["wait", "hold", "hang", "oops", "whoa", "scratch"]


@rule("backtracking", yields_to=("verification",))
def stop_interjection():
    """A sentence that opens by stopping the current line of thought.

    Yields to verification: "Wait, let me check that" is a check, not a change of course.

    Must match:
        - Wait, that can't be right.
        - But wait, 7 is not a factor of 24.
        - Hold on, I dropped a sign.
        - Hmm, wait. The second term is negative.
        - Oops, I dropped a sign.
        - Wait a second, the base is 16.
        - Scratch that.
    Must not match:
        - We wait for the next value of n.
        - Hold on to the remainder for later.
        - Wait, let me verify that 3 * 8 = 24.
    """
    lead = {"LOWER": {"IN": ["but", "oh", "hmm", "hmmm", "no", "and", "so", "okay", "ok"]}}
    return [
        [{"IS_SENT_START": True, "LOWER": {"IN": ["wait", "oops", "whoa"]}}],
        [{"IS_SENT_START": True, **lead}, {"IS_PUNCT": True, "OP": "?"}, {"LOWER": "wait"}],
        [
            {"IS_SENT_START": True, "LOWER": {"IN": ["hold", "hang"]}},
            {"LOWER": "on"},
            {"IS_PUNCT": True},
        ],
        [
            {"IS_SENT_START": True, **lead},
            {"IS_PUNCT": True, "OP": "?"},
            {"LOWER": {"IN": ["hold", "hang"]}},
            {"LOWER": "on"},
            {"IS_PUNCT": True},
        ],
        [{"IS_SENT_START": True, "LOWER": "scratch"}, {"LOWER": {"IN": ["that", "this"]}}],
    ]


@rule("backtracking")
def error_admission():
    """The writer says the current result or step is wrong.

    Must match:
        - That's not right, the sum is 23.
        - This is wrong because the remainder is negative.
        - I made a mistake in the second step.
        - Perhaps I miscalculated the area.
        - That can't be right.
        - That doesn't make sense.
        - This doesn't work, since 5 * 4 = 20.
        - So that path is a dead end.
        - That gives 21, not 24, so it fails.
        - No, that's incorrect.
        - This branch fails.
        - Nothing here gives 24.
        - There is no way to reach 24 from here.
    Must not match:
        - Let me make sure I didn't make a mistake.
        - That's right, the sum is 24.
        - This works because 6 * 4 = 24.
        - The wrong answer choices are B and C.
    """
    subj = {"LOWER": {"IN": ["that", "this", "it", "which", "something"]}}
    be = {"NORM": {"IN": ["is", "'s", "was", "seems", "must", "looks"]}}
    return [
        [
            subj,
            be,
            {"LOWER": "be", "OP": "?"},
            {"LOWER": "not"},
            {"LOWER": {"IN": ["right", "correct", "possible", "valid", "true", "working"]}},
        ],
        [subj, be, {"LOWER": {"IN": ["wrong", "incorrect", "impossible", "off"]}}],
        [
            subj,
            {"NORM": {"IN": ["can", "could"]}},
            {"NORM": "not"},
            {"LOWER": "be"},
            {"LOWER": {"IN": ["right", "correct", "true", "it"]}},
        ],
        [
            {"NORM": {"IN": ["does", "did", "do", "will", "would"]}},
            {"NORM": "not"},
            {"LEMMA": {"IN": ["work", "help", "add"]}, "LOWER": {"NOT_IN": ["adding"]}},
        ],
        [
            {"NORM": {"IN": ["does", "did", "do"]}},
            {"NORM": "not"},
            {"LEMMA": "make"},
            {"LOWER": "sense"},
        ],
        [
            {"LOWER": {"IN": ["made", "making"]}},
            {"LOWER": {"IN": ["a", "an", "another"]}},
            {"LOWER": {"IN": ["mistake", "error", "miscalculation"]}},
        ],
        [
            {
                "LOWER": {
                    "IN": [
                        "miscalculated",
                        "miscounted",
                        "misread",
                        "misapplied",
                        "misinterpreted",
                        "messed",
                    ]
                }
            }
        ],
        [{"LOWER": "dead"}, {"LOWER": {"IN": ["end", "-"]}}],
        [{"LOWER": "so"}, {"LOWER": {"IN": ["it", "this", "that"]}}, {"LOWER": "fails"}],
        [
            {
                "LOWER": {
                    "IN": [
                        "it",
                        "this",
                        "that",
                        "branch",
                        "path",
                        "approach",
                        "attempt",
                        "route",
                        "idea",
                        "method",
                    ]
                }
            },
            {"LOWER": {"IN": ["fails", "failed"]}},
        ],
        [
            {"LOWER": "nothing"},
            {"LOWER": {"IN": ["here", "there", "else"]}, "OP": "?"},
            {"LEMMA": {"IN": ["give", "work", "reach", "make", "help"]}},
        ],
        [
            {"LOWER": "no"},
            {"LOWER": {"IN": ["way", "path", "route"]}},
            {"LOWER": "to"},
            {"LEMMA": {"IN": ["reach", "get", "make", "obtain"]}},
        ],
    ]


@rule("backtracking")
def switch_approach():
    """The writer leaves the current path: goes back, starts over, or takes another approach.

    Must match:
        - Let me try a different approach.
        - Let's try another way.
        - Maybe I should use another method instead.
        - Let me go back to the first equation.
        - I'll start over with the factorization.
        - Let me reconsider the problem.
        - Let me think again.
        - Instead, let's try 25 - 5 = 20.
        - Let me backtrack.
        - On second thought, the base case is n = 1.
        - I'll try something else.
        - Back up.
        - Return to 3 7.
        - Back to room B.
    Must not match:
        - The approach works for every n.
        - We go on to the next term.
        - A different base gives the same result.
        - Back substitution gives x = 2.
        - Return the largest value.
    """
    other = {
        "LOWER": {
            "IN": [
                "approach",
                "way",
                "method",
                "strategy",
                "route",
                "path",
                "tactic",
                "idea",
                "combination",
                "option",
                "attempt",
            ]
        }
    }
    return [
        [{"LOWER": "another"}, other],
        [
            {"LOWER": {"IN": ["a", "an", "some"]}},
            {"LOWER": {"IN": ["different", "new", "other", "alternative"]}},
            other,
        ],
        [{"LEMMA": {"IN": ["go", "step"]}}, {"LOWER": "back"}, {"LOWER": {"IN": ["to", "and"]}}],
        [{"LEMMA": {"IN": ["start", "begin"]}}, {"LOWER": {"IN": ["over", "again", "afresh"]}}],
        [
            {"LOWER": {"IN": ["let", "i", "we"]}},
            {"LOWER": {"IN": ["me", "us", "'ll", "should", "need"]}, "OP": "?"},
            {"LOWER": "to", "OP": "?"},
            {
                "LOWER": {
                    "IN": [
                        "reconsider",
                        "rethink",
                        "re-think",
                        "re-evaluate",
                        "reevaluate",
                        "re-examine",
                        "reexamine",
                        "backtrack",
                        "revisit",
                        "redo",
                        "retry",
                    ]
                }
            },
        ],
        [
            {"LOWER": {"IN": ["let", "i"]}},
            {"LOWER": {"IN": ["me", "need", "should"]}},
            {"LOWER": "to", "OP": "?"},
            {"LOWER": "think"},
            {"LOWER": "again"},
        ],
        [{"IS_SENT_START": True, "LOWER": "instead"}, {"IS_PUNCT": True}],
        [{"LOWER": "on"}, {"LOWER": "second"}, {"LOWER": {"IN": ["thought", "thoughts"]}}],
        [{"LEMMA": "backtrack"}],
        [{"LEMMA": "try"}, {"LOWER": "something"}, {"LOWER": {"IN": ["else", "different"]}}],
        [
            {"IS_SENT_START": True, "LOWER": {"IN": ["back", "return", "returning"]}},
            {"LOWER": {"IN": ["up", "to"]}},
            {"IS_PUNCT": True, "OP": "?"},
            {
                "LIKE_NUM": False,
                "IS_PUNCT": False,
                "IS_SPACE": False,
                "LOWER": {"NOT_IN": ["the"]},
                "OP": "?",
            },
        ],
    ]


RULES = (stop_interjection, error_admission, switch_approach)
