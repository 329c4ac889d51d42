"""``sftlens probe fit``: probes on any cache, plain or in the matched design.

Plain: `fit_probes` per hook with grouped CV and both controls. ``--matched``: `matched_probe`
on the same rows, so a user's own traces get the instrument the toy world's dead-end probe
has: states of the label's two classes paired on what a surface reader sees, the surface
baseline measured on that matched set, selectivity with intervals over problems; and with
``--compare`` a second model's cache of the same problems as one paired number
(`selectivity_difference`, `procedure_verdict`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sftlens.core import ConfigError, DataError, out_file

# What a surface reader of a sentence boundary sees in a trace cache (`_surface`): the token
# just written and the window of recent tokens (must be equal: the baseline reads both), the
# position in the response and the sentence count (must be close).
TRACE_EXACT = ("token_id", "recent_ids")
TRACE_NEAR = ("resp_pos", "step_idx")
MIN_PAIRS = 10
SCORES_SUFFIX = "_scores.parquet"
COMPARE_SUFFIX = "_compare.json"
ROLES = ("cache", "compare")  # the positional cache, then --compare's


def match_columns(columns: Any, exact: str | None, near: str | None) -> tuple[list, list]:
    """The ``(exact, near)`` surface columns to match on, from the flags or the cache's columns.

    Unset flags take the dead-end defaults (`MATCH_EXACT`, `MATCH_NEAR`) when the cache holds
    the Countdown state columns, else the trace defaults (`TRACE_EXACT`, `TRACE_NEAR`), keeping
    the columns present. A named column the cache lacks is a `ConfigError` naming it.
    """
    from sftlens.probes._matched import MATCH_EXACT, MATCH_NEAR

    cols = list(columns)
    dead_end = all(c in cols for c in MATCH_EXACT)
    chosen = []
    for flag, text, default in (
        ("--exact", exact, MATCH_EXACT if dead_end else TRACE_EXACT),
        ("--near", near, MATCH_NEAR if dead_end else TRACE_NEAR),
    ):
        if text is None:
            chosen.append([c for c in default if c in cols])
            continue
        names = [c.strip() for c in text.split(",") if c.strip()]
        missing = [c for c in names if c not in cols]
        if missing:
            raise ConfigError(
                f"{flag} {missing[0]!r}: not a column of the cache index; columns: "
                f"{', '.join(cols)}."
            )
        chosen.append(names)
    return chosen[0], chosen[1]


def matched_fit(
    cache_dir: Path,
    label: str,
    where: str | None,
    exact: list[str],
    near: list[str],
    caliper: float = 0.25,
    n_splits: int = 5,
    n_boot: int = 1000,
    seed: int = 0,
    min_pairs: int = MIN_PAIRS,
    cache: Any = None,
) -> tuple[Any, Any]:
    """`matched_probe` on one cache, refusing a matched set too small to mean anything.

    `cache` is the `ActivationCache` of `cache_dir` when the caller has it open already.

    Returns:
        ``(table, scores)`` of `matched_probe`, with ``cache``, ``match_exact``,
        ``match_near`` and ``caliper`` columns on the table and ``cache`` on the scores.

    Raises:
        DataError: the label or a column to match on is missing, the label is not 0/1, or
            fewer than `min_pairs` states of a class or matched pairs (naming the counts and
            the fix).
    """
    import pandas as pd

    from sftlens.probes._cache import ActivationCache
    from sftlens.probes._fit import select_rows
    from sftlens.probes._matched import matched_probe

    cache = cache if cache is not None else ActivationCache(cache_dir)
    index = cache.index
    if label not in index.columns:
        raise DataError(
            f"{cache_dir}: label {label!r} is not a column of the cache index; columns: "
            f"{', '.join(index.columns)}."
        )
    missing = [c for c in (*exact, *near) if c not in index.columns]
    if missing:
        raise DataError(
            f"{cache_dir}: no column {missing[0]!r} to match on; give both caches the same kind "
            "(`probe cache` with the same --data or --traces positions)."
        )
    sub = index[select_rows(index, where)]
    y = pd.to_numeric(sub[label], errors="coerce")
    if y.isna().any() or not y.isin([0, 1]).all():
        raise DataError(f"{cache_dir}: label {label!r} must be 0/1 in every selected row.")
    n_pos = int(y.sum())
    n_neg, n_groups = len(sub) - n_pos, int(sub["group"].nunique())
    counts = (
        f"{cache_dir}: {label} has {n_pos} positive and {n_neg} negative states in {n_groups} "
        f"problems" + (f" where {where}" if where else "")
    )
    if min(n_pos, n_neg) < min_pairs or n_groups < 2:
        raise DataError(
            f"{counts}; the matched design needs {min_pairs} of each in 2 or more problems; "
            "cache more traces (more problems)."
        )
    table, scores = matched_probe(
        cache, index, label, where=where, exact=exact, near=near, caliper=caliper,
        n_splits=n_splits, n_boot=n_boot, seed=seed,
    )  # fmt: skip
    n_pairs = int(table["n_pairs"].iloc[0])
    if n_pairs < min_pairs or "matched" not in set(table["design"]):
        raise DataError(
            f"{counts}, but only {n_pairs} surface-matched pairs (need {min_pairs}); cache more "
            "traces (more problems), or loosen the match: fewer --exact columns (e.g. --exact "
            "token_id) or a wider --caliper."
        )
    table = table.assign(
        cache=str(cache_dir),
        match_exact=",".join(exact),
        match_near=",".join(near),
        caliper=float(caliper),
    )
    return table, scores.assign(cache=str(cache_dir))


def design_line(head: str, g: Any) -> str:
    """One design of a matched table as a line: states, pairs, the surface baseline's AUROC on
    that design and the best layer's logistic selectivity with its interval."""
    sel = g[(g["probe"] == "logreg") & (g["metric"] == "selectivity")]
    surf = g[(g["probe"] == "surface") & (g["metric"] == "auroc")]
    if sel.empty or surf.empty or sel["value"].isna().all():
        # Too few matched states at this checkpoint for a selectivity to exist.
        return f"{head}: too few matched states for a probe"
    b = sel.loc[sel["value"].idxmax()]
    return (
        f"{head}: {int(b['n'])} states, {int(b['n_pairs'])} pairs; "
        f"surface AUROC {surf['value'].iloc[0]:.3f}; best selectivity {b['value']:+.3f} "
        f"[{b['lo']:+.3f}, {b['hi']:+.3f}] at layer {int(b['layer'])}"
    )


