"""Countdown traces: ground truth proven on 1,000 problems, and the four styles do what they say."""

from __future__ import annotations

import re
from fractions import Fraction
from functools import cache

import pytest

from sftlens.core import ConfigError, DataError
from sftlens.tasks import get_task, is_dead_end, solve_countdown, verify_countdown
from sftlens.tasks._countdown_trace import BACK, FINAL, HIT, MISS
from sftlens.tasks._countdown_verify import evaluate


@cache
def _values(state: tuple[Fraction, ...]) -> frozenset[Fraction]:
    """Every value an expression over `state` (each number once) can take: split the multiset
    into two parts every way and combine their value sets. Independent of the solver's search."""
    if len(state) == 1:
        return frozenset(state)
    out: set[Fraction] = set()
    n = len(state)
    for mask in range(1, 2**n - 1):
        left = tuple(sorted(state[i] for i in range(n) if mask >> i & 1))
        right = tuple(sorted(state[i] for i in range(n) if not mask >> i & 1))
        for a in _values(left):
            for b in _values(right):
                out.update((a + b, a - b, a * b))
                if b:
                    out.add(a / b)
    return frozenset(out)


def _reference_dead(state, target) -> bool:
    return Fraction(target) not in _values(tuple(sorted(Fraction(x) for x in state)))


@pytest.fixture(scope="module")
def problems():
    return get_task("countdown").generate(1000, seed=7)


def test_ground_truth_on_1000_problems(problems):
    """Every cot and nocot answer verifies, every backtrack leaves a true dead end, every
    verification states a true fact, every step's arithmetic and dead-end label are right."""
    task = get_task("countdown")
    n_back = n_verify = n_steps = 0
    for p in problems:
        numbers, target = p["meta"]["numbers"], p["meta"]["target"]
        assert verify_countdown(p["answer"], numbers, target)["correct"]
        for style in ("cot", "nocot"):
            ex = task.render(p, style, seed=1)
            assert task.score(p, ex["response"])["correct"], (style, ex["response"])
        ex = task.render(p, "cot", seed=1)
        text = ex["response"]
        for ev in ex["events"]:
            piece = text[ev["start"] : ev["end"]]
            assert piece and piece == piece.strip()
            if ev["type"] == "step":
                n_steps += 1
                lhs, rhs = ev["expr"].split("=")
                assert ev["expr"] in piece
                assert evaluate(lhs)[0] == Fraction(rhs)  # the arithmetic is true
                assert int(rhs) == ev["state"][0]
                assert ev["dead_end"] == _reference_dead(ev["state"], target)
            elif ev["type"] == "backtrack":
                n_back += 1
                assert ev["dead_end"] is True
                assert _reference_dead(ev["from_state"], target), (ev, text)
            elif ev["type"] == "verify":
                n_verify += 1
                value = evaluate(ev["expr"])[0]
                assert value == Fraction(ev["value"])  # the stated value is the true value
                assert ev["holds"] == (value == target) and ev["target"] == target
                assert ev["expr"] in piece
                # What the sentence says about the target is what holds.
                negated = re.search(r"\b(not|no|misses|too)\b", piece) is not None
                assert negated == (not ev["holds"]), piece
            else:
                raise AssertionError(ev["type"])
        # The trace ends with a verification of its own answer.
        assert ex["events"][-1]["type"] == "verify" and ex["events"][-1]["holds"]
    assert n_back > 1000 and n_verify > 3000 and n_steps > 3000


