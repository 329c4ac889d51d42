"""The sweep: every checkpoint x every eval set x n samples -> one scored traces JSONL.

Output folder layout (file names are the constants below):

- ``traces.jsonl``: one completion per line (the Trace contract), appended batch by batch;
- ``generate_config.yaml``: the resolved config;
- ``problems.jsonl``: the eval problems, with their eval-set name.

Resuming: a trace is identified by (checkpoint path, eval set, problem id, sample idx). A rerun
reads the traces already written (a line cut by a crash is dropped) and generates only the
missing ones, so an interrupted sweep picks up where it stopped, and raising ``sampling.n``
adds only the new samples. Traces written with other decoding parameters are an error (use
another ``out``), so one file never mixes samplings.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sftlens.core import (
    Checkpoint,
    ConfigError,
    DataError,
    append_jsonl,
    atomic_path,
    check_input,
    check_model_dir,
    check_output,
    parse_shard,
    read_json,
    read_jsonl,
    resolve_series,
    shard_block,
    shard_dir,
    warn,
    write_json,
    write_jsonl,
)
from sftlens.rollout._config import EvalSetConfig, GenerateConfig, ModelSpec
from sftlens.rollout._engines import Request, make_engine, sample_seed
from sftlens.rollout._judge import RefusalJudge
from sftlens.rollout._scoring import TRACE_KEYS, TRACE_REQUIRED, TRACE_TYPES, score_trace

__all__ = [
    "CONFIG_FILE",
    "PROBLEMS_FILE",
    "TRACES_FILE",
    "generate_traces",
    "merge_traces",
    "load_eval_set",
    "resolve_model",
]

TRACES_FILE = "traces.jsonl"
SHARD_FILE = "shard.json"
CONFIG_FILE = "generate_config.yaml"
PROBLEMS_FILE = "problems.jsonl"
# Sampling keys that must match for an existing trace to count as done (n may grow).
_SAMPLING_IDENTITY = ("engine", "temperature", "top_p", "top_k", "max_new_tokens", "stop", "seed")


def load_eval_set(es: EvalSetConfig) -> list[dict]:
    """The problems of one eval set (Problem records with ``task`` filled in).

    A task set calls ``get_task(task).generate(n, seed, split, **knobs)``. A file set is read
    in its published shape by the task's loader (`sftlens.tasks.load_problem_file`: math field
    names, multiple choice, refusal sets), or as ``{id, prompt, ...}`` records for other tasks;
    ``fields`` names other columns. ``sample`` draws a seeded subsample; a file with fewer
    problems than that is used whole, with a warning saying how many.
    """
    import sftlens.tasks as tasks

    if not es.file:
        problems = tasks.get_task(es.task).generate(es.n, es.seed, split=es.split, **es.knobs)
    else:
        path = check_input(es.file, "eval file")
        problems = tasks.load_problem_file(path, es.task, fields=es.fields, seed=es.seed)
    if es.limit:
        problems = problems[: es.limit]
    if es.file and es.sample:
        if len(problems) < es.sample:
            warn(f"eval set {es.label!r}: {es.file} has {len(problems)} problems, fewer than the "
                 f"{es.sample} asked; using all {len(problems)}.")  # fmt: skip
        else:
            # Seeded, and in file order: the same subset on every run and every checkpoint.
            keep = sorted(random.Random(es.seed).sample(range(len(problems)), es.sample))
            problems = [problems[i] for i in keep]
    seen: set[str] = set()
    out = []
    for i, p in enumerate(problems):
        p = dict(p)
        p["id"] = str(p.get("id", i))
        if not p.get("task"):
            if not es.task:
                raise DataError(
                    f"eval set {es.label!r}: problem {p['id']!r} has no task; set `task` on "
                    "the eval set."
                )
            p["task"] = es.task
        if p["id"] in seen:
            raise DataError(f"eval set {es.label!r}: duplicate problem id {p['id']!r}.")
        seen.add(p["id"])
        if not isinstance(p.get("prompt"), str):
            raise DataError(f"eval set {es.label!r}: problem {p['id']!r} has no text prompt.")
        out.append(p)
    if not out:
        raise DataError(f"eval set {es.label!r}: no problems.")
    return out


def resolve_model(
    spec: ModelSpec, log: Callable[[str], None] | None = None
) -> tuple[str, list[Checkpoint]]:
    """(model name, checkpoints by step) for any reference `sftlens.core.resolve_series` reads."""
    series = resolve_series(spec.path, name=spec.name or None, log=log)
    ckpts = series.checkpoints
    if spec.steps:
        have = {c.step for c in ckpts}
        missing = [s for s in spec.steps if s not in have]
        if missing:
            raise ConfigError(
                f"{spec.path}: no checkpoint for step {missing[0]}; available steps: "
                f"{', '.join(str(s) for s in sorted(x for x in have if x is not None))}."
            )
        ckpts = [c for c in ckpts if c.step in set(spec.steps)]
    return series.name, ckpts


def _group(models: list[tuple[str, list[Checkpoint]]]) -> list[tuple[str, list[Checkpoint]]]:
    """One series per model name: checkpoints given one by one (``-m run/checkpoint-50 -m
    run/checkpoint-100``) join their run's series, in step order."""
    out: dict[str, list[Checkpoint]] = {}
    for name, cks in models:
        out.setdefault(name, []).extend(cks)
    return [
        (n, sorted(cks, key=lambda c: (c.step is None, c.step or 0, c.final)))
        for n, cks in out.items()
    ]


