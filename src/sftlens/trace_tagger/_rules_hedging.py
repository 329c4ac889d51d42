"""Hedging: uncertainty without a change of course.

The writer signals doubt ("maybe", "I'm not sure", "hmm") but carries on; a sentence that also
backtracks is counted as backtracking only.
"""

from __future__ import annotations

from sftlens.trace_tagger._rules import rule


@rule("hedging", yields_to=("backtracking",))
def uncertainty_marker():
    """The writer signals doubt about what they are doing.

    Must match:
        - Hmm, the constraint is odd.
        - Maybe the answer is 12.
        - I'm not sure this is the right formula.
        - Perhaps the question means the radius.
        - I wonder if the sequence is periodic.
        - This is confusing.
        - It might be 7, I guess.
        - I'm not entirely sure about this.
        - This might be the right idea.
    Must not match:
        - The answer is 12.
        - I am sure the sum is 10.
        - x might be negative.
    """
    return [
        [
            {
                "IS_SENT_START": True,
                "LOWER": {"IN": ["hmm", "hmmm", "hm", "maybe", "perhaps", "possibly", "probably"]},
            }
        ],
        [
            {"LOWER": {"IN": ["not", "n't"]}},
            {"LOWER": {"IN": ["entirely", "quite", "totally", "completely", "really"]}, "OP": "?"},
            {"LOWER": {"IN": ["sure", "certain", "clear"]}},
        ],
        # "This might be the right idea" (doubt about the writer's own move, not "x might be
        # negative", a case of the math).
        [
            {"LOWER": {"IN": ["this", "that", "it"]}},
            {"LOWER": {"IN": ["might", "may", "could"]}},
            {"LOWER": {"IN": ["be", "work", "help"]}},
        ],
        [
            {
                "LOWER": {
                    "IN": [
                        "unsure",
                        "uncertain",
                        "confusing",
                        "confused",
                        "puzzling",
                        "unclear",
                        "ambiguous",
                    ]
                }
            }
        ],
        [{"LOWER": "i"}, {"LOWER": {"IN": ["wonder", "guess", "suspect"]}}],
        [
            {"LOWER": {"IN": ["might", "may"]}},
            {"LOWER": "be"},
            {
                "LOWER": {
                    "IN": ["wrong", "mistaken", "missing", "misunderstanding", "misinterpreting"]
                }
            },
        ],
    ]


@rule("hedging", yields_to=("backtracking", "verification"))
def self_question():
    """The writer asks themselves a question (a question mark inside a reasoning trace).

    Must match:
        - Is that allowed?
        - So, which one is correct?
        - Did I count 4 twice?
    Must not match:
        - The answer is 12.
    """
    return [[{"ORTH": {"IN": ["?"]}}]]


RULES = (uncertainty_marker, self_question)
