"""The stages of an experiment, built from its spec, each calling one package's public function.

Graph (per spec)::

    data.base_corpus ─┐
    data.sft.<d> ─────┴─> data.tokenizer ─> pretrain.<model> ─> sft.<arm> ─> rollout.<arm>
                                                                  │            └─> tag.<arm>
                                                                  ├─> probe.<arm> ─> causal.<arm>
                                                                  └─> refusal.<arm>
    probe.<strong arm> + probe.<weak arm> ─> probe.compare
    every rollout/tag/probe/causal/compare/refusal ─> tables ─> report

The probe stages are in `sftlens.experiments._probe_stages`.

Each stage's parameters hold exactly the spec values it uses (and the scale's sizes), so editing
one arm's learning rate reruns that arm's training and what follows it, nothing else.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sftlens.core import (
    CHECKPOINTS_DIR,
    ConfigError,
    DataError,
    atomic_dir,
    checkpoint_dirname,
    find_checkpoints,
    read_json,
    read_jsonl,
    resolve_series,
    write_jsonl,
    write_parquet,
)
from sftlens.experiments._probe_stages import (
    PROBES_DIR,
    compare_stage,
    probe_knobs,  # noqa: F401 (re-exported: the spec's probe knobs)
    probe_stages,
)
from sftlens.experiments._runner import Stage, StageContext
from sftlens.experiments._spec import ExperimentSpec
from sftlens.experiments._stage_helpers import MODELS_DIR
from sftlens.experiments._stage_helpers import stage_arm as _arm
from sftlens.experiments._stage_helpers import stage_seed as _seed
from sftlens.experiments._stage_helpers import stage_series as _series
from sftlens.experiments._tables import PROBE_TABLE

# Bumped when a stage's behaviour changes, so old outputs are not reused.
STAGES_VERSION = 1

BASE_CORPUS = "data/base_corpus.jsonl"
TOKENIZER_DIR = "data/tokenizer"
SFT_DIR = "data/sft"
TRACES_DIR = "traces"
TAGS_DIR = "tags"
TABLES_DIR = "tables"
REPORT_DIR = "report"


def log_grid(total: int, n: int) -> list[int]:
    """`n` roughly log-spaced checkpoint steps in ``0..total`` (0 and `total` included).

    >>> log_grid(160, 5)
    [0, 1, 5, 29, 160]
    """
    if n <= 2 or total <= 1:
        return sorted({0, total})
    pts = {0, total}
    # n - 1 geometric points from step 1 to `total`; rounding may merge the first few.
    for i in range(n - 1):
        pts.add(int(round(total ** (i / (n - 2)))))
    return sorted(pts)


def _toy_base(spec: ExperimentSpec, base: str) -> str:
    return base + spec.sizes.toy_suffix if base.startswith("toy-") else base


def sft_path(data_name: str) -> str:
    return f"{SFT_DIR}/{data_name}.jsonl"


def build_stages(spec: ExperimentSpec) -> list[Stage]:
    """The stage graph of a spec at its chosen scale, in dependency order."""
    sz = spec.sizes
    stages: list[Stage] = []
    common = {"v": STAGES_VERSION, "seed": spec.seed}

    data_stages = []
    if spec.toy:
        stages.append(
            Stage(
                "data.base_corpus",
                _base_corpus,
                params={**common, "n": sz.base_corpus},
                outputs=(BASE_CORPUS,),
                requires=("sftlens.tasks:build_base_corpus",),
                cost=0.2,
            )
        )
        data_stages.append("data.base_corpus")
    for i, d in enumerate(spec.data):
        stages.append(
            Stage(
                f"data.sft.{d.name}",
                _sft_data,
                params={**common, "data": d.to_dict(), "n": sz.sft_examples, "offset": i},
                outputs=(sft_path(d.name),),
                requires=("sftlens.tasks:get_task",),
                cost=0.2,
            )
        )
        data_stages.append(f"data.sft.{d.name}")
    if spec.toy:
        stages.append(
            Stage(
                "data.tokenizer",
                _tokenizer,
                deps=tuple(data_stages),
                params={**common, "vocab_size": sz.vocab_size},
                outputs=(TOKENIZER_DIR,),
                requires=("sftlens.tasks:build_tokenizer",),
                cost=0.3,
            )
        )
    train_common = {"batch_size": sz.batch_size, "seq_len": sz.seq_len, "device": spec.device}
    for m in spec.models:
        if not m.pretrain:
            continue
        stages.append(
            Stage(
                f"pretrain.{m.name}",
                _pretrain,
                deps=("data.base_corpus", "data.tokenizer"),
                params={
                    **common,
                    **train_common,
                    "model": m.to_dict(),
                    "base": _toy_base(spec, m.base),
                    "steps": sz.pretrain_steps,
                    "pretrain_seq_len": sz.pretrain_seq_len,
                    "schedule": sz.pretrain_schedule,
                    "lr": m.pretrain_lr,
                },
                outputs=(f"{MODELS_DIR}/{m.name}",),
                requires=("sftlens.train:train", "sftlens.train:TrainConfig"),
                cost=_pretrain_cost(spec, m.base),
            )
        )
    analysis_stages = []
    for k, a in enumerate(spec.arms):
        if a.external:
            # An existing series: analysed where it is, nothing trained.
            analysis_stages += _analysis_stages(spec, a, stages, source=a.checkpoints, deps=())
            continue
        m = spec.model(a.model)
        steps = max(1, int(round(sz.sft_steps * a.steps_factor)))
        deps = [f"data.sft.{a.data}"]
        if m.pretrain:
            deps.append(f"pretrain.{m.name}")
        elif spec.toy and m.is_toy:
            deps.append("data.tokenizer")
        unique = None
        if a.unique_fraction < 1:
            # At least one batch of distinct examples (the trainer needs a full batch).
            unique = max(sz.batch_size, int(round(a.unique_fraction * sz.sft_examples)))
        stages.append(
            Stage(
                f"sft.{a.name}",
                _sft,
                deps=tuple(deps),
                params={
                    **common,
                    **train_common,
                    "arm": a.to_dict(),
                    "model": m.to_dict(),
                    "base": _toy_base(spec, m.base),
                    "steps": steps,
                    "grid": log_grid(steps, sz.checkpoints)
                    if a.grid == "log"
                    else _linear_grid(steps, sz.checkpoints),
                    "subset_size": unique,
                    "offset": k,
                },
                outputs=(f"{MODELS_DIR}/{a.name}",),
                requires=("sftlens.train:train", "sftlens.train:TrainConfig"),
                cost=steps * (4.0 if "strong" in m.base else 1.0) / 20,
            )
        )
        analysis_stages += _analysis_stages(spec, a, stages, source="", deps=(f"sft.{a.name}",))
    analysis_stages += compare_stage(spec, stages)
    stages.append(
        Stage(
            "tables",
            _tables,
            deps=tuple(analysis_stages),
            params={
                **common,
                "arms": [[a.name, a.model, a.data] for a in spec.arms],
                "traces_shown": sz.traces_shown,
            },
            outputs=(TABLES_DIR,),
            requires=("sftlens.rollout:checkpoint_table",),
            cost=0.2,
        )
    )
    stages.append(
        Stage(
            "report",
            _report,
            deps=("tables",),
            params={**common, "name": spec.name, "description": spec.description},
            outputs=(REPORT_DIR,),
            cost=0.2,
        )
    )
    return stages


def _pretrain_cost(spec: ExperimentSpec, base: str) -> float:
    """Relative cost for the ETA: near zero when a shipped base is likely to be installed."""
    from sftlens.experiments._bases import shipped_root

    name = _toy_base(spec, base)
    # Cheap only when the shipped base was built at this scale (the recipe decides at run
    # time; a base shipped for the tiny scale is retrained at the small one).
    rec = shipped_root() / name / "recipe.json"
    if spec.shipped_bases and rec.is_file() and read_json(rec).get("scale") == spec.scale:
        return 0.2
    return spec.sizes.pretrain_steps * (4.0 if "strong" in base else 1.0) / 20


def _analysis_stages(
    spec: ExperimentSpec, a: Any, stages: list[Stage], source: str, deps: tuple[str, ...]
) -> list[str]:
    """Append the rollout, tag, probe and refusal stages of arm `a` to `stages`; return the
    names the tables stage waits for. `source` is an external series ('' = the trained arm)."""
    sz = spec.sizes
    common = {"v": STAGES_VERSION, "seed": spec.seed}
    analysis_stages: list[str] = []
    if spec.evals:
        stages.append(
            Stage(
                f"rollout.{a.name}",
                _rollout,
                deps=deps,
                params={
                    **common,
                    "source": source,
                    # fields/size only when set: runs made before they existed stay valid.
                    "evals": [
                        {
                            k: v
                            for k, v in e.to_dict().items()
                            if v or k not in ("fields", "size", "max_problems")
                        }
                        for e in spec.evals
                    ],
                    "sampling": spec.sampling.to_dict(),
                    "n": sz.eval_problems,
                    "samples": sz.samples,
                    "max_new_tokens": sz.max_new_tokens,
                    "device": spec.device,
                },
                outputs=(f"{TRACES_DIR}/{a.name}",),
                requires=("sftlens.rollout:generate_traces", "sftlens.rollout:GenerateConfig"),
                cost=sz.checkpoints * len(spec.evals) * sz.eval_problems / 40,
            )
        )
        analysis_stages.append(f"rollout.{a.name}")
        if spec.analysis.tag.enabled:
            stages.append(
                Stage(
                    f"tag.{a.name}",
                    _tag,
                    deps=(f"rollout.{a.name}",),
                    params={
                        **common,
                        "ruleset": spec.analysis.ruleset,
                        **_calibration_params(spec.analysis.tag.calibration),
                    },
                    outputs=(
                        f"{TAGS_DIR}/{a.name}.jsonl",
                        f"{PROBES_DIR}/{a.name}/appropriateness",
                    ),
                    requires=(
                        "sftlens.trace_tagger:Tagger",
                        "sftlens.probes:appropriateness_table",
                    ),
                    cost=0.3,
                )
            )
            analysis_stages.append(f"tag.{a.name}")
    if spec.analysis.probe:
        analysis_stages += probe_stages(spec, a, stages, source, deps)
    if spec.analysis.refusal:
        stages.append(
            Stage(
                f"refusal.{a.name}",
                _refusal,
                deps=deps,
                params={
                    **common,
                    "source": source,
                    "n": sz.refusal_prompts,
                    "device": spec.device,
                    # Prompt files, when the spec names them (the toy world's otherwise).
                    **(
                        {
                            "harmful": spec.analysis.refusal_harmful,
                            "harmless": spec.analysis.refusal_harmless,
                        }
                        if spec.analysis.refusal_harmful
                        else {}
                    ),  # fmt: skip
                },
                outputs=(f"{PROBES_DIR}/{a.name}/refusal",),
                requires=(
                    "sftlens.probes:refusal_report",
                    "sftlens.probes:RefusalDirectionConfig",
                ),
                cost=sz.checkpoints * 0.3,
            )
        )
        analysis_stages.append(f"refusal.{a.name}")
    return analysis_stages


def _linear_grid(total: int, n: int) -> list[int]:
    return sorted({int(round(total * i / (n - 1))) for i in range(n)})


# --------------------------------------------------------------------------- data


def _base_corpus(ctx: StageContext) -> None:
    from sftlens.tasks import build_base_corpus

    recs = build_base_corpus(ctx.params["n"], seed=_seed(ctx.spec, 1))
    write_jsonl(ctx.path(BASE_CORPUS), recs)


def _sft_data(ctx: StageContext) -> None:
    from sftlens.tasks import get_task

    d = ctx.spec.dataset(ctx.stage.name.split(".", 2)[2])
    out = ctx.path(sft_path(d.name))
    if d.path:
        src = Path(d.path)
        if not src.is_file():
            raise DataError(f"data.{d.name}.path: {src} not found; check the path in the spec.")
        if src.suffix.lower() in (".jsonl", ".ndjson"):
            # Copied so the run folder holds what was trained on (and fingerprints it).
            shutil.copyfile(src, out)
        else:
            from sftlens.tasks import load_sft_records

            write_jsonl(out, load_sft_records(src))
        return
    task = get_task(d.task)
    if d.style not in task.styles:
        raise ConfigError(
            f"data.{d.name}.style: {d.style!r} is not a style of task {d.task!r}; "
            f"use one of {', '.join(task.styles)}."
        )
    # One problem pool for every style: the same seed and n give the same problems.
    seed = _seed(ctx.spec, 2)
    problems = task.generate(ctx.params["n"], seed, split="train", **d.knobs)
    examples = [task.render(p, d.style, seed + i, **d.render) for i, p in enumerate(problems)]
    write_jsonl(out, examples)


def _tokenizer(ctx: StageContext) -> None:
    from sftlens.tasks import build_tokenizer

    texts = [r["text"] for r in read_jsonl(ctx.run_dir / BASE_CORPUS, required=("text",))]
    for d in ctx.spec.data:
        for r in read_jsonl(ctx.run_dir / sft_path(d.name)):
            texts.append(f"{r.get('prompt', '')}\n{r.get('response', '')}")
    tok = build_tokenizer(texts, vocab_size=ctx.params["vocab_size"])
    with atomic_dir(ctx.path(TOKENIZER_DIR)) as tmp:
        tok.save_pretrained(str(tmp))


# --------------------------------------------------------------------------- training


def _train(ctx: StageContext, **kw: Any) -> None:
    from sftlens.train import TrainConfig, train

    cfg = TrainConfig.from_dict(
        {
            "seed": ctx.params["seed"],
            "batch_size": ctx.params["batch_size"],
            "max_length": ctx.params["seq_len"],
            "resume": ctx.resuming,
            "schedule": {"kind": "cosine", "warmup_frac": 0.05},
            **kw,
        }
    )
    train(cfg)


def pretrain_recipe(run_dir: Path, params: dict) -> str:
    """The recipe fingerprint of a pretraining stage (see `sftlens.experiments._bases`)."""
    from sftlens.experiments._bases import recipe

    return recipe(params, run_dir / BASE_CORPUS, run_dir / TOKENIZER_DIR)


def _pretrain(ctx: StageContext) -> None:
    p = ctx.params
    if ctx.spec.shipped_bases and not ctx.resuming:
        from sftlens.experiments._bases import find_shipped, install

        fp = pretrain_recipe(ctx.run_dir, p)
        src = find_shipped(p["base"], fp)
        if src is not None:
            # The same recipe: the shipped base is the checkpoint this stage would write.
            out = ctx.path(f"{MODELS_DIR}/{p['model']['name']}")
            install(src, out / CHECKPOINTS_DIR / checkpoint_dirname(max(1, p["steps"])))
            ctx.progress.note(f"{ctx.stage.name}: shipped base installed (recipe {fp})")
            return
    _train(
        ctx,
        objective="pretrain",
        model=p["base"],
        tokenizer=str(ctx.run_dir / TOKENIZER_DIR),
        data=str(ctx.run_dir / BASE_CORPUS),
        out_dir=str(ctx.path(f"{MODELS_DIR}/{p['model']['name']}")),
        max_steps=max(1, p["steps"]),
        lr=p["lr"],
        schedule={"kind": p["schedule"], "warmup_frac": 0.05},
        # Corpus records are short: pack them into full rows (they never attend each other).
        packing=True,
        max_length=p["pretrain_seq_len"],
        grid={"kind": "list", "steps": [max(1, p["steps"])]},
    )


def base_checkpoint(run_dir: Path, spec: ExperimentSpec, model_name: str) -> str:
    """The model an arm starts from: the pretrained toy base's last checkpoint, or the HF id."""
    m = spec.model(model_name)
    if m.pretrain:
        return find_checkpoints(run_dir / MODELS_DIR / m.name)[-1].path
    return m.base