def test_cot_traces_backtrack_and_stay_short(problems):
    task = get_task("countdown")
    words, with_back = [], 0
    for p in problems[:300]:
        ex = task.render(p, "cot", seed=0)
        words.append(len(ex["response"].split()))
        with_back += any(e["type"] == "backtrack" for e in ex["events"])
    words.sort()
    assert with_back >= 0.9 * len(words)  # almost every problem shows a dead end
    assert 40 <= words[len(words) // 2] <= 150 and words[-1] <= 300


def test_cot_wording_varies(problems):
    """At least five phrasings each for backtracking and checking appear in real traces, so no
    single template identifies a move."""
    task = get_task("countdown")
    texts = "\n".join(task.render(p, "cot", seed=2)["response"] for p in problems[:300])
    assert len(BACK) >= 5 and len(MISS) + len(HIT) + len(FINAL) >= 10

    def used(templates):
        # A template matches when its fixed words appear with anything in its placeholders.
        pats = [re.escape(re.sub(r"\{\w+\}", "\x00", t)).replace("\x00", ".+?") for t in templates]
        return sum(re.search(pat, texts) is not None for pat in pats)

    assert used(BACK) >= 5 and used(FINAL) >= 5 and used(MISS) >= 5


def test_render_is_deterministic_and_seeded(problems):
    task = get_task("countdown")
    p = problems[5]
    assert task.render(p, "cot", seed=3) == task.render(p, "cot", seed=3)
    differ = sum(
        task.render(q, "cot", seed=3)["response"] != task.render(q, "cot", seed=4)["response"]
        for q in problems[:20]
    )
    assert differ >= 10


def test_nocot_is_the_answer_only(problems):
    ex = get_task("countdown").render(problems[0], "nocot", seed=0)
    assert re.fullmatch(r"<answer>[0-9+\-*/()]+</answer>", ex["response"])
    assert ex["events"] == [] and ex["style"] == "nocot"


def test_lowq_error_rate_is_measured_and_follows_the_knob(problems):
    task = get_task("countdown")
    wrong, kinds = 0, set()
    for p in problems:
        ex = task.render(p, "lowq", seed=0)
        ok = task.score(p, ex["response"])["correct"]
        error = ex["meta"]["render"]["lowq_error"]
        assert ok == (error is None)
        wrong += not ok
        kinds.add(error)
        # Sloppy: no checks and no backtracking, only steps.
        assert {e["type"] for e in ex["events"]} == {"step"}
        if error == "false_claim":
            assert not ex["events"][-1]["arith_ok"] and ex["events"][-1]["state"] == [
                p["meta"]["target"]
            ]
    rate = wrong / len(problems)
    assert 0.25 <= rate <= 0.35, rate  # default 0.3
    assert kinds == {None, "near_miss", "false_claim"}
    clean = sum(
        task.score(p, task.render(p, "lowq", seed=0, lowq_error_rate=0.0)["response"])["correct"]
        for p in problems[:100]
    )
    assert clean == 100


def test_verbose_is_length_matched_without_procedure(problems):
    task = get_task("countdown")
    ratios = []
    back_words = re.compile(
        r"back|dead|check|verif|correct|wrong|try|fail|match|works|yes|\bno\b|=", re.I
    )
    for p in problems[:200]:
        cot = task.render(p, "cot", seed=0)
        verbose = task.render(p, "verbose", seed=0)
        assert task.score(p, verbose["response"])["correct"]
        assert verbose["events"] == []
        think = verbose["response"].split("</think>")[0]
        assert back_words.search(think) is None, think
        ratios.append(len(verbose["response"].split()) / len(cot["response"].split()))
    assert min(ratios) >= 0.9 and max(ratios) <= 1.35
    assert sum(ratios) / len(ratios) == pytest.approx(1.0, abs=0.1)


def test_hard_variant_has_more_numbers_and_verified_traces():
    task = get_task("countdown-hard")
    problems = task.generate(15, seed=0, split="eval")
    assert all(5 <= len(p["meta"]["numbers"]) <= 6 for p in problems)
    assert all(p["task"] == "countdown-hard" for p in problems)
    for p in problems:
        ex = task.render(p, "cot", seed=0)
        assert task.score(p, ex["response"])["correct"]
        assert all(e["dead_end"] for e in ex["events"] if e["type"] == "backtrack")


def test_solver_and_dead_end_oracle():
    assert verify_countdown(solve_countdown([3, 5, 7, 2], 22), [3, 5, 7, 2], 22)["correct"]
    # Needs a fractional intermediate: no whole-number solution exists.
    expr = solve_countdown([1, 3, 4, 6], 24)
    assert expr is not None and verify_countdown(expr, [1, 3, 4, 6], 24)["correct"]
    assert solve_countdown([1, 1], 100) is None
    assert is_dead_end([1, 1], 100) and not is_dead_end([4, 5, 2], 22)
    assert is_dead_end([24, 5], 24)  # 24 is there, but 5 must be used too
    assert is_dead_end([], 3)
    with pytest.raises(ValueError, match="larger than"):
        is_dead_end(list(range(1, 10)), 3)


def test_render_rejects_bad_style_and_knobs(problems):
    task = get_task("countdown")
    with pytest.raises(ConfigError, match="known: cot, nocot, lowq, verbose"):
        task.render(problems[0], "long", seed=0)
    with pytest.raises(ConfigError, match="lowq_error_rate"):
        task.render(problems[0], "lowq", seed=0, lowq_error_rate=1.5)
    with pytest.raises(ConfigError, match="max_expansions"):
        task.render(problems[0], "cot", seed=0, max_expansions=-1)


def test_render_of_unsolvable_or_malformed_problems_is_a_data_error():
    task = get_task("countdown")
    bad = {
        "id": "x1",
        "task": "countdown",
        "prompt": "",
        "meta": {"numbers": [1, 1], "target": 100},
    }
    for style in ("cot", "lowq", "verbose", "nocot"):
        with pytest.raises(DataError, match="'x1'.*cannot make 100"):
            task.render(bad, style, seed=0)
    # Solvable only through a fraction: fine as nocot, refused for the search styles.
    frac = {
        "id": "x2",
        "task": "countdown",
        "prompt": "",
        "meta": {"numbers": [1, 3, 4, 6], "target": 24},
    }
    assert task.score(frac, task.render(frac, "nocot", seed=0)["response"])["correct"]
    with pytest.raises(DataError, match="whole-number steps"):
        task.render(frac, "cot", seed=0)
    with pytest.raises(DataError, match="needs meta.numbers"):
        task.render({"id": "x3", "meta": {"numbers": "abc"}}, "cot", seed=0)
    with pytest.raises(DataError, match="needs meta.numbers"):
        task.score({"id": "x4"}, "<answer>1</answer>")
