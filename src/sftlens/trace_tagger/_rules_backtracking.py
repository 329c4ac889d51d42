"""Backtracking: abandoning a path and going back, or switching approach.

A backtrack is a change of course: the writer stops ("wait", "hold on"), declares what they did
wrong ("that's not right", "I made a mistake"), or leaves the current path for another ("let me
try a different approach", "go back to"). Doubt that does not change course is hedging.
"""

from __future__ import annotations

from sftlens.trace_tagger._rules import rule

_LEAD = ["oh", "hmm", "hmmm", "and", "so", "okay", "ok", "no", "now"]


_STOP_CUES = [
    "?",
    "maybe",
    "perhaps",
    "not",
    "n't",
    "no",
    "nope",
    "confused",
    "confusing",
    "unsure",
    "sure",
    "should",
    "think",
    "wrong",
    "incorrect",
    "mistake",
    "mistakes",
    "seem",
    "seems",
    "actually",
    "hold",
    "but",
    "another",
    "instead",
    "again",
    "hmm",
    "oh",
    "let",
]


@rule("backtracking", yields_to=("verification",))
def stop_interjection():
    """A sentence that opens by stopping the current line of thought and doubts or leaves it.

    The stop is a sentence of its own ("Wait."), or the rest of the sentence carries doubt, a
    question, a negation or a new move ("Wait, is t given?", "Wait, maybe ...", "Wait, that
    can't be", "Wait, let's see"). A "Wait," that goes on with a plain statement ("Wait, the
    formula is:", "Wait, 188 - 98 is 90.") is a pause, not a change of course.

    Yields to verification: "Wait, let me check that" is a check, not a change of course (a
    contrastive or corrective stop is `self_correction`, which does not yield).

    Must match:
        - Wait, that can't be right.
        - Wait, 7 is not a factor of 24.
        - Hmm, wait. The second term is negative.
        - Wait.
        - Wait, is t given?
        - Wait, now I'm confused.
        - So wait, maybe the base is 16.
        - Whoa, that seems too big.
        - Wait, let's see.
    Must not match:
        - We wait for the next value of n.
        - Wait, let me verify that 3 * 8 = 24.
        - I had to wait, so I computed it later.
        - Wait, the linear approximation is:
        - Wait, 188 - 98 is 90.
        - So wait, the base is 16.
    """
    lead = {"LOWER": {"IN": _LEAD}}
    stop = {"LOWER": {"IN": ["wait", "whoa"]}}
    end = {"ORTH": {"IN": [".", "!", "...", "\u2026"]}}
    cue = {"LOWER": {"IN": _STOP_CUES}}
    return [
        [{"IS_SENT_START": True, **stop}, end],
        [{"IS_SENT_START": True, **lead}, {"IS_PUNCT": True, "OP": "?"}, stop, end],
        [{"IS_SENT_START": True, **stop}, {"OP": "*"}, cue],
        [{"IS_SENT_START": True, **lead}, {"IS_PUNCT": True, "OP": "?"}, stop, {"OP": "*"}, cue],
    ]


