"""Strong vs weak as one number: the difference in matched selectivity, and a verdict.

Both models are probed on the same problems, so one bootstrap over the union of their problems
resamples both at once: the interval of the difference is the interval of a paired statistic.
Each model's selectivity is taken at its best layer (highest point estimate); because that layer
was chosen among several, decodability is decided on a Bonferroni-widened interval
(``lo_adj``: level ``1 - (1 - ci) / n_layers``), not on the plain one shown beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sftlens.core import DataError, percentile_ci
from sftlens.probes._matched import fold_auroc, group_weights

VERDICTS = {
    "strong_only": "procedure decodable in strong and not weak",
    "both": "procedure decodable in both",
    "neither": "procedure decodable in neither",
    "weak_only": "procedure decodable in weak and not strong",
}


def _selectivity_draws(
    scores: Any, w_of: Any, design: str, probe: str
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``{hook: [1 + n_boot]}`` selectivity draws (column 0: the point estimate) and counts."""
    blk = scores[scores["design"] == design] if "design" in scores.columns else scores
    if blk.empty:
        raise DataError(f"no {design!r} rows in the probe scores; was the matched set empty?")
    surf = blk[blk["probe"] == "surface"]
    w = w_of(surf["group"].astype(str).to_numpy())
    y = surf["y"].to_numpy()
    fold = surf["fold"].to_numpy()
    s_auc = fold_auroc(y, surf["score"].to_numpy(), fold, w)
    out = {}
    for hook, g in blk[blk["probe"] != "surface"].groupby("hook", sort=False):
        pr = g[g["probe"] == probe]
        if pr.empty:
            continue
        sh = g[g["probe"] == "shuffled"]
        auc = fold_auroc(pr["y"].to_numpy(), pr["score"].to_numpy(), fold, w)
        ctrl = s_auc
        if not sh.empty:
            ctrl = np.fmax(s_auc, fold_auroc(sh["y"].to_numpy(), sh["score"].to_numpy(), fold, w))
        out[str(hook)] = auc - ctrl
    if not out:
        raise DataError(f"no {probe!r} probe rows in the {design!r} scores.")
    counts = {
        "n": int(len(y)),
        "n_pos": int(y.sum()),
        "n_groups": int(surf["group"].nunique()),
        "surface_auroc": float(s_auc[0]),
    }
    return out, counts


