"""The base corpus that "pretrains" the toy base models.

Arithmetic in a few formats, Countdown and route problems with answers only (no chain of
thought), and chat-format instructions where harmless requests are answered and harmful ones
refused. So the bases can do arithmetic, have a refusal behaviour, and have never seen long CoT.
Chat text uses the toy chat format ``<|user|>{prompt}\\n<|assistant|>{response}<|eos|>``, the
same text the SFT stage trains on. Instructions come from the *train* templates only; the
held-out templates are kept for evaluation.
"""

from __future__ import annotations

import inspect
import random
import re
from collections.abc import Callable
from typing import Any

from sftlens.core import ConfigError
from sftlens.tasks._instructions import sample_chat
from sftlens.tasks._registry import TASKS, get_task
from sftlens.tasks._tokenizer import ASSISTANT, EOS, USER

KINDS = ("arithmetic", "countdown", "route", "chat_harmless", "chat_harmful")
DEFAULT_MIX = {
    "arithmetic": 0.35,
    "countdown": 0.25,
    "route": 0.1,
    "chat_harmless": 0.15,
    "chat_harmful": 0.15,
}


MAX_RECORDS = 10_000_000


def chat_text(prompt: str, response: str) -> str:
    """One exchange in the toy chat format (the SFT text for toy models)."""
    return f"{USER}{prompt}\n{ASSISTANT}{response}{EOS}"


def _expr(rng: random.Random) -> tuple[str, int]:
    """One small exact expression and its value (no negatives, exact division)."""
    op = rng.choice("+-*/")
    if op == "+":
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        return f"{a}+{b}", a + b
    if op == "-":
        a = rng.randint(0, 99)
        b = rng.randint(0, a)
        return f"{a}-{b}", a - b
    if op == "*":
        a, b = rng.randint(1, 12), rng.randint(1, 12)
        return f"{a}*{b}", a * b
    b, q = rng.randint(1, 12), rng.randint(1, 12)
    return f"{b * q}/{b}", q


def _two_step(rng: random.Random) -> str:
    """``(a+b)*c = 22*3 = 66``: an intermediate value, then the result."""
    e1, v1 = _expr(rng)
    op = rng.choice("+-*")
    c = rng.randint(1, 9) if op == "*" else rng.randint(0, 50)
    if op == "-":
        c = min(c, v1)
    v2 = {"+": v1 + c, "-": v1 - c, "*": v1 * c}[op]
    return f"({e1}){op}{c} = {v1}{op}{c} = {v2}"


ARITH_FORMATS: tuple[Callable[[random.Random], str], ...] = (
    lambda r: "{}={}".format(*_expr(r)),
    lambda r: "{} = {}".format(re.sub(r"([-+*/])", r" \1 ", (e := _expr(r))[0]), e[1]),
    lambda r: "Q: What is {}? A: {}".format(*_expr(r)),
    _two_step,
    lambda r: chat_text("What is {}?".format(*(e := _expr(r))), str(e[1])),
)


def _arithmetic(rng: random.Random) -> str:
    # A few facts in one format per record, like a page of exercises.
    fmt = rng.choice(ARITH_FORMATS)
    return "\n".join(fmt(rng) for _ in range(rng.randint(3, 6)))


def _counts(n: int, mix: dict[str, float]) -> dict[str, int]:
    total = sum(mix.values())
    counts = {k: int(n * w / total) for k, w in mix.items()}
    # Rounding leftovers go to the largest shares first, so the total is exactly n.
    for k in sorted(mix, key=lambda k: -mix[k])[: n - sum(counts.values())]:
        counts[k] += 1
    return counts


def _check_mix(mix: dict[str, float] | None) -> dict[str, float]:
    if mix is None:
        return dict(DEFAULT_MIX)
    unknown = sorted(set(mix) - set(KINDS))
    if unknown:
        raise ConfigError(f"unknown corpus kind {unknown[0]!r}; known: {', '.join(KINDS)}.")
    out = {**DEFAULT_MIX, **mix}
    for k, v in out.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            raise ConfigError(f"corpus share {k}={v!r} must be a number.") from None
        if out[k] < 0:
            raise ConfigError(f"corpus share {k}={v} must be 0 or more.")
    if sum(out.values()) <= 0:
        raise ConfigError("the corpus shares sum to 0; give at least one kind a positive share.")
    return out