@rule("backtracking")
def self_correction():
    """A stop that objects to or corrects what came before ("but wait", "wait, no", "hold on").

    Unlike a bare "Wait," the stop says the previous step is in doubt ("but"), wrong ("no"),
    or about to be corrected ("actually"), so a check announced in the same sentence
    ("But wait, let me double-check the sum") re-opens that step: the sentence is a
    backtrack, and verification rules yield to it.

    Must match:
        - But wait, 7 is not a factor of 24.
        - Wait, but the second term is negative.
        - Wait, no, the base is 16.
        - No, wait, that is the old value.
        - Wait, actually, the sum is 23.
        - Hold on, I dropped a sign.
        - But wait, hold on, let me double-check the sum.
        - That gives 24, but wait, we used 6 twice.
        - Wait a second, the base is 16.
        - Oops, I dropped a sign.
        - Actually, no, the order matters.
        - Scratch that.
    Must not match:
        - Hold on to the remainder for later.
        - We wait for the next value of n.
        - But waiting is not needed here.
        - Wait, let me verify that 3 * 8 = 24.
        - Actually, the sum is 23.
    """
    lead = {"LOWER": {"IN": _LEAD}}
    fix = {"LOWER": {"IN": ["but", "no", "nope", "actually", "wait"]}}
    return [
        [{"LOWER": "but"}, {"IS_PUNCT": True, "OP": "?"}, {"LOWER": "wait"}, {"IS_PUNCT": True}],
        [{"IS_SENT_START": True, "LOWER": "wait"}, {"IS_PUNCT": True, "OP": "?"}, fix],
        [
            {"IS_SENT_START": True, **lead},
            {"IS_PUNCT": True, "OP": "?"},
            {"LOWER": "wait"},
            {"IS_PUNCT": True, "OP": "?"},
            fix,
        ],
        [
            {"IS_SENT_START": True, "LOWER": {"IN": ["no", "nope", "actually"]}},
            {"IS_PUNCT": True, "OP": "?"},
            {"LOWER": {"IN": ["wait", "no"]}},
            {"IS_PUNCT": True},
        ],
        [{"LOWER": {"IN": ["hold", "hang"]}}, {"LOWER": "on"}, {"IS_PUNCT": True}],
        [
            {"LOWER": "wait"},
            {"LOWER": "a"},
            {"LOWER": {"IN": ["second", "sec", "minute", "moment"]}},
        ],
        [{"IS_SENT_START": True, "LOWER": {"IN": ["oops", "whoops"]}}],
        [{"IS_SENT_START": True, "LOWER": "scratch"}, {"LOWER": {"IN": ["that", "this"]}}],
    ]


_ERROR_WORDS = [
    "miscalculated",
    "miscalculation",
    "miscalculating",
    "miscounted",
    "miscounting",
    "misread",
    "misapplied",
    "misinterpreted",
    "misinterpreting",
    "misunderstood",
    "misunderstanding",
    "misremembered",
    "messed",
    "overcounted",
    "overcounting",
    "undercounted",
    "undercounting",
    "overcomplicating",
    "overcomplicated",
    "overthinking",
]