def _sft(ctx: StageContext) -> None:
    p = ctx.params
    arm = p["arm"]
    kw: dict[str, Any] = {}
    m = ctx.spec.model(arm["model"])
    if m.is_toy and not m.pretrain:
        kw["tokenizer"] = str(ctx.run_dir / TOKENIZER_DIR)
    _train(
        ctx,
        objective="sft",
        model=base_checkpoint(ctx.run_dir, ctx.spec, arm["model"]),
        data=str(ctx.run_dir / sft_path(arm["data"])),
        out_dir=str(ctx.path(f"{MODELS_DIR}/{arm['name']}")),
        max_steps=p["steps"],
        subset_size=p["subset_size"],
        lr=arm["lr"],
        schedule={"kind": arm["schedule"], "warmup_frac": arm["warmup_fraction"]},
        grid={"kind": "list", "steps": [s for s in p["grid"] if s > 0]},
        **kw,
    )


# --------------------------------------------------------------------------- sampling, tagging


def _rollout(ctx: StageContext) -> None:
    from sftlens.rollout import GenerateConfig, generate_traces

    p = ctx.params
    arm = _arm(ctx)
    s = p["sampling"]
    evals = []
    for i, e in enumerate(p["evals"]):
        evals.append(
            {
                "name": e["name"],
                "task": e["task"],
                "n": min(p["n"], e.get("max_problems") or p["n"]),
                "seed": _seed(ctx.spec, 100 + i),
                "split": e["split"],
                "knobs": e["knobs"],
                "file": e["path"] or "",
            }
        )
        if e["path"]:
            # File sets: a seeded subsample of the eval's size, else the scale's.
            evals[-1].update(fields=e.get("fields") or {}, sample=e.get("size") or p["n"])
    cfg = GenerateConfig.from_dict(
        {
            "models": [{"path": _series(ctx), "name": arm}],
            "eval_sets": evals,
            "sampling": {
                "n": p["samples"],
                "temperature": s["temperature"],
                "top_p": s["top_p"],
                "max_new_tokens": p["max_new_tokens"],
                "seed": _seed(ctx.spec, 3),
            },
            "engine": s["backend"],
            "batch_size": s["batch_size"],
            "device": p["device"],
            "out": str(ctx.path(f"{TRACES_DIR}/{arm}")),
        }
    )
    n_ck = len(resolve_series(_series(ctx), fetch=False).checkpoints)
    done = [0]

    def log(msg: str) -> None:
        # One line per checkpoint from the sweep: count them for the progress display.
        if "completions to sample" in msg or "skipped" in msg:
            done[0] += 1
            ctx.step(done[0], n_ck, "checkpoint")

    generate_traces(cfg, log=log)


