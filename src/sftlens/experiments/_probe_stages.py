"""The probe stages of an experiment: the dead-end probe per arm, strong vs weak as one paired
number, and the causal check against random directions.

Graph (per spec, with ``analysis.probe``)::

    sft.<arm> ─> probe.<arm> ─┬─> probe.compare   (one strong and one weak arm on the same data)
                              └─> causal.<arm>    (when the scale sets ``causal_problems``)

``probe.compare`` reads both arms' out-of-fold scores on the same problems and writes
`sftlens.probes.compare_steps` (each model's matched selectivity, strong minus weak with a
paired bootstrap interval, and the verdict) per checkpoint. ``causal.<arm>`` steers and ablates
at the last checkpoint along the dead-end direction of the layer with the best matched
selectivity, and along random directions of the same norm (`sftlens.probes.causal_controls`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sftlens.core import DataError, atomic_dir, resolve_series, write_parquet
from sftlens.experiments._runner import Stage, StageContext
from sftlens.experiments._spec import ExperimentSpec
from sftlens.experiments._stage_helpers import stage_arm as _arm
from sftlens.experiments._stage_helpers import stage_seed as _seed
from sftlens.experiments._stage_helpers import stage_series as _series
from sftlens.experiments._tables import PROBE_TABLE

STAGES_VERSION = 1
PROBES_DIR = "probes"
COMPARE_DIR = f"{PROBES_DIR}/compare"
COMPARE_TABLE = "strong_vs_weak.parquet"
CAUSAL = "causal"
# The causal check's interventions: steering strengths in class-mean separations, random
# directions of the same norm, and ablation of each direction.
CAUSAL_ALPHAS = (-2.0, 2.0)
CAUSAL_RANDOM = 4
CAUSAL_BATCH = 100


def strong_weak_arms(spec: ExperimentSpec) -> tuple[str, str] | None:
    """(strong arm, weak arm) trained on the same data: the report's strong-vs-weak pairing
    (`sftlens.experiments._findings.strong_weak_pair`) over the spec's trained arms."""
    from sftlens.experiments._findings import strong_weak_pair

    return strong_weak_pair(
        (a.name, spec.model(a.model).base, a.data) for a in spec.arms if not a.external
    )


def probe_knobs(spec: ExperimentSpec) -> dict:
    """Generation knobs of the probed problems: those of the first SFT data set of the probe
    task, so the probe reads the kind of problem the models were trained on."""
    for d in spec.data:
        if d.task == spec.analysis.probe_task and not d.path:
            return dict(d.knobs)
    return {}


def probe_stages(
    spec: ExperimentSpec, a: Any, stages: list[Stage], source: str, deps: tuple[str, ...]
) -> list[str]:
    """Append arm `a`'s probe stage (and its causal check) to `stages`; return their names."""
    sz = spec.sizes
    common = {"v": STAGES_VERSION, "seed": spec.seed}
    stages.append(
        Stage(
            f"probe.{a.name}",
            _probe,
            deps=deps,
            params={
                **common,
                "source": source,
                "task": spec.analysis.probe_task,
                "knobs": probe_knobs(spec),
                "n": sz.probe_problems,
                "folds": sz.probe_folds,
                "device": spec.device,
            },
            outputs=(f"{PROBES_DIR}/{a.name}/dead_end",),
            requires=("sftlens.probes:dead_end_probe", "sftlens.probes:ProbeConfig"),
            cost=sz.checkpoints * 0.3 * max(1.0, sz.probe_problems / 64),
        )
    )
    names = [f"probe.{a.name}"]
    if sz.causal_problems and spec.analysis.probe_task == "countdown":
        stages.append(
            Stage(
                f"{CAUSAL}.{a.name}",
                _causal,
                deps=(f"probe.{a.name}",),
                params={
                    **common,
                    "source": source,
                    "knobs": probe_knobs(spec),
                    "n": sz.causal_problems,
                    "max_new_tokens": sz.max_new_tokens,
                    "alphas": list(CAUSAL_ALPHAS),
                    "random": CAUSAL_RANDOM,
                    "device": spec.device,
                },
                outputs=(f"{PROBES_DIR}/{a.name}/{CAUSAL}",),
                requires=("sftlens.probes:causal_controls",),
                cost=sz.causal_problems * (1 + 3 * (1 + CAUSAL_RANDOM)) / 40,
            )
        )
        names.append(f"{CAUSAL}.{a.name}")
    return names