@rule("backtracking")
def error_admission():
    """The writer says the current result or step is wrong.

    Must match:
        - That's not right, the sum is 23.
        - That's not quite right.
        - That might not be correct.
        - That doesn't seem right.
        - This is wrong because the remainder is negative.
        - I made a mistake in the second step.
        - Unless I made a multiplication error when computing 3 * 29524.
        - Maybe I'm not structuring this correctly.
        - Perhaps I miscalculated the area.
        - Maybe I misunderstood the question.
        - So, clearly, that method is overcounting.
        - Wait, maybe I'm overcomplicating this.
        - That can't be right.
        - That doesn't make sense.
        - This doesn't work, since 5 * 4 = 20.
        - So that path is a dead end.
        - That gives 21, not 24, so it fails.
        - No, that's incorrect.
        - This branch fails.
        - Nothing here gives 24.
        - There is no way to reach 24 from here.
        - Oh no, I forgot the negative root.
        - Wait, I forgot to carry the 1.
        - I think I missed a case.
        - This approach is not working.
        - Hmm, that's not matching the expected result.
        - I think I made an arithmetic slip.
        - Wait, I made a typo.
        - That was a wrong assumption.
        - My previous calculation was incorrect.
        - Hmm, this doesn't seem to lead anywhere.
        - Hmm, I think there's an error here.
        - There must be a mistake somewhere.
    Must not match:
        - Let me make sure I didn't make a mistake.
        - That's right, the sum is 24.
        - This works because 6 * 4 = 24.
        - The wrong answer choices are B and C.
        - We must not count 4 twice.
        - I made a table of the values.
        - We are not counting the empty set.
        - We neglect air resistance.
        - I forgot nothing.
        - The calculation is correct.
        - Each path leads to the goal.
        - There is an error term in the expansion.
    """
    subj = {"LOWER": {"IN": ["that", "this", "it", "which", "something"]}}
    be = {"NORM": {"IN": ["is", "'s", "was", "seems", "must", "looks"]}}
    adverb = {
        "LOWER": {"IN": ["quite", "entirely", "exactly", "really", "totally", "necessarily"]},
        "OP": "?",
    }
    verdict = {
        "LOWER": {"IN": ["right", "correct", "possible", "valid", "true", "working", "matching"]}
    }
    bad = {"LOWER": {"IN": ["wrong", "incorrect", "mistaken", "flawed", "faulty", "invalid"]}}
    return [
        [subj, be, {"LOWER": "be", "OP": "?"}, {"LOWER": "not"}, adverb, verdict],
        [
            subj,
            {"NORM": {"IN": ["might", "may", "would", "could", "will"]}},
            {"NORM": "not"},
            {"LOWER": "be"},
            adverb,
            verdict,
        ],
        [
            {"NORM": {"IN": ["does", "did", "do"]}},
            {"NORM": "not"},
            {"LEMMA": {"IN": ["seem", "look", "sound"]}},
            {"LOWER": "to", "OP": "?"},
            {"LOWER": "be", "OP": "?"},
            adverb,
            verdict,
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
            {"LOWER": {"IN": ["a", "an", "another", "some"]}},
            {"IS_ALPHA": True, "OP": "?"},
            {
                "LOWER": {
                    "IN": [
                        "mistake",
                        "mistakes",
                        "error",
                        "errors",
                        "miscalculation",
                        "slip",
                        "typo",
                        "blunder",
                        "oversight",
                    ]
                }
            },
        ],
        # "I'm not structuring this correctly."
        [
            {"LOWER": {"IN": ["'m", "am", "was", "'re", "are", "were"]}},
            {"LOWER": "not"},
            {"LOWER": {"REGEX": "ing$"}},
            {"LOWER": {"IN": ["this", "it", "that", "them"]}, "OP": "?"},
            {"LOWER": {"IN": ["correctly", "properly", "right"]}},
        ],
        [{"LOWER": {"IN": _ERROR_WORDS}}],
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
        # "I forgot the negative root", "I missed a case" (not "I forgot nothing").
        [
            {"LOWER": "i"},
            {"LOWER": {"IN": ["'ve", "have", "had"]}, "OP": "?"},
            {
                "LOWER": {
                    "IN": ["forgot", "forgotten", "missed", "overlooked", "neglected", "omitted"]
                }
            },
            {"LOWER": {"NOT_IN": ["nothing", "none", "anything"]}},
        ],
        # "There's an error here", "there must be a mistake" (not "an error term").
        [
            {"LOWER": "there"},
            {"NORM": {"IN": ["is", "'s", "must", "might", "may"]}},
            {"LOWER": "be", "OP": "?"},
            {"LOWER": {"IN": ["a", "an", "some"]}},
            {"IS_ALPHA": True, "OP": "?"},
            {"LOWER": {"IN": ["mistake", "error", "slip", "typo", "flaw", "miscalculation"]}},
            {"LOWER": {"NOT_IN": ["term", "terms", "bound", "function", "of", "rate"]}},
        ],
        # "That was a wrong assumption."; "My previous calculation was incorrect."
        [subj, be, {"LOWER": {"IN": ["a", "an"]}}, bad],
        [
            {
                "LOWER": {
                    "IN": [
                        "calculation",
                        "calculations",
                        "computation",
                        "assumption",
                        "reasoning",
                        "logic",
                        "count",
                        "step",
                        "steps",
                        "answer",
                        "result",
                        "conclusion",
                    ]
                }
            },
            {"NORM": {"IN": ["is", "'s", "was", "were", "are"]}},
            bad,
        ],
        # "This doesn't seem to lead anywhere", "that leads nowhere".
        [
            {"LEMMA": {"IN": ["lead", "go", "get"]}},
            {"LOWER": "us", "OP": "?"},
            {"LOWER": {"IN": ["anywhere", "nowhere"]}},
        ],
        # "This approach is not working."
        [
            {"LOWER": {"IN": ["approach", "method", "idea", "attempt", "strategy", "path"]}},
            {"NORM": {"IN": ["is", "'s", "was"]}},
            {"NORM": "not"},
            {"LOWER": {"IN": ["working", "helping", "leading"]}},
        ],
    ]


