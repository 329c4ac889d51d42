"""The route task: solvable distinct problems, disjoint splits, traces whose ground truth is true."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftlens.core import ConfigError
from sftlens.tasks import get_task
from sftlens.tasks._route import reaches_goal, split_of


@pytest.fixture(scope="module")
def task():
    return get_task("route")


@pytest.fixture(scope="module")
def problems(task):
    # Mixed sizes, so the proof covers small and large graphs.
    return (
        task.generate(400, seed=0)
        + task.generate(300, seed=1, n_nodes=4)
        + task.generate(300, seed=2, n_nodes=8)
    )


def _edge_set(p):
    return {tuple(e) for e in p["meta"]["edges"]}


def test_problems_are_distinct_solvable_and_have_dead_ends(problems, task):
    assert len(problems) == 1000
    assert len({p["id"] for p in problems}) == 1000
    for p in problems:
        meta = p["meta"]
        assert p["task"] == "route" and meta["split"] == "train"
        assert task.score(p, f"<answer>{p['answer']}</answer>")["correct"]
        reach = reaches_goal(meta)
        assert reach[meta["start"]]
        assert not all(reach.values()), "every problem has at least one dead-end node"
        assert all(f"{u}->{v}" in p["prompt"] for u, v in meta["edges"])


def test_every_trace_on_1000_problems_is_true(problems, task):
    n_backtracks = 0
    for i, p in enumerate(problems):
        meta, edges = p["meta"], _edge_set(p)
        reach = reaches_goal(meta)
        for style in ("cot", "nocot"):
            ex = task.render(p, style, seed=i)
            assert task.score(p, ex["response"])["correct"], (style, ex["response"])
        ex = task.render(p, "cot", seed=i)
        text = ex["response"]
        assert 20 <= len(text.split()) <= 260
        prev_end = -1
        for ev in ex["events"]:
            assert 0 <= ev["start"] < ev["end"] <= len(text) and ev["start"] >= prev_end
            prev_end = ev["end"]
            span = text[ev["start"] : ev["end"]]
            if ev["type"] == "step":
                assert ev["node"] in span
                assert ev["dead_end"] == (not reach[ev["node"]])
                path = ev["state"].split("-")
                assert all(e in edges for e in zip(path, path[1:], strict=False))
            elif ev["type"] == "backtrack":
                # Every backtrack leaves a true dead end: the goal is unreachable from it.
                assert ev["dead_end"] is True and not reach[ev["node"]]
                assert ev["node"] in span and ev["to"] in span
                assert ev["to_state"] == ev["from_state"].rsplit("-", 1)[0]
                n_backtracks += 1
            elif ev["type"] == "verify":
                # Every verification states a true fact about the graph.
                if ev["check"] == "goal":
                    assert ev["holds"] == (ev["node"] == meta["goal"])
                    assert ("No" in span or "not" in span) == (not ev["holds"])
                else:
                    assert ev["check"] == "edge"
                    assert ev["holds"] == ((ev["src"], ev["dst"]) in edges) and ev["holds"]
                    assert ev["src"] in span and ev["dst"] in span
            else:
                raise AssertionError(ev)
    assert n_backtracks > 300, "the search backtracks on a good share of problems"


def test_styles_differ_as_designed(problems, task):
    lowq_wrong = 0
    for i, p in enumerate(problems[:300]):
        cot = task.render(p, "cot", seed=i)
        verbose = task.render(p, "verbose", seed=i)
        lowq = task.render(p, "lowq", seed=i)
        assert task.score(p, verbose["response"])["correct"] and verbose["events"] == []
        n_cot, n_verbose = len(cot["response"].split()), len(verbose["response"].split())
        assert n_cot <= n_verbose <= n_cot + 30
        assert not any(e["type"] in ("verify", "backtrack") for e in lowq["events"])
        got = task.score(p, lowq["response"])
        lowq_wrong += not got["correct"]
        assert (lowq["meta"]["render"]["lowq_error"] is None) == got["correct"]
        assert got["correct"] or got["reason"] == "missing_edge"
    # About 30% of lowq answers are wrong (a claimed link that does not exist).
    assert 50 < lowq_wrong < 130, lowq_wrong


def test_deterministic_and_splits_disjoint(task):
    a, b = task.generate(50, seed=7), task.generate(50, seed=7)
    assert a == b
    assert task.render(a[0], "cot", seed=3) == task.render(b[0], "cot", seed=3)
    ev = task.generate(200, seed=7, split="eval")
    tr = task.generate(800, seed=7)
    assert not {p["id"] for p in ev} & {p["id"] for p in tr}
    assert all(p["meta"]["split"] == "eval" for p in ev)
    from sftlens.tasks._route import _canonical

    for p in ev[:20]:
        m = p["meta"]
        assert split_of(_canonical(m["nodes"], m["edges"], m["start"], m["goal"])) == "eval"


@pytest.mark.parametrize(
    ("completion", "reason"),
    [
        ("no tags at all", "no_answer"),
        ("<answer></answer>", "malformed"),
        ("<answer>__import__('os').system('rm -rf /')</answer>", "malformed"),
        ("<answer>" + "A-" * 500 + "B</answer>", "malformed"),
        ("<answer>A-B-C</answer>", None),
    ],
)
def test_score_hostile_and_malformed(task, completion, reason):
    p = task.generate(1, seed=3)[0]
    got = task.score(p, completion)
    assert got["correct"] is False
    if reason:
        assert got["reason"] == reason


def test_score_reasons(task):
    p = task.generate(1, seed=11, n_nodes=6, path_len=2)[0]
    m = p["meta"]
    s, g = m["start"], m["goal"]
    right = p["answer"]
    assert task.score(p, f"x <answer>bad</answer> y <answer>{right}</answer>")["correct"]
    assert task.score(p, f"<answer> {right.replace('-', ' -> ')} </answer>")["correct"]
    assert task.score(p, f"<answer>{right.lower()}</answer>")["parsed_answer"] == right
    assert task.score(p, f"<answer>{g}-{s}</answer>")["reason"] == "wrong_start"
    mid = right.split("-")[1]
    assert task.score(p, f"<answer>{s}-{mid}</answer>")["reason"] == "wrong_end"
    assert task.score(p, f"<answer>{s}-{g}</answer>")["reason"] == "missing_edge"
    assert task.score(p, f"<answer>{s}-{mid}-{s}-{mid}-{g}</answer>")["reason"] == "repeated_node"
    outsider = next(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in m["nodes"])
    assert task.score(p, f"<answer>{s}-{outsider}-{g}</answer>")["reason"] == "unknown_node"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"n_nodes": 3}, "n_nodes=3"),
        ({"n_nodes": 6, "path_len": 5}, "path_len=5"),
        ({"colour": 1}, "unknown knob 'colour'"),
        ({"n_nodes": "many"}, "n_nodes='many'"),
        ({"split": "test"}, "split 'test'"),
    ],
)
def test_bad_knobs(task, kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        task.generate(5, seed=0, **kwargs)


def test_unknown_style(task):
    p = task.generate(1, seed=0)[0]
    with pytest.raises(ConfigError, match="unknown style 'long'"):
        task.render(p, "long", seed=0)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.text(alphabet="ABCDEFGHIJ-> ,<answer/>", max_size=60))
def test_score_never_raises_and_only_accepts_real_paths(junk, inner):
    task = get_task("route")
    p = task.generate(1, seed=5)[0]
    got = task.score(p, f"{junk}<answer>{inner}</answer>")
    assert set(got) == {"correct", "parsed_answer", "reason"}
    if got["correct"]:
        path = got["parsed_answer"].split("-")
        edges = _edge_set(p)
        assert path[0] == p["meta"]["start"] and path[-1] == p["meta"]["goal"]
        assert all(e in edges for e in zip(path, path[1:], strict=False))
