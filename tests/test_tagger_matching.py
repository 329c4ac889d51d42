"""Anchored matching finds exactly what one plain spaCy Matcher per sentence finds."""

from __future__ import annotations

import numpy as np
import pytest
from spacy.matcher import Matcher

from sftlens.trace_tagger import RULESET_ID, Tagger
from sftlens.trace_tagger._matching import _reach, anchor_words
from sftlens.trace_tagger._rules import RULESETS, rule_examples
from sftlens.trace_tagger._tagger import _resolve

TEXT = (
    "Wait, that's not right. Let me go back to 3 7. Hmm, maybe 5? I need to find x first. "
    "Working backwards, to get 24 I need 4. Let me verify: 4*6=24, which matches 24. "
    "Yes, correct. 2*19=38, no. Plugging it back in gives 0. Hold on, this branch fails.\n"
    "Alternatively, let me try a different approach. That doesn't work. I made a mistake. "
    "Is S the goal? No. Reached P. S->P exists. Let me double-check the sum. Found 24."
)


def test_anchor_is_a_required_rare_token():
    forms = {"check": {"check", "checks", "checked", "checking"}}
    pat = [{"LOWER": "let"}, {"LOWER": "me", "OP": "?"}, {"LEMMA": "check"}]
    assert anchor_words(pat, forms) == frozenset({"check", "checks", "checked", "checking"})
    assert anchor_words([{"IS_PUNCT": True}], forms) is None
    # A comma is everywhere: a rarer word anchors the pattern even if it is longer.
    assert anchor_words([{"ORTH": ","}, {"LOWER": "too"}], forms) == frozenset({"too"})


def test_reach_counts_the_widest_match_around_the_anchor():
    pat = [{"LOWER": "a"}, {"OP": "?"}, {"LOWER": "b"}, {"OP": "{1,3}"}, {"LOWER": "c"}]
    assert _reach(pat, 2) == (2, 4)
    assert _reach(pat, 0) == (0, 6)
    assert _reach([{"LOWER": "a"}, {"OP": "*"}, {"LOWER": "b"}], 0)[1] >= 1 << 30


def _examples_text() -> str:
    """Every rule's must and must-not examples, one per line: each pattern's hits and near misses."""
    lines = []
    for r in RULESETS.get(RULESET_ID):
        must, must_not = rule_examples(r)
        lines += must + must_not
    return "\n".join(lines)


@pytest.mark.parametrize("text", [TEXT, _examples_text()], ids=["mixed", "rule examples"])
def test_anchored_matches_equal_plain_matcher(text):
    tagger = Tagger()
    plain = Matcher(tagger.nlp.vocab)
    for r in tagger.rules:
        pats = [p for p in r.patterns() if not isinstance(p, str)]
        if pats:
            plain.add(r.key, pats, greedy="LONGEST")
    by_key = {r.key: r for r in tagger.rules}
    doc = tagger.nlp(text)
    sent_starts = np.array([sent.start for sent in doc.sents])
    ref = []
    for k, sent in enumerate(doc.sents):
        for span in plain(sent, as_spans=True):
            ref.append((span.start_char, span.end_char, by_key[span.label_], k))
    lower = doc.to_array(["LOWER"])
    ours = [
        (span.start_char, span.end_char, by_key[span.label_],
         int(np.searchsorted(sent_starts, span.start, side="right") - 1))
        for span in tagger.matcher(doc, lower, sent_starts)
    ]  # fmt: skip
    # The same spans once overlapping repeats of a rule and yields are resolved, as the tagger does.
    assert _resolve(ours) == _resolve(ref)
    assert len(_resolve(ref)) > 20
    # And the tagger's output holds them (context rules and phrases may add more).
    tagged = {(sp["start"], sp["end"], sp["rule"]) for sp in tagger.tag(text)["spans"]}
    assert {(s, e, r.name) for s, e, r, _ in _resolve(ref)} <= tagged
