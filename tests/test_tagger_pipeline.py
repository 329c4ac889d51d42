"""The pipeline, segmentation and the Tags contract on awkward inputs."""

from __future__ import annotations

import json

import pytest

from sftlens.trace_tagger import LABELS, RULESET_ID, Tagger, verbosity
from sftlens.trace_tagger._pipeline import build_nlp, segment
from sftlens.trace_tagger._verbosity import METRICS

TRACE = (
    "<think>\nNumbers: 3 5 7. Target: 22.\nTry 7*3=21, leaving 21 5.\n21+5=26, too big.\n"
    "Wait, that's not right. Let me go back.\n\nFirst, I need to find a product near 22.\n"
    "Check: (7-3)*5+2 = 22. Correct.\n</think>\n<answer>(7-3)*5+2</answer>"
)


@pytest.fixture(scope="module")
def tagger():
    return Tagger()


def _check_contract(text: str, tags: dict) -> None:
    assert tags["ruleset"] == RULESET_ID
    assert set(tags["counts"]) == set(LABELS)
    assert set(tags["verbosity"]) == set(METRICS)
    for sp in tags["spans"]:
        assert set(sp) == {"start", "end", "label", "rule", "text", "sentence"}
        assert text[sp["start"] : sp["end"]] == sp["text"]
        assert sp["label"] in LABELS
    json.dumps(tags)  # serialisable


def test_segment_offsets_are_exact_and_bounded():
    text = "<think>\n  a b.\n\nc d\n</think>\nanswer " + "word " * 3000
    pieces = segment(text, max_chars=1000)
    assert all(e - s <= 1000 for s, e in pieces)
    assert all(not text[s].isspace() and not text[e - 1].isspace() for s, e in pieces)
    assert "<think>" not in "".join(text[s:e] for s, e in pieces)
    # Every non-space character outside the tags lands in exactly one piece.
    kept = sum(len(text[s:e].replace(" ", "").replace("\n", "")) for s, e in pieces)
    assert kept == len(text.replace("<think>", "").replace("</think>", "").replace(" ", "")
                       .replace("\n", ""))  # fmt: skip


def test_sentencizer_agrees_with_spacy_and_splits_lines():
    import spacy

    text = 'So x = 3. Then "y" is 4! Is it? Yes (I think). Done'
    ref = spacy.blank("en")
    ref.add_pipe("sentencizer")
    ours = build_nlp()
    assert [s.text for s in ours(text).sents] == [s.text for s in ref(text).sents]
    assert [s.text.strip() for s in ours("step one\nstep two\n\nstep three").sents] == [
        "step one", "step two", "step three",
    ]  # fmt: skip


def test_lemmatizer_agrees_with_spacy_lookup_lemmatizer():
    import spacy

    text = "verified rechecking the numbers she substituted and tried plugging in values"
    ref = spacy.blank("en")
    ref.add_pipe("lemmatizer", config={"mode": "lookup"})
    ref.initialize()
    assert [t.lemma_ for t in build_nlp()(text)] == [t.lemma_ for t in ref(text)]
    # Sentence-initial capitals still get their lemma.
    assert build_nlp()("Verified.")[0].lemma_ == "verify"


def test_trace_spans_sentences_and_counts(tagger):
    tags = tagger.tag(TRACE)
    _check_contract(TRACE, tags)
    labels = {sp["label"] for sp in tags["spans"]}
    assert {"backtracking", "verification", "subgoal_setting"} <= labels
    sentences = [sp["sentence"] for sp in tags["spans"]]
    assert sentences == sorted(sentences)
    assert tags["counts"]["backtracking"] == 1  # "Wait, that's not right. Let me go back."?
    back = [sp for sp in tags["spans"] if sp["label"] == "backtracking"]
    assert {sp["rule"] for sp in back} >= {"stop_interjection", "error_admission"}


def test_empty_and_none_give_an_empty_result(tagger):
    for text in ("", None, "   \n\n  ", "<think></think>"):
        tags = tagger.tag(text)
        assert tags["spans"] == [] and all(v == 0 for v in tags["counts"].values())
        assert tags["verbosity"]["tokens"] == 0


def test_invalid_utf8_bytes_and_lone_surrogates(tagger):
    raw = b"Wait, \xff\xfe that's wrong."
    tags = tagger.tag(raw)
    text = raw.decode("utf-8", errors="replace")
    _check_contract(text, tags)
    assert tags["counts"]["backtracking"] == 1
    lone = "Wait, \ud800 that's wrong."
    tags = tagger.tag(lone)
    assert [sp["start"] for sp in tags["spans"]] == [0, 8]
    json.dumps(tags, ensure_ascii=False).encode("utf-8")


def test_one_megabyte_trace_keeps_every_span(tagger):
    work = "Compute 3 + 4 = 7 and then 7 * 6 = 42, so the running total is 42.\n" * 8
    unit = work + "Wait, that's not right. Let me verify the sum.\n\n"
    text = unit * (1_000_000 // len(unit) + 1)
    tags = tagger.tag(text)
    _check_contract(text, tags)
    n = text.count(unit)
    assert tags["counts"]["backtracking"] == n
    assert tags["counts"]["verification"] == n
    assert tags["verbosity"]["repeated_4gram_ratio"] > 0.99
    assert tags["verbosity"]["sentences"] == 10 * n


def test_tag_many_equals_tag_and_is_deterministic(tagger):
    texts = [TRACE, "", "Hmm, maybe 5?", TRACE.upper(), None]
    many = list(tagger.tag_many(texts, batch_size=2))
    assert many == [tagger.tag(t) for t in texts]
    assert many == list(Tagger().tag_many(texts))


def test_verbosity_definitions():
    plain = verbosity("The sum is 4. The product is 3. We are done here.")
    assert plain["tokens"] == 15 and plain["words"] == 12 and plain["sentences"] == 3
    assert plain["words_per_sentence"] == 4
    assert plain["repeated_4gram_ratio"] == 0 and plain["restatement_share"] == 0
    rep = verbosity("The total sum equals nine apples. " * 10)
    assert rep["restatement_share"] == pytest.approx(0.9)
    assert rep["compression_ratio"] > plain["compression_ratio"]
    assert rep["distinct_1"] < plain["distinct_1"]
    chatty = verbosity("Okay, wait. Hmm, maybe. Hold on, basically it works.")
    assert chatty["wait_per_1k"] == pytest.approx(1000 * 3 / chatty["tokens"])
    assert chatty["filler_per_1k"] == pytest.approx(1000 * 2 / chatty["tokens"])
    assert chatty["hedge_per_1k"] == pytest.approx(1000 * 1 / chatty["tokens"])