def fit_cmd(
    cache_dir: Path = typer.Argument(..., help="a cache directory from `probe cache`"),
    label: str = typer.Option("dead_end", help="label column of the index"),
    where: str | None = typer.Option(None, help="row filter, e.g. \"position_kind == 'step_end'\""),
    out: Path = typer.Option(
        ..., "--out", "-o", callback=out_file, help="output table (.parquet; .csv beside)"
    ),
    n_splits: int = typer.Option(5, help="GroupKFold folds"),
    seed: int = typer.Option(0, help="fold, shuffle, matching and bootstrap seed"),
    matched: bool = typer.Option(
        False, "--matched", help="probe all rows and a surface-matched set (selectivity, CIs)"
    ),
    exact: str | None = typer.Option(
        None,
        help="--matched: columns a pair shares exactly (default: token_id,recent_ids on trace "
        "caches; the dead-end columns on Countdown caches)",
    ),
    near: str | None = typer.Option(
        None, help="--matched: columns a pair shares closely (default: resp_pos,step_idx)"
    ),
    caliper: float = typer.Option(
        0.25, help="--matched: largest difference on a --near column, in standard deviations"
    ),
    compare: Path | None = typer.Option(
        None,
        "--compare",
        help="--matched: a second model's cache of the same problems; strong (CACHE_DIR) "
        "minus weak selectivity and the verdict",
    ),
    n_boot: int = typer.Option(1000, help="--matched: bootstrap resamples over problems"),
    min_pairs: int = typer.Option(MIN_PAIRS, help="--matched: fewest matched pairs to report"),
) -> None:
    """Fit logistic and difference-in-means probes per hook with grouped CV and controls.

    With --matched: the matched design instead of the plain fit. States of the label's two
    classes are paired on what a surface reader sees (--exact, --near); probes, a
    shuffled-label control and the
    surface baseline are fitted on all rows and on the pairs; selectivity (probe AUROC minus
    the better control) gets a bootstrap interval over problems. On a trace cache at
    pre_sentence, --label tag_backtracking asks: does the model know a backtracking sentence
    follows, beyond what the text so far shows? Writes OUT (.csv beside) and the out-of-fold
    scores (OUT_scores.parquet); with --compare also OUT_compare.json.

    Example:

      sftlens run countdown_lab --scale micro --out toy

      sftlens data countdown --n 40 --style cot --split eval --out cd.jsonl

      sftlens probe cache toy/models/strong-cot/checkpoints/step-000003 \\
        -d cd.jsonl -o cache

      sftlens probe fit cache --label dead_end -o fit.parquet \\
        --where "position_kind == 'step_end'"

      sftlens data countdown --n 150 --style cot --split eval --out bt.jsonl

      sftlens tag bt.jsonl --text-field response --out bt-tags.jsonl

      sftlens probe cache toy/models/strong-cot/checkpoints/step-000003 \\
        --traces bt.jsonl --tags bt-tags.jsonl --kinds pre_sentence -o strong

      sftlens probe cache toy/models/weak-cot/checkpoints/step-000003 \\
        --traces bt.jsonl --tags bt-tags.jsonl --kinds pre_sentence -o weak

      sftlens probe fit strong --matched --label tag_backtracking \\
        --where "position_kind == 'pre_sentence'" --compare weak -o bt.parquet
    """
    from sftlens.core import parse_where, write_parquet, write_text

    if n_splits < 2:
        raise ConfigError(f"--n-splits {n_splits}: cross-validation needs at least 2 folds.")
    if where:
        parse_where(where)  # a filter outside the grammar fails before the cache is read
    if matched:
        _matched(cache_dir, label, where, out, n_splits, seed, exact, near, caliper, compare,
                 n_boot, min_pairs)  # fmt: skip
        return
    for flag, value in (("--exact", exact), ("--near", near), ("--compare", compare)):
        if value is not None:
            raise ConfigError(f"{flag} applies to the matched design; add --matched.")
    from sftlens.probes._cache import ActivationCache
    from sftlens.probes._fit import fit_probes

    cache = ActivationCache(cache_dir)
    table = fit_probes(cache, label=label, where=where, n_splits=n_splits, seed=seed)
    write_parquet(table, out)
    write_text(out.with_suffix(".csv"), table.to_csv(index=False))
    best = table[(table["probe"] == "logreg") & (table["metric"] == "auroc")]
    typer.echo(best[["hook", "value"]].to_string(index=False))


