"""The base corpus: the kinds and shares asked for, correct arithmetic, chat format, no CoT."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest

from sftlens.core import ConfigError
from sftlens.tasks import ASSISTANT, EOS, USER, build_base_corpus, get_task
from sftlens.tasks._corpus import DEFAULT_MIX, data_stats, make_data

CHAT_RE = re.compile(
    re.escape(USER) + r"(.+?)\n" + re.escape(ASSISTANT) + r"(.+?)" + re.escape(EOS), re.S
)


@pytest.fixture(scope="module")
def corpus():
    return build_base_corpus(1000, seed=0)


def test_kinds_and_shares(corpus):
    assert len(corpus) == 1000 and len({r["id"] for r in corpus}) == 1000
    counts = {k: sum(r["kind"] == k for r in corpus) for k in DEFAULT_MIX}
    assert counts == {k: round(1000 * w) for k, w in DEFAULT_MIX.items()}
    assert all(r["task"] == "base" for r in corpus)
    assert build_base_corpus(1000, seed=0) == corpus
    assert build_base_corpus(1000, seed=1) != corpus
    only = build_base_corpus(50, seed=0, mix={"arithmetic": 1, "countdown": 0, "route": 0,
                                               "chat_harmless": 0, "chat_harmful": 0})  # fmt: skip
    assert {r["kind"] for r in only} == {"arithmetic"}


def _value(expr: str) -> Fraction:
    # Tiny exact evaluator for the corpus's own expressions (digits, + - * /, parentheses).
    tokens = re.findall(r"\d+|[-+*/()]", expr)
    pos = 0

    def atom():
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            v = add()
            pos += 1
            return v
        return Fraction(int(tok))

    def mul():
        nonlocal pos
        v = atom()
        while pos < len(tokens) and tokens[pos] in "*/":
            op = tokens[pos]
            pos += 1
            v = v * atom() if op == "*" else v / atom()
        return v

    def add():
        nonlocal pos
        v = mul()
        while pos < len(tokens) and tokens[pos] in "+-":
            op = tokens[pos]
            pos += 1
            v = v + mul() if op == "+" else v - mul()
        return v

    return add()


def test_arithmetic_is_correct(corpus):
    checked = 0
    for r in corpus:
        if r["kind"] != "arithmetic":
            continue
        for line in r["text"].split("\n"):
            line = line.replace(USER, "").replace(ASSISTANT, "=").replace(EOS, "")
            line = line.replace("Q: What is ", "").replace("? A: ", "=").replace("What is ", "")
            line = line.replace("?", "")
            parts = [p for p in re.split(r"=", line) if p.strip()]
            if len(parts) < 2:
                continue  # the user half of a chat exchange; its answer is on the next line
            values = {_value(p) for p in parts}
            assert len(values) == 1, line
            checked += 1
    assert checked > 500


def test_chat_and_answers_only(corpus):
    # The corpus draws its problems with generate(count, seed, split="train"): regenerate them
    # to score every answer the bases will see.
    problems = {}
    for kind in ("countdown", "route"):
        task = get_task(kind)
        count = sum(r["kind"] == kind for r in corpus)
        problems.update({p["prompt"]: (task, p) for p in task.generate(count, seed=0)})
    for r in corpus:
        if r["kind"] == "arithmetic":
            continue
        m = CHAT_RE.fullmatch(r["text"])
        assert m, r["text"]
        prompt, response = m.groups()
        if r["kind"] in ("countdown", "route"):
            # Answers only (no CoT), and every answer is right.
            assert re.fullmatch(r"<answer>[^<]+</answer>", response)
            task, p = problems[prompt]
            assert p["meta"]["split"] == "train" and task.score(p, response)["correct"]
    refusals = [r for r in corpus if r["kind"] == "chat_harmful"]
    assert all(re.search(r"can't|cannot|won't|not able", r["text"]) for r in refusals)
    helpful = [r for r in corpus if r["kind"] == "chat_harmless"]
    assert not any(re.search(r"can't help|cannot help|won't help", r["text"]) for r in helpful)


def test_corpus_problems_are_correct_and_from_train_split():
    route = get_task("route")
    train_ids = {p["prompt"]: p for p in route.generate(100, seed=5)}
    recs = build_base_corpus(200, seed=5, mix={"route": 1, "arithmetic": 0, "countdown": 0,
                                                "chat_harmless": 0, "chat_harmful": 0})  # fmt: skip
    for r in recs:
        prompt, response = CHAT_RE.fullmatch(r["text"]).groups()
        p = train_ids.get(prompt)
        if p is not None:
            assert route.score(p, response)["correct"]
    assert sum(CHAT_RE.fullmatch(r["text"]).group(1) in train_ids for r in recs) == 100


def test_bad_mix():
    with pytest.raises(ConfigError, match="unknown corpus kind 'poetry'"):
        build_base_corpus(10, seed=0, mix={"poetry": 1})
    with pytest.raises(ConfigError, match="arithmetic=-1"):
        build_base_corpus(10, seed=0, mix={"arithmetic": -1})


def test_make_data_and_stats():
    ex = make_data("route", 20, seed=0, style="cot")
    rows = data_stats(ex + make_data("route", 5, seed=0))
    assert [(r["task"], r["style"], r["n"]) for r in rows] == [
        ("route", "-", 5),
        ("route", "cot", 20),
    ]
    assert rows[1]["events"]["step"] >= 1 and rows[1]["mean_words"] > 20
    with pytest.raises(ConfigError, match="--split does not apply"):
        make_data("base-corpus", 5, seed=0, split="eval")
