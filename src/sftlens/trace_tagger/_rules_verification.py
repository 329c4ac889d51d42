"""Verification: checking a result by substituting back, re-computing, or comparing with the target.

A verification announces a check ("let me verify", "double-check"), performs one
("substituting back", "plugging in x = 3"), or states its outcome ("that checks out", "which
matches the target", "Yes, that's correct").

A sentence that also re-opens a step (a corrective stop such as "But wait", an error admission,
doubt about a result, or a switch to another method) is a backtrack, not a check: "But wait,
let me double-check that, I might have made a mistake" re-evaluates; the check is its means.
Every verification rule therefore yields to those backtracking rules (`YIELDS`).
"""

from __future__ import annotations

from sftlens.trace_tagger._rules import context_rule, rule

YIELDS = (
    "backtracking.self_correction",
    "backtracking.error_admission",
    "backtracking.doubt_result",
    "backtracking.switch_approach",
)

_CHECK_VERBS = [
    "check",
    "verify",
    "confirm",
    "recheck",
    "validate",
    "doublecheck",
    "reverify",
    "recompute",
    "recalculate",
    "recount",
]
# The second half of a hyphenated redo ("re-check", "cross-check"): the tokenizer splits
# "re-check" into "re", "-", "check". Re-examining and redoing re-open a step
# (`backtracking.switch_approach`), hyphenated or not.
_REDO_AFTER_HYPHEN = [
    "check",
    "verify",
    "confirm",
    "compute",
    "calculate",
    "count",
    "derive",
    "test",
]


_LEAD_VERBS = ["check", "verify", "confirm", "test"]
_REDO_VERBS = [
    "compute",
    "calculate",
    "count",
    "add",
    "multiply",
    "evaluate",
    "redo",
    "tally",
    "sum",
]


@rule("verification", yields_to=YIELDS)
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
        - Let me compute that product again.
        - Let me go through each layer again.
        - Let me add them up again.
        - **Rechecking the units digits:**
        - Now, let's test this formula for n = 1.
        - Let me re-check the sum.
        - Re-computing: 7 * 8 = 56.
        - Let me cross-check with the formula.
        - Let me see if this works: 2 * 3 = 6.
    Must not match:
        - The check digit is 7.
        - Let me compute the sum of the digits.
        - Make a table of the values.
        - Let me think about it again.
        - Let me read the problem again.
        - Using the binomial theorem again, the middle term is 20.
        - Let me check the problem again.
        - The test has five questions.
        - Let me re-evaluate my approach.
        - The re-entry point is 4.
        - Let me see if I can find a pattern.
    """
    again = {"LOWER": {"IN": ["again", "afresh"]}}
    lead = {
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
                "'s",
            ]
        }
    }
    return [
        [{"LEMMA": {"IN": _CHECK_VERBS}, "LOWER": {"NOT_IN": ["check", "checks"]}}],
        # "let me check", "to verify", ... but not a re-reading of the problem statement
        # ("Let me check the problem again").
        [lead, {"LOWER": {"IN": _LEAD_VERBS}}, {"LOWER": {"NOT_IN": ["the"]}}],
        [
            lead,
            {"LOWER": {"IN": _LEAD_VERBS}},
            {"LOWER": "the"},
            {"LOWER": {"NOT_IN": ["problem", "question", "statement", "original", "task"]}},
        ],
        [{"IS_SENT_START": True, "LOWER": {"IN": ["check", "verify", "verification", "checking"]}}],
        [{"LOWER": "double"}, {"ORTH": "-", "OP": "?"}, {"LEMMA": "check"}],
        [{"LOWER": {"IN": ["re", "cross"]}}, {"ORTH": "-"}, {"LEMMA": {"IN": _REDO_AFTER_HYPHEN}}],
        # "Let me see if this works", "see whether it holds".
        [
            {"LEMMA": "see"},
            {"LOWER": {"IN": ["if", "whether"]}},
            {"OP": "?"},
            {"OP": "?"},
            {"LEMMA": {"IN": ["work", "hold", "check"]}},
        ],
        [{"LOWER": {"IN": ["make", "making", "be", "being"]}}, {"LOWER": "sure"}],
        [{"LOWER": {"IN": ["sanity", "quick", "final"]}}, {"LOWER": "check"}],
        # Re-computation: "compute that product again", "go through each layer again".
        [
            {"LEMMA": {"IN": _REDO_VERBS}},
            {"OP": "?"},
            {"OP": "?"},
            {"OP": "?"},
            again,
        ],
        [
            {"LEMMA": "go"},
            {"LOWER": {"IN": ["through", "over"]}},
            {"OP": "?"},
            {"OP": "?"},
            {"OP": "?"},
            again,
        ],
    ]


@rule("verification", yields_to=YIELDS)
def substitute_back():
    """The writer substitutes a result back or plugs it in to test it.

    Plugging numbers into a formula is computing, not checking: the value must go *back*
    (into the equation it came from) or be plugged in *to test* something.

    Must match:
        - Substituting back, 2(3) + 1 = 7.
        - Plug x = 2 back into the equation.
        - Let me plug in n = 4 to test.
        - Plugging it back in gives 0.
    Must not match:
        - Substitute u = x^2 to simplify the integral.
        - The plug was loose.
        - Let me plug in the numbers.
        - Let's plug in the recurrence:
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
    ]