def _matched(cache_dir: Path, label: str, where: str | None, out: Path, n_splits: int,
             seed: int, exact: str | None, near: str | None, caliper: float,
             compare: Path | None, n_boot: int, min_pairs: int) -> None:  # fmt: skip
    """`probe fit --matched`: every check and fit first, then the files, then the lines."""
    import pandas as pd

    from sftlens.core import write_json, write_parquet, write_text
    from sftlens.probes._cache import ActivationCache
    from sftlens.probes._verdict import procedure_verdict, selectivity_difference

    if caliper <= 0:
        raise ConfigError(f"--caliper {caliper}: use a positive number of standard deviations.")
    if n_boot < 1:
        raise ConfigError(f"--n-boot {n_boot}: use 1 or more resamples.")
    if min_pairs < 2:
        raise ConfigError(f"--min-pairs {min_pairs}: a matched design needs 2 pairs or more.")
    caches = [cache_dir] + ([compare] if compare is not None else [])
    opened = [ActivationCache(c) for c in caches]  # both checked before either is fitted
    ex, nr = match_columns(opened[0].index.columns, exact, near)
    fits = [
        matched_fit(c, label, where, ex, nr, caliper, n_splits, n_boot, seed, min_pairs, cache=o)
        for c, o in zip(caches, opened, strict=True)
    ]
    # `role` says which argument rows came from (a cache may be compared with itself).
    roles = ROLES[: len(fits)]
    table = pd.concat(
        [t.assign(role=r) for (t, _), r in zip(fits, roles, strict=True)], ignore_index=True
    )
    scores = pd.concat(
        [s.assign(role=r) for (_, s), r in zip(fits, roles, strict=True)], ignore_index=True
    )
    result = None
    if compare is not None:
        (_, strong), (_, weak) = fits
        res = selectivity_difference(strong, weak, n_boot=n_boot, seed=seed)
        shared = len(set(strong["group"].astype(str)) & set(weak["group"].astype(str)))
        result = {
            **res, **procedure_verdict(res), "label": label, "where": where,
            "match_exact": ex, "match_near": nr, "caliper": caliper,
            "strong_cache": str(cache_dir), "weak_cache": str(compare),
            "shared_problems": shared,
        }  # fmt: skip
    write_parquet(scores, out.with_name(out.stem + SCORES_SUFFIX))
    if result is not None:
        write_json(out.with_name(out.stem + COMPARE_SUFFIX), result)
    write_text(out.with_suffix(".csv"), table.to_csv(index=False))
    write_parquet(table, out)  # last: its presence says the other files are complete
    typer.echo(
        f"{label}: matched on exact {', '.join(ex) or '(none)'}; near "
        f"{', '.join(nr) or '(none)'} (caliper {caliper:g} SD)"
    )
    for (c, _, design), g in table.groupby(["cache", "role", "design"], sort=False):
        typer.echo(design_line(f"{c} {design}", g))
    if result is not None:
        typer.echo(
            f"strong = {cache_dir}, weak = {compare} ({result['shared_problems']} problems in "
            f"both): {result['text']}"
        )
    typer.echo(f"-> {out}")