def traces_file(run_dir: Path, arm: str) -> Path:
    return run_dir / TRACES_DIR / arm / "traces.jsonl"


def _calibration_params(calibration: str | None) -> dict:
    """The tag stage's calibration and the fit's id (so a refitted file re-runs the stage)."""
    if calibration is None:
        return {}
    from sftlens.trace_tagger import Calibration

    path = calibration if calibration == "default" else str(Path(calibration).resolve())
    cal = Calibration.resolve(path)
    return {"calibration": path, "calibration_id": cal.id}


def _tag(ctx: StageContext) -> None:
    from sftlens.trace_tagger import Tagger

    arm = _arm(ctx)
    traces = list(read_jsonl(traces_file(ctx.run_dir, arm), required=("id", "completion")))
    kwargs = {"calibration": ctx.params.get("calibration")}
    if ctx.params["ruleset"] != "default":
        kwargs["ruleset"] = ctx.params["ruleset"]
    tagger = Tagger(**kwargs)
    out = []
    tags = tagger.tag_many(tr["completion"] for tr in traces)
    for i, (tr, t) in enumerate(zip(traces, tags, strict=True)):
        out.append({"id": tr["id"], **t})
        if (i + 1) % 50 == 0:
            ctx.step(i + 1, len(traces), "trace")
    write_jsonl(ctx.path(f"{TAGS_DIR}/{arm}.jsonl"), out)
    # Are the behaviours used appropriately (backtracks from real dead ends, true checks)?
    from sftlens.probes import appropriateness_table

    table = appropriateness_table(traces, out)
    keep = table["metric"].str.contains("precision|correct_rate|appropriate", regex=True)
    table = table[keep].rename(columns={"task": "eval"})
    with atomic_dir(ctx.path(f"{PROBES_DIR}/{arm}/appropriateness")) as tmp:
        write_parquet(table, tmp / PROBE_TABLE)