def compare_stage(spec: ExperimentSpec, stages: list[Stage]) -> list[str]:
    """Append ``probe.compare`` when the spec has a strong and a weak arm on the same data."""
    pair = strong_weak_arms(spec) if spec.analysis.probe else None
    if pair is None:
        return []
    stages.append(
        Stage(
            "probe.compare",
            _compare,
            deps=tuple(f"probe.{name}" for name in pair),
            params={"v": STAGES_VERSION, "seed": spec.seed, "pair": list(pair)},
            outputs=(COMPARE_DIR,),
            requires=("sftlens.probes:compare_steps",),
            cost=0.3,
        )
    )
    return ["probe.compare"]


def _probe(ctx: StageContext) -> None:
    from sftlens.core import read_parquet
    from sftlens.probes import MATCHED_TABLE, ProbeConfig, dead_end_probe

    arm = _arm(ctx)
    cfg = ProbeConfig(
        n_problems=ctx.params["n"],
        seed=_seed(ctx.spec, 4),
        device=ctx.params["device"],
        n_splits=ctx.params["folds"],
        knobs=ctx.params["knobs"],
        # The report shows step-end positions only; the pre-next positions would double the cost.
        kinds=["step_end"],
    )
    # Not an atomic dir: the probe skips checkpoints it already finished, so an interrupted
    # stage resumes per checkpoint; the normalised table is written last.
    out = ctx.path(f"{PROBES_DIR}/{arm}/dead_end")
    raw = dead_end_probe({arm: _series(ctx)}, out / "raw", cfg)
    matched = out / "raw" / MATCHED_TABLE
    matched_table = read_parquet(matched) if matched.is_file() else None
    write_parquet(normalise_probe_table(raw, matched_table), out / PROBE_TABLE)


def normalise_probe_table(raw: Any, matched: Any = None) -> Any:
    """Dead-end probe rows for the report: logistic-probe AUROC and the shuffled control, and
    with the matched design's table, the selectivity over the surface baseline.

    Uses step-end positions over all steps; columns ``model, step, layer, metric, value`` (and
    ``lo, hi`` for ``selectivity``). ``selectivity`` rows are the matched design's (the
    unmatched one's where a checkpoint had too few states to match); ``surface_auroc`` is the
    surface baseline on the same rows (layer -1); ``matched_pairs`` is the number of matched
    dead/live pairs (layer -1).
    """
    import pandas as pd

    sel = raw[(raw["position_kind"] == "step_end") & (raw["subset"] == "all_steps")]
    sel = sel[(sel["metric"] == "auroc") & (sel["layer"] >= 0)]
    rows = []
    for probe, metric in (
        ("logreg", "auroc"),
        ("shuffled", "control_auroc"),
        ("surface", "surface_auroc"),
    ):
        part = sel[sel["probe"] == probe][["model", "step", "layer", "value"]].copy()
        part["metric"] = metric
        rows.append(part)
    if matched is not None and not matched.empty:
        m = matched[matched["position_kind"] == "step_end"]
        for (_model, _step), g in m.groupby(["model", "step"]):
            g = g[g["design"] == ("matched" if (g["design"] == "matched").any() else "unmatched")]
            keep = ["model", "step", "layer", "value", "lo", "hi", "design"]
            s = g[(g["probe"] == "logreg") & (g["metric"] == "selectivity")][keep]
            rows.append(s.assign(metric="selectivity"))
            surf = g[(g["probe"] == "surface") & (g["metric"] == "auroc")][keep]
            rows.append(surf.assign(metric="surface_auroc"))
            if "n_pairs" in g.columns and (g["design"] == "matched").any() and not surf.empty:
                pairs = g.iloc[:1][["model", "step", "design"]].assign(layer=-1)
                pairs["value"] = float(g["n_pairs"].iloc[0])
                rows.append(pairs.assign(metric="matched_pairs"))
    return pd.concat(rows, ignore_index=True)


