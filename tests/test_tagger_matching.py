"""Anchored matching finds exactly what one plain spaCy Matcher per sentence finds."""

from __future__ import annotations

import numpy as np
from spacy.matcher import Matcher

from sftlens.trace_tagger import Tagger
from sftlens.trace_tagger._matching import anchor_words
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


def test_anchored_matches_equal_plain_matcher():
    tagger = Tagger()
    plain = Matcher(tagger.nlp.vocab)
    for r in tagger.rules:
        pats = [p for p in r.patterns() if not isinstance(p, str)]
        if pats:
            plain.add(r.key, pats, greedy="LONGEST")
    by_key = {r.key: r for r in tagger.rules}
    doc = tagger.nlp(TEXT)
    ref = []
    for k, sent in enumerate(doc.sents):
        for span in plain(sent, as_spans=True):
            ref.append((span.start_char, span.end_char, by_key[span.label_], k))
    ours = tagger.tag(TEXT)["spans"]
    expected = [(s, e, r.label, r.name, k) for s, e, r, k in _resolve(ref)]
    assert [(sp["start"], sp["end"], sp["label"], sp["rule"], sp["sentence"]) for sp in ours] == (
        expected
    )
    assert len(expected) > 20
    assert np.all(np.diff([sp["start"] for sp in ours]) >= 0)