_SEEM = ["seems", "seemed", "looks", "looked", "sounds", "feels"]


@rule("backtracking")
def doubt_result():
    """The writer doubts a result: finds it implausible, or in conflict with another result.

    A result called implausible ("that seems too big") or contradicted ("a contradiction",
    "two different results") is treated as declared wrong: the writer re-opens the step that
    produced it.

    Must match:
        - Wait, that seems too big.
        - Hmm, that seems quite a lot.
        - But that seems off because the answer should be an integer.
        - That looks a bit high.
        - Which seems unlikely, since the sum is small.
        - This is a contradiction.
        - Again, a contradiction.
        - That's a discrepancy.
        - But that's conflicting with our earlier result.
        - Now I'm getting two different results.
        - This is getting too convoluted.
        - But that would mean the coefficient depends on c.
        - But then that would make the sum negative.
        - I'm not sure if that's the right approach here.
        - I'm not sure that this is correct.
        - But that seems complicated.
    Must not match:
        - We prove it by contradiction.
        - Suppose, for contradiction, that x is odd.
        - The result seems right.
        - The number is large, so we use logarithms.
        - Two different colours are used.
        - That would mean 3 * 8 = 24, as required.
        - I'm not sure yet which formula to use.
        - The next part seems complicated, so let me set it up first.
    """
    seem = {"LOWER": {"IN": _SEEM}}
    return [
        [
            seem,
            {
                "LOWER": {
                    "IN": [
                        "off",
                        "odd",
                        "strange",
                        "weird",
                        "suspicious",
                        "fishy",
                        "unlikely",
                        "implausible",
                        "wrong",
                        "incorrect",
                        "inconsistent",
                        "contradictory",
                        "conflicting",
                    ]
                }
            },
        ],
        [
            seem,
            {"LOWER": "a", "OP": "?"},
            {"LOWER": {"IN": ["too", "quite", "bit", "rather", "way", "really", "very"]}},
            {"LOWER": {"IN": ["a", "too"]}, "OP": "?"},
            {
                "LOWER": {
                    "IN": ["big", "large", "high", "low", "small", "much", "many", "few", "lot"]
                }
            },
        ],
        [
            {"LOWER": {"IN": ["a", "another", "this", "that"]}},
            {"LOWER": {"IN": ["contradiction", "discrepancy", "inconsistency"]}},
        ],
        [
            {"LOWER": {"IN": ["is", "'s", "are", "was"]}},
            {"LOWER": {"IN": ["conflicting", "contradictory", "inconsistent"]}},
        ],
        [{"LOWER": {"IN": ["conflicts", "contradicts"]}}],
        [
            {"LOWER": "two"},
            {"LOWER": "different"},
            {"LOWER": {"IN": ["results", "answers", "values"]}},
        ],
        [
            {"LOWER": "getting"},
            {"LOWER": {"IN": ["too", "very", "really", "quite"]}, "OP": "?"},
            {"LOWER": {"IN": ["convoluted", "complicated", "messy", "tedious", "confusing"]}},
        ],
        # An objection drawn from a consequence: "But that would mean ...".
        [
            {"LOWER": "but"},
            {"LOWER": "then", "OP": "?"},
            {"IS_PUNCT": True, "OP": "?"},
            {"LOWER": {"IN": ["that", "this", "it"]}},
            {"LOWER": {"IN": ["would", "'d", "means", "implies"]}},
            {"LOWER": {"IN": ["mean", "make", "give", "imply", "require"]}, "OP": "?"},
        ],
        # Doubt whether a result or approach is right: "I'm not sure if that's right".
        [
            {"LOWER": {"IN": ["not", "n't"]}},
            {"LOWER": {"IN": ["sure", "certain", "convinced"]}},
            {"LOWER": {"IN": ["if", "whether", "that"]}},
            {"LOWER": {"IN": ["that", "this", "it", "my", "the", "i"]}},
            {"OP": "?"},
            {"OP": "?"},
            {"OP": "?"},
            {"LOWER": {"IN": ["right", "correct", "valid", "accurate"]}},
        ],
        # An approach judged too hard to finish: "But that seems complicated."
        [
            {"LOWER": {"IN": ["that", "this", "it"]}},
            {"LOWER": {"IN": _SEEM}},
            {"LOWER": {"IN": ["too", "very", "really", "quite", "overly"]}, "OP": "?"},
            {"LOWER": {"IN": ["complicated", "messy", "tedious", "convoluted", "complex"]}},
            {"ORTH": {"IN": [".", "!"]}},
        ],
    ]