# Things that can agree with each other: "both methods agree".
_AGREEING = ["methods", "approaches", "results", "answers", "values", "ways", "checks"]


@rule("verification", yields_to=YIELDS)
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
        - That seems right because 10 plates are placed.
        - Hmm, okay, that seems logical.
        - So yes, 88572.
        - Since 488 is beyond 449, yes, all five blocks are complete.
        - Both methods give the same result.
        - So, that's reassuring.
        - I think 588 is the correct answer.
        - So both methods agree.
        - The computed value matches the expected value.
        - Alright, that checks.
    Must not match:
        - Which option is correct?
        - That's not correct.
        - That's not quite right.
        - This doesn't make sense.
        - The correct formula is the binomial theorem.
        - The target is 24.
        - Yesterday I learned this.
        - It seems reasonable to assume that n is even.
        - That doesn't seem right.
        - Which is the right answer?
        - So there are 9 sets. Right?
        - The two sides have the same number of terms.
        - Both numbers add to 10.
        - This checks whether n is prime.
    """
    return [
        [
            {"IS_SENT_START": True, "LOWER": {"IN": ["yes", "yep", "yeah", "correct", "right"]}},
            {"IS_PUNCT": True, "ORTH": {"NOT_IN": ["?"]}},
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
        # "both methods agree" (not "both numbers add to 10").
        [
            {"LOWER": {"IN": ["all", "both"]}},
            {"LOWER": {"IN": _AGREEING}},
            {"LEMMA": {"IN": ["agree", "match", "coincide"]}},
        ],
        # "matches the expected value", "agrees with the earlier result".
        [
            {"LEMMA": {"IN": ["match", "agree"]}},
            {"LOWER": "with", "OP": "?"},
            {"LOWER": {"IN": ["the", "our", "my"]}},
            {"LOWER": {"IN": ["expected", "earlier", "previous", "original", "given", "known"]}},
        ],
        [
            {"LOWER": {"IN": ["that", "it", "this", "everything"]}},
            {"LOWER": "checks"},
            {"ORTH": {"IN": [".", "!"]}},
        ],
        [{"ORTH": {"IN": ["✓", "✔", "✅"]}}],
        [{"LOWER": "as"}, {"LOWER": "expected"}],
        # A closing verdict: "... so 6.18% is correct." (not "... is not correct.").
        [
            # Not after a negation or a verb that follows one ("doesn't seem right.").
            {
                "LOWER": {
                    "NOT_IN": [
                        "not",
                        "n't",
                        "n’t",
                        "never",
                        "be",
                        "seem",
                        "look",
                        "sound",
                        "quite",
                        "entirely",
                        "exactly",
                        "necessarily",
                    ]
                }
            },
            {"LOWER": {"IN": ["correct", "right", "reasonable"]}},
            {"ORTH": {"IN": [".", "!"]}},
        ],
        [
            {"LOWER": {"IN": ["which", "that", "this", "it"]}},
            {"LOWER": {"IN": ["matches", "agrees", "match", "agree"]}},
        ],
        [{"LOWER": {"IN": ["makes", "made"]}}, {"LOWER": "sense"}],
        [{"LOWER": "consistent"}],
        # "that seems right because ..." (not "it seems reasonable to assume ...").
        [
            {"LOWER": {"IN": ["seems", "seemed", "looks", "sounds"]}},
            {"LOWER": "to", "OP": "?"},
            {"LOWER": "be", "OP": "?"},
            {
                "LOWER": {
                    "IN": [
                        "right",
                        "correct",
                        "consistent",
                        "reasonable",
                        "logical",
                        "plausible",
                        "accurate",
                        "valid",
                        "fine",
                        "good",
                    ]
                }
            },
            {"LOWER": {"NOT_IN": ["to", "that", "for", "if", "whether", "when"]}},
        ],
        # An affirmation inside the sentence: "So yes, 88572.", "..., yes, all five ...".
        [
            {
                "IS_SENT_START": True,
                "LOWER": {"IN": ["so", "and", "okay", "ok", "oh", "then", "hmm"]},
            },
            {"IS_PUNCT": True, "OP": "?"},
            {"LOWER": {"IN": ["yes", "yep", "yeah"]}},
        ],
        [{"ORTH": ","}, {"LOWER": {"IN": ["yes", "yep", "yeah"]}}, {"ORTH": ","}],
        # Two computations agree: "both methods give the same result".
        [
            {"LEMMA": {"IN": ["give", "get", "yield", "produce", "arrive", "reach"]}},
            {"LOWER": {"IN": ["the", "at"]}},
            {"LOWER": "the", "OP": "?"},
            {"LOWER": "same"},
            {"LOWER": {"IN": ["result", "answer", "value", "total", "results", "answers"]}},
        ],
        [{"IS_SENT_START": True, "LOWER": "same"}, {"LOWER": {"IN": ["result", "answer"]}}],
        [{"LOWER": "reassuring"}],
        [
            {"LOWER": {"NOT_IN": ["which", "what", "whether", "if"]}},
            {"LOWER": {"IN": ["is", "'s"]}},
            {"LOWER": "the"},
            {"LOWER": {"IN": ["correct", "right"]}},
            {"LOWER": {"IN": ["answer", "result", "value", "count", "total"]}},
        ],
    ]


@rule("verification", yields_to=YIELDS)
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
        - Wait, that seems too big.
    """
    goal = {"LOWER": {"IN": ["target", "goal", "answer"]}}
    return [
        [
            {"TEXT": {"REGEX": r"\d$"}},
            {"ORTH": ","},
            {"LOWER": {"IN": ["no", "nope"]}},
            {"ORTH": {"IN": [".", "!", ";"]}},
        ],
        # "21, too small." (a doubt such as "that seems too big" is backtracking.doubt_result).
        [
            {"ORTH": ","},
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


MAX_EPISODE_GAP = 3
_OPENERS = frozenset(
    {"verification.check_intent", "verification.substitute_back", "verification.confirmation"}
)
_VERDICT = "verification.confirmation"


@context_rule("verification")
def check_episode(sent_rules: dict[int, set[str]]) -> list[int]:
    """The sentences between a check's opening and its verdict, which re-compute what is checked.

    A check often spans sentences: an announcement ("Let me double-check that.") or a verdict
    on the previous item, then up to `MAX_EPISODE_GAP` sentences that redo a computation with
    no cue of their own, then a verdict ("Yes, that's correct."). The middle sentences are part
    of the check. A labelled sentence in between (a stop, a hedge, a plan) or a longer gap ends
    the episode; a computation that no verdict closes is not labelled.

    Must match:
        - Let me double-check that. 6 * 4 = 24. Yes, that's correct.
        - Let me recount. Units: 49, tens: 50. So 99 in total. Correct.
        - That's correct. Next, 5! = 120. Correct.
    Must not match:
        - Let me double-check that. 6 * 4 = 24.
        - 6 * 4 = 24. Yes, that's correct.
        - Let me check. 1 + 1 = 2. Then 2 + 2 = 4. And 4 + 4 = 8. So 8 + 8 = 16. Correct.
        - Let me check. Hmm, 6 * 4 = 24. Yes, that's correct.
    """
    out: list[int] = []
    prev = None  # the last sentence with a span
    for k in sorted(sent_rules):
        keys = sent_rules[k]
        if (
            prev is not None
            and 0 < k - prev - 1 <= MAX_EPISODE_GAP
            and _VERDICT in keys
            and not _OPENERS.isdisjoint(sent_rules[prev])
        ):
            out.extend(range(prev + 1, k))
        prev = k
    return out


RULES = (check_intent, substitute_back, confirmation, compare_target, check_episode)