def build_base_corpus(n: int, seed: int, mix: dict[str, float] | None = None) -> list[dict]:
    """`n` base-corpus records, shuffled, deterministic in `seed`.

    Args:
        n: number of records.
        seed: the seed; the same seed gives the same records.
        mix: shares per kind (``arithmetic``, ``countdown``, ``route``, ``chat_harmless``,
            ``chat_harmful``), relative weights overriding `DEFAULT_MIX`; 0 drops a kind.

    Returns:
        ``[{"id", "task": "base", "kind", "text"}]``.
    """
    if n <= 0:
        raise ConfigError(f"n={n} must be a positive number of records.")
    counts = _counts(n, _check_mix(mix))
    rng = random.Random(f"base:{seed}")
    texts: list[tuple[str, str]] = []
    texts += [("arithmetic", _arithmetic(rng)) for _ in range(counts["arithmetic"])]
    for kind, task_name in (("countdown", "countdown"), ("route", "route")):
        if not counts[kind]:
            continue
        if task_name not in TASKS:
            raise ConfigError(f"the base corpus needs task {task_name!r}, which is not available.")
        task = get_task(task_name)
        # Train split only, answers only: the bases never see CoT or an eval problem.
        for p in task.generate(counts[kind], seed=seed, split="train"):
            ex = task.render(p, "nocot", seed=seed)
            texts.append((kind, chat_text(ex["prompt"], ex["response"])))
    for kind in ("chat_harmless", "chat_harmful"):
        for _ in range(counts[kind]):
            _, prompt, response = sample_chat(kind.removeprefix("chat_"), rng)
            texts.append((kind, chat_text(prompt, response)))
    rng.shuffle(texts)
    return [
        {"id": f"base-{i:07d}", "task": "base", "kind": kind, "text": text}
        for i, (kind, text) in enumerate(texts)
    ]


BASE_CORPUS = "base-corpus"


def make_data(
    task: str,
    n: int,
    seed: int,
    split: str | None = None,
    style: str | None = None,
    knobs: dict[str, Any] | None = None,
) -> list[dict]:
    """The records ``sftlens data`` writes: problems, SFT examples (with `style`) or the corpus.

    Args:
        task: a registered task name, or ``base-corpus``.
        n: number of records.
        seed: the seed for problems and traces.
        split: ``train`` or ``eval`` (None: the task's default).
        style: render each problem in this style (adds ``response``, ``events``, ``style``).
        knobs: task knobs for ``generate``; knobs that are keyword arguments of the task's
            ``render`` (e.g. Countdown's ``max_expansions``) go to ``render``. For the base
            corpus, the knobs are the mix shares.

    Raises:
        ConfigError: unknown task, style or knob, a bad split, or ``n`` below 1.
    """
    knobs = dict(knobs or {})
    if n <= 0:
        raise ConfigError(f"--n {n}: must be a positive number of records.")
    if n > MAX_RECORDS:
        # Records are built in memory; a typo'd --n would exhaust it instead of failing.
        raise ConfigError(
            f"--n {n}: at most {MAX_RECORDS:,} records per file; write several files with "
            "different --seed values."
        )
    if task == BASE_CORPUS:
        if style is not None or split is not None:
            opt = "--style" if style is not None else "--split"
            raise ConfigError(f"{opt} does not apply to base-corpus; leave it out.")
        return build_base_corpus(n, seed, mix=knobs)
    t = get_task(task)
    if style is not None and style not in t.styles:
        known = ", ".join(t.styles) or "none"
        raise ConfigError(f"--style {style!r} is not a style of task {task!r}; known: {known}.")
    render_params = {
        name
        for name, p in inspect.signature(t.render).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    render_knobs = {k: knobs.pop(k) for k in list(knobs) if k in render_params}
    if render_knobs and style is None:
        raise ConfigError(
            f"--knob {sorted(render_knobs)[0]} only shapes traces; add --style to use it."
        )
    problems = t.generate(n, seed, **({} if split is None else {"split": split}), **knobs)
    if style is None:
        return problems
    return [t.render(p, style, seed, **render_knobs) for p in problems]


def data_stats(records: list[dict]) -> list[dict]:
    """Per (task, style or kind): count, mean words of the response (or text) and event counts.

    Returns:
        One row per group, sorted: ``{"task", "style", "n", "mean_words", "events": {type:
        mean per record}}``.
    """
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        key = (str(r.get("task", "?")), str(r.get("style") or r.get("kind") or "-"))
        groups.setdefault(key, []).append(r)
    rows = []
    for (task, style), recs in sorted(groups.items()):
        words = [len(str(r.get("response", r.get("text", "")) or "").split()) for r in recs]
        events: dict[str, int] = {}
        for r in recs:
            for ev in r.get("events") or []:
                kind = str(ev.get("type", "?")) if isinstance(ev, dict) else "?"
                events[kind] = events.get(kind, 0) + 1
        rows.append(
            {
                "task": task,
                "style": style,
                "n": len(recs),
                "mean_words": sum(words) / len(recs),
                "events": {k: v / len(recs) for k, v in sorted(events.items())},
            }
        )
    return rows
