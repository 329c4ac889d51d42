"""Route: the cross-domain task. Find a path through a small one-way graph of lettered rooms or
cities, from a start to a goal, where some branches are dead ends.

Same skill as Countdown (search with checking and backtracking), different surface: different
prompt, wording and objects. Graphs are solvable by construction: a path from start to goal, plus
dead-end branches (small trees hanging off the path from which the goal is unreachable). Each
dead-end node has exactly one way in, so the depth-first search in the `cot` traces never meets
a node twice and every backtrack abandons a genuinely dead branch.
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any

from sftlens.core import ConfigError
from sftlens.tasks._registry import TASKS

TASK_NAME = "route"
STYLES = ("cot", "nocot", "lowq", "verbose")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
EVAL_PERCENT = 20  # share of the canonical-problem hash space that belongs to the eval split
KNOBS = {"n_nodes": 6, "path_len": None}
MAX_ANSWER_CHARS = 200
LOWQ_ERROR_RATE = 0.3  # share of lowq traces with a wrong answer (as for Countdown)

THEMES = {
    "rooms": {
        "intro": "A building has rooms {nodes}. The one-way doors are: {edges}.",
        "ask": "Find a way from room {s} to room {g}. Give the rooms in order, like "
        "<answer>X-Y-Z</answer>.",
        "thing": "room",
        "things": "rooms",
        "link": "door",
        "go": ("Go through to {y}.", "Take the door to {y}.", "Walk into {y}.", "Enter {y}."),
    },
    "cities": {
        "intro": "The cities {nodes} are linked by one-way roads: {edges}.",
        "ask": "Plan a trip from city {s} to city {g}. Give the cities in order, like "
        "<answer>X-Y-Z</answer>.",
        "thing": "city",
        "things": "cities",
        "link": "road",
        "go": ("Drive to {y}.", "Take the road to {y}.", "Head for {y}.", "Travel on to {y}."),
    },
}

OPEN = (
    "I start at {s} and must reach {g}.",
    "Start: {s}. Goal: {g}.",
    "Begin at {s}; the target is {g}.",
)
NOT_GOAL = ("{x} is not {g}.", "Is {x} the goal? No.", "{x} is not the goal {g}.")
IS_GOAL = ("{x} is the goal!", "Is {x} the goal? Yes!", "Reached {g}.")
EXITS = ("From {x} the {link}s lead to {ys}.", "{x} has {link}s to {ys}.", "Out of {x}: {ys}.")
NEXT = ("Next option from {x}: {y}.", "Now try the other {link} from {x}, to {y}.")
LEAF_BACK = (
    "{x} has no way out, so it is a dead end. Back to {p}.",
    "Nothing leaves {x}: dead end. Return to {p}.",
    "No {link} out of {x}, dead end; go back to {p}.",
)
INNER_BACK = (
    "Every {link} from {x} failed, so {x} is a dead end too. Back to {p}.",
    "All branches of {x} are dead, so {x} is a dead end. Return to {p}.",
)
CHECK_OPEN = ("Check the route {path}:", "Verify {path}:", "Double-check {path}:")
EDGE_OK = ("{u}->{v} exists", "{u}->{v} is a {link}", "{u}->{v} ok")
CHECK_CLOSE = (
    "It starts at {s}, ends at {g} and repeats no {thing}.",
    "Start {s}, end {g}, nothing visited twice.",
)


def _check_knobs(knobs: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(knobs) - set(KNOBS))
    if unknown:
        raise ConfigError(
            f"unknown knob {unknown[0]!r} for task 'route'; known: {', '.join(sorted(KNOBS))}."
        )
    out = {**KNOBS, **knobs}
    for key in out:
        if out[key] is None:
            continue
        try:
            out[key] = int(out[key])
        except (TypeError, ValueError):
            raise ConfigError(f"knob {key}={out[key]!r} must be an integer.") from None
    if not 4 <= out["n_nodes"] <= 12:
        raise ConfigError(f"knob n_nodes={out['n_nodes']} must be between 4 and 12.")
    if out["path_len"] is not None and not 2 <= out["path_len"] <= out["n_nodes"] - 2:
        raise ConfigError(
            f"knob path_len={out['path_len']} must be between 2 and n_nodes-2 "
            f"({out['n_nodes'] - 2}) so that at least one dead end fits."
        )
    return out


def _canonical(nodes: list[str], edges: list[list[str]], start: str, goal: str) -> str:
    """One string per distinct problem, independent of the order edges are listed in."""
    e = ",".join(f"{u}>{v}" for u, v in sorted(map(tuple, edges)))
    return f"{''.join(sorted(nodes))}|{e}|{start}|{goal}"


def split_of(canonical: str) -> str:
    """``train`` or ``eval``, a pure function of the canonical problem (splits never overlap)."""
    h = int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "big")
    return "eval" if h % 100 < EVAL_PERCENT else "train"


def _adjacency(meta: dict) -> dict[str, list[str]]:
    adj: dict[str, list[str]] = {n: [] for n in meta["nodes"]}
    for u, v in meta["edges"]:
        adj[u].append(v)
    return {n: sorted(vs) for n, vs in adj.items()}


def reaches_goal(meta: dict) -> dict[str, bool]:
    """For every node: can the goal be reached from it (the ground truth for ``dead_end``)."""
    adj = _adjacency(meta)
    back: dict[str, list[str]] = {n: [] for n in adj}
    for u, vs in adj.items():
        for v in vs:
            back[v].append(u)
    seen, todo = {meta["goal"]}, [meta["goal"]]
    while todo:
        for u in back[todo.pop()]:
            if u not in seen:
                seen.add(u)
                todo.append(u)
    return {n: n in seen for n in adj}


def _make_problem(rng: random.Random, n_nodes: int, path_len: int | None) -> dict:
    names = rng.sample(LETTERS, n_nodes)
    plen = path_len if path_len is not None else rng.randint(2, max(2, n_nodes // 2))
    path, dead = names[: plen + 1], names[plen + 1 :]
    edges = [[path[i], path[i + 1]] for i in range(plen)]
    # Dead branches hang off non-goal path nodes or earlier dead nodes: one way in each, and no
    # way from a dead node back to the path, so the goal is unreachable from all of them.
    placed: list[str] = []
    for d in dead:
        parent = rng.choice(path[:-1] + placed)
        edges.append([parent, d])
        placed.append(d)
    rng.shuffle(edges)
    theme = rng.choice(sorted(THEMES))
    return {
        "nodes": sorted(names),
        "edges": edges,
        "start": path[0],
        "goal": path[-1],
        "theme": theme,
        "path_len": plen,
    }


def _prompt(meta: dict) -> str:
    t = THEMES[meta["theme"]]
    edges = ", ".join(f"{u}->{v}" for u, v in meta["edges"])
    nodes = ", ".join(meta["nodes"])
    intro = t["intro"].format(nodes=nodes, edges=edges)
    return intro + " " + t["ask"].format(s=meta["start"], g=meta["goal"])


def solve(meta: dict) -> list[str]:
    """The path the depth-first search (exits in alphabetical order) finds."""
    adj, goal = _adjacency(meta), meta["goal"]

    def dfs(x: str, path: list[str]) -> list[str] | None:
        if x == goal:
            return path
        for y in adj[x]:
            if y not in path and (found := dfs(y, path + [y])):
                return found
        return None

    found = dfs(meta["start"], [meta["start"]])
    if found is None:  # pragma: no cover - solvable by construction
        raise ValueError("unsolvable route problem")
    return found


class _Builder:
    """Accumulates response text line by line and records events with char offsets."""

    def __init__(self) -> None:
        self.text = ""
        self.events: list[dict] = []

    def add(self, text: str, sep: str = "\n", **event: Any) -> None:
        if self.text:
            self.text += sep
        start = len(self.text)
        self.text += text
        if event:
            self.events.append(
                {"type": event.pop("type"), "start": start, "end": len(self.text)} | event
            )


def _render_cot(meta: dict, rng: random.Random) -> tuple[str, list[dict], list[str]]:
    t = THEMES[meta["theme"]]
    adj, goal, start = _adjacency(meta), meta["goal"], meta["start"]
    reach = reaches_goal(meta)
    b = _Builder()
    b.add(rng.choice(OPEN).format(s=start, g=goal))
    fmt = {"g": goal, "link": t["link"], "thing": t["thing"]}

    def visit(x: str, path: list[str]) -> list[str] | None:
        # Check the state before expanding it: the goal test is a verification step.
        if x == goal:
            b.add(
                rng.choice(IS_GOAL).format(x=x, **fmt),
                " ",
                type="verify",
                check="goal",
                node=x,
                holds=True,
            )
            return path
        b.add(
            rng.choice(NOT_GOAL).format(x=x, **fmt),
            " ",
            type="verify",
            check="goal",
            node=x,
            holds=False,
        )
        exits = [y for y in adj[x] if y not in path]
        if exits:
            b.add(rng.choice(EXITS).format(x=x, ys=", ".join(exits), **fmt), " ")
        for i, y in enumerate(exits):
            if i > 0:
                b.add(rng.choice(NEXT).format(x=x, y=y, **fmt))
            b.add(
                rng.choice(t["go"]).format(y=y),
                "\n" if i == 0 else " ",
                type="step",
                node=y,
                state="-".join(path + [y]),
                dead_end=not reach[y],
            )
            if (found := visit(y, path + [y])) is not None:
                return found
        # Every way out failed (or there was none): abandon x and go back to its parent.
        if len(path) > 1:
            phrases = INNER_BACK if exits else LEAF_BACK
            b.add(
                rng.choice(phrases).format(x=x, p=path[-2], **fmt),
                " ",
                type="backtrack",
                node=x,
                to=path[-2],
                state="-".join(path),
                from_state="-".join(path),
                to_state="-".join(path[:-1]),
                dead_end=not reach[x],
            )
        return None

    found = visit(start, [start])
    assert found is not None  # solvable by construction
    ans = "-".join(found)
    b.add(rng.choice(CHECK_OPEN).format(path=ans))
    for j, (u, v) in enumerate(zip(found, found[1:], strict=False)):
        b.add(
            rng.choice(EDGE_OK).format(u=u, v=v, **fmt),
            " " if j == 0 else ", ",
            type="verify",
            check="edge",
            src=u,
            dst=v,
            holds=[u, v] in meta["edges"],
        )
    b.text += "."
    b.add(rng.choice(CHECK_CLOSE).format(s=start, **fmt), " ")
    b.add(f"<answer>{ans}</answer>")
    return b.text, b.events, found


def _render_lowq(meta: dict, rng: random.Random) -> tuple[str, list[dict], str | None]:
    """A sloppy answer with no checks. With probability `LOWQ_ERROR_RATE` it walks into a dead
    branch and then claims a link to the goal that does not exist (``false_link``); otherwise
    it states the right path without checking it."""
    goal, start = meta["goal"], meta["start"]
    reach = reaches_goal(meta)
    error = None
    if rng.random() < LOWQ_ERROR_RATE:
        # Walk to a random dead node (every one hangs off the start's side of the graph).
        target = rng.choice([n for n in meta["nodes"] if not reach[n]])
        parent = {v: u for u, v in meta["edges"]}
        walk = [target]
        while walk[-1] != start:
            walk.append(parent[walk[-1]])
        walk = walk[::-1] + [goal]  # the last link does not exist: wrong, and unchecked
        error = "false_link"
    else:
        walk = solve(meta)
    b = _Builder()
    b.add(rng.choice(("Quick guess:", "Probably this way:", "Easy:")))
    for j, (u, v) in enumerate(zip(walk, walk[1:], strict=False)):
        b.add(
            f"{u} to {v}",
            " " if j == 0 else ", ",
            type="step",
            node=v,
            state="-".join(walk[: j + 2]),
            dead_end=not reach[v],
        )
    b.text += "."
    b.add(rng.choice(("Looks right.", "Done.", "That works.")), " ")
    b.add(f"<answer>{'-'.join(walk)}</answer>")
    return b.text, b.events, error


def _render_verbose(meta: dict, rng: random.Random, n_words: int, path: list[str]) -> str:
    """As long as the cot trace, restating the problem instead of searching."""
    t = THEMES[meta["theme"]]
    s, g, th, ths, ln = meta["start"], meta["goal"], t["thing"], t["things"], t["link"]
    edges = ", ".join(f"{u}->{v}" for u, v in meta["edges"])
    pool = [
        f"The {ths} are {', '.join(meta['nodes'])}.",
        f"The {ln}s go one way only: {edges}.",
        f"We start at {th} {s}.",
        f"The destination is {th} {g}.",
        f"Each {ln} can only be used in its own direction.",
        f"The answer lists the {ths} from {s} to {g} in order.",
        f"So the task is to get from {s} to {g} using the {ln}s.",
        f"There are {len(meta['nodes'])} {ths} and {len(meta['edges'])} {ln}s in total.",
    ]
    lines: list[str] = []
    while len(" ".join(lines).split()) < n_words:
        # Shuffle each round so the padding is not one fixed paragraph repeated.
        batch = pool[:]
        rng.shuffle(batch)
        for sent in batch:
            if len(" ".join(lines).split()) >= n_words:
                break
            lines.append(sent)
    ans = "-".join(path)
    lines.append(f"The route is {ans}.")
    lines.append(f"<answer>{ans}</answer>")
    return "\n".join(lines)


_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_SEP_RE = re.compile(r"\s*(?:->|→|-|,)\s*")


def score_route(meta: dict, completion: str) -> dict:
    """Check the last ``<answer>X-Y-Z</answer>`` against the graph; never executes anything.

    Returns:
        ``{"correct": bool, "parsed_answer": str | None, "reason": str}``; reason is ``ok``,
        ``no_answer``, ``malformed``, ``unknown_node``, ``wrong_start``, ``wrong_end``,
        ``missing_edge`` or ``repeated_node``.
    """
    matches = _ANSWER_RE.findall(completion or "")
    if not matches:
        return {"correct": False, "parsed_answer": None, "reason": "no_answer"}
    raw = matches[-1].strip()
    if not raw or len(raw) > MAX_ANSWER_CHARS:
        return {"correct": False, "parsed_answer": raw[:MAX_ANSWER_CHARS], "reason": "malformed"}
    parts = [p.strip().upper() for p in _SEP_RE.split(raw)]
    if not all(len(p) == 1 and p in LETTERS for p in parts):
        return {"correct": False, "parsed_answer": raw, "reason": "malformed"}
    parsed = "-".join(parts)
    nodes, edges = set(meta["nodes"]), {tuple(e) for e in meta["edges"]}
    reason = "ok"
    if not set(parts) <= nodes:
        reason = "unknown_node"
    elif parts[0] != meta["start"]:
        reason = "wrong_start"
    elif parts[-1] != meta["goal"]:
        reason = "wrong_end"
    elif len(set(parts)) != len(parts):
        reason = "repeated_node"
    elif any((u, v) not in edges for u, v in zip(parts, parts[1:], strict=False)):
        reason = "missing_edge"
    return {"correct": reason == "ok", "parsed_answer": parsed, "reason": reason}


@TASKS.register(TASK_NAME)
class RouteTask:
    """Find a path in a small one-way graph; dead-end branches force backtracking.

    Knobs: ``n_nodes`` (4-12, default 6), ``path_len`` (edges on the planted path, 2 to
    n_nodes-2; default random in 2..n_nodes//2).

    Example:
        >>> task = RouteTask()
        >>> p = task.generate(1, seed=0)[0]
        >>> task.score(p, task.render(p, "cot", seed=0)["response"])["correct"]
        True
    """

    name = TASK_NAME
    styles = STYLES

    def generate(self, n: int, seed: int, split: str = "train", **knobs: Any) -> list[dict]:
        """`n` distinct problems of `split`, deterministic in `seed` and the knobs."""
        if split not in ("train", "eval"):
            raise ConfigError(f"split {split!r} is not one of: train, eval.")
        if n <= 0:
            raise ConfigError(f"n={n} must be a positive number of problems.")
        k = _check_knobs(knobs)
        rng = random.Random(f"{TASK_NAME}:{seed}:{k['n_nodes']}:{k['path_len']}")
        out: list[dict] = []
        seen: set[str] = set()
        attempts = 0
        while len(out) < n:
            attempts += 1
            if attempts > 200 * n + 1000:
                raise ConfigError(
                    f"could only make {len(out)} distinct {split} route problems with "
                    f"n_nodes={k['n_nodes']}; ask for fewer or use more nodes."
                )
            meta = _make_problem(rng, k["n_nodes"], k["path_len"])
            canon = _canonical(meta["nodes"], meta["edges"], meta["start"], meta["goal"])
            # The split is a function of the problem itself, so train and eval never share one.
            if canon in seen or split_of(canon) != split:
                continue
            seen.add(canon)
            meta.update(n_nodes=k["n_nodes"], split=split)
            pid = "route-" + hashlib.sha256(canon.encode()).hexdigest()[:12]
            out.append(
                {
                    "id": pid,
                    "task": TASK_NAME,
                    "prompt": _prompt(meta),
                    "answer": "-".join(solve(meta)),
                    "meta": meta,
                }
            )
        return out

    def render(self, problem: dict, style: str, seed: int) -> dict:
        """The problem plus ``response``, ground-truth ``events`` and ``style``.

        Styles: ``cot`` (depth-first search, exits in alphabetical order, checking each room
        against the goal, backtracking out of dead ends, then checking every link of the
        route), ``nocot`` (the answer only), ``lowq`` (no checks; 30% wrong, see
        ``meta["render"]["lowq_error"]``) and ``verbose`` (as many words as ``cot``, restating
        the problem instead of searching; no events).

        Events carry char offsets into ``response``: ``step`` (``node`` entered, ``state`` the
        path so far, ``dead_end``: the goal is unreachable from ``node``), ``backtrack``
        (``node`` abandoned, ``to``, ``from_state``, ``to_state``, ``dead_end``: always true)
        and ``verify`` (``check`` ``goal`` with ``node``, or ``edge`` with ``src``/``dst``;
        ``holds``: whether the checked fact is true).
        """
        if style not in STYLES:
            raise ConfigError(
                f"unknown style {style!r} for task 'route'; known: {', '.join(STYLES)}."
            )
        meta = problem["meta"]
        # A string seed is hashed deterministically by `random`, across runs and platforms.
        rng = random.Random(f"{seed}:{problem['id']}:{style}")
        if style == "nocot":
            response, events = f"<answer>{problem['answer']}</answer>", []
        elif style == "lowq":
            response, events, error = _render_lowq(meta, rng)
            # Say how the trace went wrong (None: right answer, just unchecked).
            problem = {**problem, "meta": {**meta, "render": {"lowq_error": error}}}
        else:
            # verbose is length-matched to the cot trace of the same problem and seed.
            cot, events, path = _render_cot(meta, random.Random(f"{seed}:{problem['id']}:cot"))
            if style == "cot":
                response = cot
            else:
                response, events = _render_verbose(meta, rng, len(cot.split()), path), []
        return {**problem, "response": response, "events": events, "style": style}

    def score(self, problem: dict, completion: str) -> dict:
        """``correct`` when the last answer is a real path from start to goal."""
        return score_route(problem["meta"], completion)