def _sampling_record(cfg: GenerateConfig) -> dict:
    rec = cfg.sampling.to_dict()
    rec["engine"] = cfg.engine
    return rec


def _key(path: str, eval_set: str, problem_id: str, sample_idx: int) -> tuple:
    return (path, eval_set, problem_id, int(sample_idx))


def _done_keys(traces: Path, sampling: dict) -> set[tuple]:
    """Keys of the traces already written; other decoding parameters are an error."""
    done: set[tuple] = set()
    if not traces.exists():
        return done
    for lineno, r in enumerate(
        read_jsonl(traces, required=TRACE_REQUIRED, allow_partial_tail=True, types=TRACE_TYPES), 1
    ):
        old = {k: r["sampling"].get(k) for k in _SAMPLING_IDENTITY}
        new = {k: sampling.get(k) for k in _SAMPLING_IDENTITY}
        if old != new:
            diff = next(k for k in _SAMPLING_IDENTITY if old[k] != new[k])
            raise ConfigError(
                f"{traces}:{lineno}: written with sampling.{diff} = {old[diff]!r}, the config "
                f"says {new[diff]!r}; use another `out` folder (or delete the file)."
            )
        done.add(
            _key(
                r["checkpoint"]["path"],
                r.get("eval_set", r["task"]),
                r["problem_id"],
                r["sample_idx"],
            )
        )
    return done


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def generate_traces(
    cfg: GenerateConfig,
    *,
    engine_factory: Callable[[str], Any] | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Sample and score every checkpoint of every model on every eval set.

    Args:
        cfg: the sweep's config (models, eval sets, sampling, engine, out).
        engine_factory: ``checkpoint path -> engine``; default builds ``cfg.engine`` on the
            checkpoint (used by benchmarks and tests to reuse or wrap a loaded engine).
        log: progress callback (one line per checkpoint and batch).

    Returns:
        The traces file, ``<cfg.out>/traces.jsonl``.
    """
    if not cfg.models:
        raise ConfigError("models: give at least one run dir, model dir or hub id.")
    if not cfg.eval_sets:
        raise ConfigError("eval_sets: give at least one eval set (task or file).")
    say = log or (lambda _msg: None)
    out = Path(cfg.out)
    judge = RefusalJudge.from_config(cfg.refusal)
    sets = [(es.label, load_eval_set(es)) for es in cfg.eval_sets]
    # Unknown tasks fail here, before any model is loaded.
    from sftlens.tasks import get_task

    for task in sorted({p["task"] for _lab, ps in sets for p in ps}):
        get_task(task)
    models = _group([resolve_model(m, say) for m in cfg.models])
    # Weights are checked (headers only) before the output folder appears.
    for _name, ckpts in models:
        for ck in ckpts:
            check_model_dir(ck.path)
    units = [(name, ck) for name, ckpts in models for ck in ckpts]
    order = [(lab, p["id"]) for lab, ps in sets for p in ps]
    shard = parse_shard(cfg.shard)
    picked = set(order)
    if shard:
        # By checkpoint when there are enough of them, else by problem within each.
        out = shard_dir(cfg.out, shard)
        if len(units) >= shard[1]:
            units = [units[i] for i in shard_block(len(units), shard)]
        else:
            picked = {order[i] for i in shard_block(len(order), shard)}
    check_output(out, folder=True)
    traces = out / TRACES_FILE
    sampling = _sampling_record(cfg)
    # The traces already there must match this config before anything beside them changes.
    done = _done_keys(traces, sampling)
    # Inputs are valid: only now does the output folder appear.
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / CONFIG_FILE)
    if shard:
        write_json(
            out / SHARD_FILE,
            {
                "shard": list(shard),
                "checkpoints": [[n, c.path] for n, cks in models for c in cks],
                "problems": [list(x) for x in order],
            },
        )
    write_jsonl(out / PROBLEMS_FILE, ({**p, "eval_set": lab} for lab, ps in sets for p in ps))
    make = engine_factory or (
        lambda path: make_engine(
            cfg.engine, path, cfg.device, cfg.dtype, cfg.batch_size, cfg.sampling.seed
        )
    )
    # Batches of several engine batches: the hf engine sorts each chunk by prompt length, and
    # every chunk is appended (and thus survives an interruption) as soon as it is scored.
    chunk = cfg.batch_size * 4 if cfg.engine == "hf" else 4096
    for name, ck in units:
        todo = [
            (lab, p, i)
            for lab, ps in sets
            for p in ps
            for i in range(cfg.sampling.n)
            if (lab, p["id"]) in picked and _key(ck.path, lab, p["id"], i) not in done
        ]
        tag = f"{name} step {ck.step}" if ck.step is not None else name
        if not todo:
            say(f"{tag}: all traces present, skipped")
            continue
        say(f"{tag}: {len(todo)} completions to sample")
        engine = make(ck.path)
        try:
            _sample_checkpoint(cfg, engine, name, ck, todo, sampling, judge, traces, chunk, say)
        finally:
            engine.close()
    return traces


def merge_traces(out: str | os.PathLike) -> Path:
    """Join ``<out>/shard-K-of-N/`` sweeps into ``<out>/traces.jsonl`` (+ config, problems).

    The traces are put in the order a single run writes them (checkpoint, eval set, problem,
    sample), so the merged folder holds the same files a single run does.

    Raises:
        DataError: no shards, a shard missing or unfinished, or shards of different sweeps.
    """
    import shutil

    root = Path(out)
    shards = sorted(root.glob("shard-*-of-*"), key=lambda d: _shard_no(d))
    if not shards:
        raise DataError(f"{root}: no shard-K-of-N/ folders to merge; run with --shard K/N.")
    metas = [read_json(d / SHARD_FILE) for d in shards if (d / SHARD_FILE).is_file()]
    total = metas[0]["shard"][1] if metas else 0
    have = sorted(m["shard"][0] for m in metas)
    if have != list(range(1, total + 1)):
        missing = sorted(set(range(1, total + 1)) - set(have))
        raise DataError(
            f"{root}: shard {missing[0] if missing else '?'}/{total} is missing; run it "
            "(--shard K/N) before merging."
        )
    if any(m["checkpoints"] != metas[0]["checkpoints"] for m in metas):
        raise DataError(f"{root}: the shards come from different sweeps (other models).")
    ck_rank = {p: i for i, (_n, p) in enumerate(metas[0]["checkpoints"])}
    pr_rank = {(lab, pid): i for i, (lab, pid) in enumerate(metas[0]["problems"])}
    records = [r for d in shards for r in read_jsonl(d / TRACES_FILE, required=TRACE_KEYS)]
    records.sort(
        key=lambda r: (
            ck_rank.get(r["checkpoint"]["path"], len(ck_rank)),
            pr_rank.get((r.get("eval_set", r["task"]), r["problem_id"]), len(pr_rank)),
            r["sample_idx"],
        )
    )
    write_jsonl(root / TRACES_FILE, records)
    with atomic_path(root / PROBLEMS_FILE) as tmp:
        shutil.copyfile(shards[0] / PROBLEMS_FILE, tmp)
    cfg = GenerateConfig.load(shards[0] / CONFIG_FILE)
    cfg.shard = ""
    cfg.save(root / CONFIG_FILE)
    return root / TRACES_FILE


def _shard_no(d: Path) -> int:
    return int(d.name.split("-")[1])


def _input_text(tokenizer: Any, problem: dict, chat: bool | None) -> str:
    from sftlens.tasks import format_prompt

    if problem.get("prompt_formatted"):
        return problem["prompt"]
    return format_prompt(tokenizer, problem["prompt"], chat=chat)


def _sample_checkpoint(
    cfg: GenerateConfig,
    engine: Any,
    name: str,
    ck: Checkpoint,
    todo: list[tuple[str, dict, int]],
    sampling: dict,
    judge: RefusalJudge,
    traces: Path,
    chunk: int,
    say: Callable[[str], None],
) -> None:
    texts: dict[str, str] = {}
    ck_name = ck.name or os.path.basename(ck.path.rstrip("/")) or ck.path
    for part in _chunks(todo, chunk):
        reqs = []
        for _lab, p, i in part:
            if p["id"] not in texts:
                texts[p["id"]] = _input_text(engine.tokenizer, p, cfg.chat)
            reqs.append(Request(texts[p["id"]], sample_seed(cfg.sampling.seed, p["id"], i)))
        outs = engine.generate(reqs, cfg.sampling)
        records = []
        for (lab, p, i), req, c in zip(part, reqs, outs, strict=True):
            records.append(
                {
                    "id": f"{name}/{ck_name}/{lab}/{p['id']}/{i}",
                    "problem_id": p["id"],
                    "task": p["task"],
                    "eval_set": lab,
                    "model": name,
                    "checkpoint": ck.provenance(),
                    "sample_idx": i,
                    "prompt": p["prompt"],
                    "input_text": req.text,
                    "answer": p.get("answer"),
                    "meta": p.get("meta") or {},
                    "completion": c.text,
                    "finish_reason": c.finish_reason,
                    "n_tokens": c.n_tokens,
                    "sampling": {**sampling, "sample_seed": req.seed},
                    "score": score_trace(
                        p, c.text, finish_reason=c.finish_reason, n_tokens=c.n_tokens, judge=judge
                    ),
                }
            )
        append_jsonl(traces, records)
        say(f"  wrote {len(records)} traces")


def merge_file_shards(out: str | os.PathLike) -> int:
    """Concatenate ``NAME.shard-K-of-N.EXT`` (K = 1..N, contiguous blocks) into ``NAME.EXT``.

    Returns the number of shards joined; a missing shard is a `DataError`.
    """
    p = Path(out)
    found = sorted(p.parent.glob(f"{p.stem}.shard-*-of-*{p.suffix}"))
    if not found:
        raise DataError(f"{p}: no {p.stem}.shard-K-of-N{p.suffix} files beside it to merge.")
    total = int(found[0].name[len(p.stem) :].split("-")[-1].split(".")[0])
    parts = [p.parent / f"{p.stem}.shard-{k}-of-{total}{p.suffix}" for k in range(1, total + 1)]
    missing = [q for q in parts if not q.is_file()]
    if missing:
        raise DataError(f"{missing[0]}: shard missing; run it before merging.")
    with atomic_path(p) as tmp, open(tmp, "wb") as fh:
        for q in parts:
            fh.write(q.read_bytes())
    return total