def _arm_scores(run_dir: Path, arm: str) -> Any:
    """The out-of-fold matched-design scores of every checkpoint an arm's probe stage wrote."""
    import pandas as pd

    from sftlens.probes import MATCHED_SCORES

    raw = run_dir / PROBES_DIR / arm / "dead_end" / "raw" / arm
    paths = sorted(raw.glob(f"*/{MATCHED_SCORES}"))
    if not paths:
        raise DataError(
            f"{raw}: no {MATCHED_SCORES}; rerun the probe stage (`--force probe.{arm}`)."
        )
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)


def _compare(ctx: StageContext) -> None:
    from sftlens.probes import compare_steps

    strong, weak = ctx.params["pair"]
    a, b = (_arm_scores(ctx.run_dir, name) for name in (strong, weak))
    a, b = (s[s["position_kind"] == "step_end"] for s in (a, b))
    table = compare_steps(a, b, names=(strong, weak), seed=_seed(ctx.spec, 6))
    with atomic_dir(ctx.path(COMPARE_DIR)) as tmp:
        write_parquet(table, tmp / COMPARE_TABLE)


def best_matched_layer(table: Any, model: str) -> tuple[int, int]:
    """``(step, layer)``: the last checkpoint of `model` in a normalised probe table and its
    layer with the highest matched selectivity (the best AUROC when there is none)."""
    t = table[table["model"] == model]
    metric = "selectivity" if (t["metric"] == "selectivity").any() else "auroc"
    t = t[(t["metric"] == metric) & (t["layer"] >= 0) & t["value"].notna()]
    if t.empty:
        raise DataError(f"no dead-end probe rows for {model!r}; rerun its probe stage.")
    t = t[t["step"] == t["step"].max()]
    best = t.loc[t["value"].idxmax()]
    return int(best["step"]), int(best["layer"])


def _causal(ctx: StageContext) -> None:
    from sftlens.core import checkpoint_dirname, read_parquet
    from sftlens.probes import causal_controls
    from sftlens.tasks import get_task

    arm = _arm(ctx)
    probe_dir = ctx.path(f"{PROBES_DIR}/{arm}/dead_end")
    step, layer = best_matched_layer(read_parquet(probe_dir / PROBE_TABLE), arm)
    series = resolve_series(_series(ctx), fetch=False).checkpoints
    ck = [c for c in series if c.step == step]
    if not ck:
        raise DataError(f"{_series(ctx)}: no checkpoint at step {step}, which was probed.")
    directions = probe_dir / "raw" / arm / checkpoint_dirname(step)
    problems = get_task("countdown").generate(
        ctx.params["n"], _seed(ctx.spec, 7), split="eval", **ctx.params["knobs"]
    )
    with atomic_dir(ctx.path(f"{PROBES_DIR}/{arm}/{CAUSAL}")) as tmp:
        t = causal_controls(
            ck[-1].path, directions, layer, ctx.params["alphas"], n_random=ctx.params["random"],
            problems=problems, seed=_seed(ctx.spec, 7), max_new_tokens=ctx.params["max_new_tokens"],
            device=ctx.params["device"], out=tmp / "raw.parquet",
            # One batch per pass where it fits: a batch costs its longest completion, and
            # steered models often run to the token limit.
            batch_size=min(len(problems), CAUSAL_BATCH),
        )  # fmt: skip
        write_parquet(t.assign(model=arm, step=step, layer=layer), tmp / PROBE_TABLE)