# Refusal-report metric -> report metric.
REFUSAL_METRICS = {
    "refusal_rate_harmful": "refusal_rate",
    "cosine_to_base": "cosine_to_base",
    "auroc": "auroc",
}


def _refusal(ctx: StageContext) -> None:
    from sftlens.probes import RefusalDirectionConfig, refusal_report

    arm = _arm(ctx)
    n = ctx.params["n"]
    cfg = RefusalDirectionConfig(
        n_train=n,
        n_val=max(4, n // 2),
        n_eval=n,
        seed=_seed(ctx.spec, 5),
        device=ctx.params["device"],
        model_name=arm,
        harmful=ctx.params.get("harmful") or "",
        harmless=ctx.params.get("harmless") or "",
        plots=False,
        # Keep every prompt: early checkpoints of a toy model refuse nothing yet, and the
        # direction is compared across checkpoints on the same prompts.
        filter_prompts=False,
    )
    with atomic_dir(ctx.path(f"{PROBES_DIR}/{arm}/refusal")) as tmp:
        raw = refusal_report(_series(ctx), tmp / "raw", cfg)
        t = raw[raw["metric"].isin(list(REFUSAL_METRICS))].copy()
        t["metric"] = t["metric"].map(REFUSAL_METRICS)
        t["model"] = arm
        write_parquet(
            t[["model", "step", "metric", "value"]].astype({"step": int}), tmp / PROBE_TABLE
        )


# --------------------------------------------------------------------------- tables, report


def _tables(ctx: StageContext) -> None:
    from sftlens.experiments._tables import build_tables

    with atomic_dir(ctx.path(TABLES_DIR)) as tmp:
        build_tables(ctx.run_dir, ctx.spec, tmp)


def _report(ctx: StageContext) -> None:
    from sftlens.experiments._report import write_report

    write_report(ctx.run_dir)
