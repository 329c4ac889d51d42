"""The tagger on long runs without white space: same text and offsets, ordinary text unchanged."""

from __future__ import annotations

import random

import pytest

from sftlens.trace_tagger._pipeline import MAX_RUN_CHARS, build_nlp


@pytest.fixture(scope="module")
def nlp():
    return build_nlp()


@pytest.fixture(scope="module")
def stock():
    """The same pipeline with spaCy's own suffix search and tokenizer."""
    from spacy.util import compile_suffix_regex

    fresh = build_nlp()
    tok = fresh.tokenizer.tokenizer
    tok.suffix_search = compile_suffix_regex([*fresh.Defaults.suffixes, r"(?<=^[A-Za-z])\."]).search
    return tok


def test_long_runs_keep_the_text_and_offsets(nlp):
    rng = random.Random(0)
    parts = ["(", ")", " ", "\n", "  ", "Wait,", "x" * (MAX_RUN_CHARS + 7), "[[[", "\t", "é",
             "\U0001f600", "..."]  # fmt: skip
    for _ in range(200):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(0, 80)))
        doc = nlp.make_doc(text)
        assert doc.text == text
        assert all(text[t.idx : t.idx + len(t)] == t.text for t in doc)


def test_ordinary_text_tokenizes_as_spacy_does(nlp, stock):
    from sftlens.tasks import get_task

    task = get_task("countdown")
    texts = [task.render(p, "cot", i)["response"] for i, p in enumerate(task.generate(20, seed=0))]
    texts += ["km/h 5km/h 12kg... wait..... x.", "(7-3)*5+2 = 22; [3, 5, 7] {a: 1}"]
    for text in texts:
        assert [t.text for t in nlp.make_doc(text)] == [t.text for t in stock(text)]


def test_spans_after_a_bracket_run_keep_their_offsets():
    from sftlens.trace_tagger import RULESET_ID
    from sftlens.trace_tagger._tagger import get_tagger

    run = "(" * 5000 + ")" * 5000
    text = run + " Wait, that is not right. Let me go back and try 7*3."
    tags = get_tagger(RULESET_ID).tag(text)
    spans = [s for s in tags["spans"] if s["label"] == "backtracking"]
    assert spans and all(s["start"] >= len(run) for s in spans)
    assert all(text[s["start"] : s["end"]] == s["text"] for s in tags["spans"])