def selectivity_difference(
    strong: Any,
    weak: Any,
    design: str = "matched",
    probe: str = "logreg",
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Each model's best-layer selectivity and strong minus weak, with paired bootstrap intervals.

    Args:
        strong: out-of-fold scores of the strong model (the ``scores`` of `matched_probe`:
            ``design, group, y, hook, probe, score``).
        weak: the same for the weak model, on the same problems.
        design: ``matched`` (default) or ``unmatched``.
        probe: the probe kind compared (``logreg`` or ``diffmean``).
        n_boot: bootstrap resamples over the union of both models' problems.
        ci: interval level.
        seed: resampling seed.

    Returns:
        ``{"strong": {...}, "weak": {...}, "difference", "lo", "hi", "ci", "design"}``; each
        model's dict holds ``hook``, ``selectivity``, ``lo``, ``hi``, ``lo_adj`` (the lower end
        of the interval widened for the choice among ``n_layers`` layers), ``n_layers``, ``n``,
        ``n_pos``, ``n_groups`` and ``surface_auroc`` (the surface baseline on that design).
    """
    groups = np.concatenate(
        [strong["group"].astype(str).to_numpy(), weak["group"].astype(str).to_numpy()]
    )
    universe = np.unique(groups)

    def w_of(g: np.ndarray) -> np.ndarray:
        return group_weights(g, universe, n_boot, seed)

    res: dict[str, Any] = {"design": design, "ci": ci}
    best = {}
    for name, scores in (("strong", strong), ("weak", weak)):
        draws, counts = _selectivity_draws(scores, w_of, design, probe)
        hook = max(draws, key=lambda h: draws[h][0])
        d = draws[hook]
        lo, hi = percentile_ci(d[1:], ci)
        lo_adj, _ = percentile_ci(d[1:], 1 - (1 - ci) / len(draws))
        res[name] = {
            "hook": hook,
            "selectivity": float(d[0]),
            "lo": lo,
            "hi": hi,
            "lo_adj": lo_adj,
            "n_layers": len(draws),
            **counts,
        }
        best[name] = d
    diff = best["strong"] - best["weak"]
    res["difference"] = float(diff[0])
    res["lo"], res["hi"] = percentile_ci(diff[1:], ci)
    return res


def procedure_verdict(result: Mapping[str, Any], margin: float = 0.0) -> dict[str, str]:
    """Say whether the procedure is decodable in the strong model, the weak one, both or neither.

    A model's procedure is *decodable* when the lower end of its layer-corrected selectivity
    interval (``lo_adj``, else ``lo``) is above `margin`: its best probe beats the surface
    baseline on the matched set and the shuffled-label control, beyond resampling noise.

    Args:
        result: the output of `selectivity_difference` (``strong`` and ``weak`` dicts with
            ``selectivity``, ``lo``, ``hi``, optionally ``lo_adj`` and ``hook``; ``difference``,
            ``lo``, ``hi`` for strong minus weak).
        margin: the selectivity a probe must exceed (AUROC points; 0 = any reliable gain).

    Returns:
        ``{"verdict": key, "text": sentence}``; key is one of ``strong_only``, ``both``,
        ``neither``, ``weak_only`` and the sentence starts with its `VERDICTS` phrase
        ("procedure decodable in strong and not weak", ...), then gives both selectivities and
        the difference with their intervals, and says when the difference's interval
        includes 0.
    """
    for key in ("strong", "weak"):
        if key not in result or "selectivity" not in result[key]:
            raise DataError(f"procedure_verdict: {key!r} selectivity missing from the result.")
    dec = {
        k: float(result[k].get("lo_adj", result[k].get("lo", float("nan")))) > margin
        for k in ("strong", "weak")
    }
    key = {
        (True, False): "strong_only",
        (True, True): "both",
        (False, False): "neither",
        (False, True): "weak_only",
    }[(dec["strong"], dec["weak"])]

    def one(k: str) -> str:
        r = result[k]
        where = f" at {r['hook']}" if r.get("hook") else ""
        return f"{k} {r['selectivity']:+.2f} [{r['lo']:+.2f}, {r['hi']:+.2f}]{where}"

    text = f"{VERDICTS[key]}: selectivity over the matched surface baseline {one('strong')}, "
    text += f"{one('weak')}"
    if "difference" in result:
        lo, hi = result.get("lo", float("nan")), result.get("hi", float("nan"))
        text += f"; strong minus weak {result['difference']:+.2f} [{lo:+.2f}, {hi:+.2f}]"
        if lo <= 0 <= hi:
            text += " (its interval includes 0)"
    return {"verdict": key, "text": text + "."}


def compare_steps(
    strong: Any, weak: Any, names: tuple[str, str] = ("strong", "weak"), **kw: Any
) -> Any:
    """`selectivity_difference` and `procedure_verdict` at every step both models have.

    Args:
        strong, weak: out-of-fold scores with a ``step`` column (``matched_scores.parquet``).
        names: the two models' names, written into the table.
        **kw: passed to `selectivity_difference` (``design``, ``probe``, ``n_boot``, ...).

    Returns:
        One row per step where both models have `design` rows: ``step, strong, weak``, each model's ``*_selectivity``, ``*_lo``,
        ``*_hi``, ``*_lo_adj``, ``*_hook``, ``*_surface_auroc``, ``*_n`` and ``*_n_pos`` (on
        the matched design, the pairs), ``difference, lo, hi, verdict, text``.
    """
    import pandas as pd

    design = kw.get("design", "matched")
    rows = []
    for step in sorted(set(strong["step"]) & set(weak["step"])):
        a, b = strong[strong["step"] == step], weak[weak["step"] == step]
        if not ((a["design"] == design).any() and (b["design"] == design).any()):
            continue  # too few states to match at this step in one of the models
        r = selectivity_difference(a, b, **kw)
        v = procedure_verdict(r)
        row: dict[str, Any] = {"step": int(step), "strong": names[0], "weak": names[1]}
        for k in ("strong", "weak"):
            m = r[k]
            row.update(
                {
                    f"{k}_selectivity": m["selectivity"],
                    f"{k}_lo": m["lo"],
                    f"{k}_hi": m["hi"],
                    f"{k}_lo_adj": m["lo_adj"],
                    f"{k}_hook": m["hook"],
                    f"{k}_surface_auroc": m["surface_auroc"],
                    f"{k}_n": m["n"],
                    f"{k}_n_pos": m["n_pos"],
                }
            )
        row.update({"difference": r["difference"], "lo": r["lo"], "hi": r["hi"], **v})
        rows.append(row)
    return pd.DataFrame(rows)