@rule("backtracking")
def switch_approach():
    """The writer leaves the current path: goes back, starts over, or takes another approach.

    Must match:
        - Let me try a different approach.
        - Hmm, maybe I should try a different substitution.
        - Let's try another way.
        - Maybe I should use another method instead.
        - Let me go back to the first equation.
        - I'll start over with the factorization.
        - Let me reconsider the problem.
        - Let me re-examine the second step.
        - Let me think again.
        - Instead, let's try 25 - 5 = 20.
        - Let me backtrack.
        - On second thought, the base case is n = 1.
        - I'll try something else.
        - Back up.
        - Return to 3 7.
        - Back to room B.
        - Perhaps I need to think about it differently.
        - Let me just stick with my original calculation.
        - Maybe it's better to stick to the first method.
    Must not match:
        - The approach works for every n.
        - We go on to the next term.
        - A different base gives the same result.
        - Back substitution gives x = 2.
        - Return the largest value.
        - The terms stick together.
        - Each part behaves differently.
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
                "substitution",
                "technique",
                "formula",
                "angle",
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
                        "reevaluate",
                        "reexamine",
                        "backtrack",
                        "revisit",
                        "redo",
                        "retry",
                    ]
                }
            },
        ],
        # The same, hyphenated: "let me re-examine", split by the tokenizer into "re", "-", ...
        [
            {"LOWER": {"IN": ["let", "i", "we"]}},
            {"LOWER": {"IN": ["me", "us", "'ll", "should", "need"]}, "OP": "?"},
            {"LOWER": "to", "OP": "?"},
            {"LOWER": "re"},
            {"ORTH": "-"},
            {"LOWER": {"IN": ["consider", "think", "evaluate", "examine", "visit", "do", "try"]}},
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
            {"LEMMA": {"IN": ["think", "approach", "look", "try"]}},
            {"LOWER": {"IN": ["about", "of", "at"]}, "OP": "?"},
            {"LOWER": {"IN": ["it", "this", "that"]}, "OP": "?"},
            {"LOWER": "differently"},
        ],
        # Returning to an earlier path after exploring another: "stick with the first method".
        [
            {"LEMMA": "stick"},
            {"LOWER": {"IN": ["with", "to"]}},
            {"LOWER": {"IN": ["the", "my", "our"]}, "OP": "?"},
            {"LOWER": {"IN": ["first", "original", "initial", "earlier", "previous"]}},
        ],
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


RULES = (stop_interjection, self_correction, error_admission, doubt_result, switch_approach)
