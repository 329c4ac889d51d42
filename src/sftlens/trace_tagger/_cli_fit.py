"""``sftlens tag-fit`` and ``sftlens tag-eval``: fit the tagger to labelled traces, and check it."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from sftlens.core import ConfigError
from sftlens.trace_tagger._ruleset import RULESET_ID

_MAP_HELP = "JUDGE_TAG=LABEL, repeatable: which judge tags mean which tagger label."


def _fmt(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def _ci(m: dict, key: str) -> str:
    lo_hi = m["ci"].get(key)
    if not lo_hi or any(v is None or math.isnan(v) for v in lo_hi):
        return ""
    return f" [{lo_hi[0]:.2f}, {lo_hi[1]:.2f}]"


def _table(rows: list[dict], first: tuple[str, ...]) -> list[str]:
    head = " | ".join(first)
    lines = [f"| {head} | P | R | F1 [95% CI] | count corr [95% CI] | count ratio | "
             "predicted | judge | chunks |",
             "|" + "---|" * (len(first) + 8)]  # fmt: skip
    for m in rows:
        cells = " | ".join(str(m[k]) for k in first)
        lines.append(
            f"| {cells} | {_fmt(m['precision'])} | {_fmt(m['recall'])} | "
            f"{_fmt(m['f1'])}{_ci(m, 'f1')} | {_fmt(m['count_corr'])}{_ci(m, 'count_corr')} | "
            f"{_fmt(m['count_ratio'])} | {m['n_pred']} | {m['n_judge']} | {m['n_chunks']} |"
        )
    return lines


def tag_fit_cmd(
    labelled: list[Path] = typer.Argument(..., metavar="LABELS.jsonl...", help="Labelled traces."),
    maps: list[str] = typer.Option(..., "--map", help=_MAP_HELP),
    out: Path = typer.Option(..., "--out", help="Calibration JSON to write."),
    ruleset: str = typer.Option(RULESET_ID, help="Rule-set id whose hits are features."),
    c: float = typer.Option(0.1, "--c", help="Inverse L2 strength of the logistic regression."),
    n_boot: int = typer.Option(1000, help="Bootstrap resamples (by trace) for the intervals."),
    seed: int = typer.Option(0, help="Seed of the bootstrap and the learning curve's samples."),
) -> None:
    """Fit a learned layer over the rules to your own sentence labels.

    Each file holds one trace per line (id, text, chunks with start, end, text, tags). Tags
    not named by --map are negatives; a label is fitted only on files that use a tag mapped
    to it. The first half of each file's problems (sorted; a problem is a 'problem_id' field,
    else the shared last '/' part of ids, else the trace) tunes; the rest is held out. Prints
    held-out and tuning P/R/F1 and per-trace count correlation with bootstrap intervals, the
    rules alone beside them, and a learning curve. Deterministic.

    On a judge's labels map its tags, e.g. --map self_checking=verification --map
    Backtracking=backtracking; the toy world's ground truth (`sftlens data labelled`) uses
    backtrack and verify.

    Example:

      sftlens data countdown --n 40 --style cot --out cd.jsonl

      sftlens data labelled cd.jsonl --out labels.jsonl

      sftlens tag-fit labels.jsonl --map backtrack=backtracking \\
        --map verify=verification --out my-tagger.json --n-boot 100

      sftlens tag cd.jsonl --text-field response --calibration my-tagger.json \\
        --out tags.jsonl
    """
    from sftlens.trace_tagger._fit import FitConfig, fit_calibration
    from sftlens.trace_tagger._labelled import parse_maps

    if n_boot < 0 or c <= 0:
        raise ConfigError(f"--n-boot must be >= 0 and --c > 0, got {n_boot} and {c}.")
    cal = fit_calibration(labelled, parse_maps(maps), FitConfig(c=c, n_boot=n_boot, seed=seed),
                          ruleset=ruleset)  # fmt: skip
    cal.save(out)
    for f in cal.model["training_files"]:
        typer.echo(f"{f['name']}: {f['traces']} traces, {f['sentences']} sentences, grouped by "
                   f"{f['grouped_by']}; {len(f['held_out_groups'])} held-out groups")  # fmt: skip
    typer.echo("")
    for line in _table(cal.model["figures"], ("file", "split", "label", "tagger")):
        typer.echo(line)
    typer.echo("\nlearning curve (held-out F1 after fitting on N tuning sentences):")
    for p in cal.model["learning_curve"]:
        typer.echo(f"  {p['file']} {p['label']}: N={p['sentences']}: F1 {_fmt(p['f1'])}, "
                   f"count corr {_fmt(p['count_corr'])}")  # fmt: skip
    typer.echo(f"\nfit {cal.id} over rules {cal.ruleset} -> {out}")


def tag_eval_cmd(
    labelled: Path = typer.Argument(..., metavar="LABELS.jsonl", help="Labelled traces."),
    maps: list[str] = typer.Option(..., "--map", help=_MAP_HELP),
    calibration: str | None = typer.Option(
        None, "--calibration", help="Fitted layer file (tag-fit), or 'default' for the shipped one."
    ),
    tags: list[Path] = typer.Option(
        [],
        "--tags",
        help="Tags JSONL of the labelled file's texts (e.g. from tag --judge), "
        "scored beside the rules; repeatable.",
    ),
    ruleset: str = typer.Option(RULESET_ID, help="Rule-set id."),
    split: str = typer.Option("all", help="Problems to score: all, tuning or held-out."),
    n_boot: int = typer.Option(1000, help="Bootstrap resamples (by trace) for the intervals."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
    confusion: int = typer.Option(5, help="Judge tags shown per label for false positives."),
) -> None:
    """Agreement of the tagger with labelled traces, per label: precision, recall, F1, the rank
    correlation of per-trace counts (Spearman) and the count ratio, with bootstrap intervals by
    trace, and what the judge labelled each false positive instead. With --calibration the
    rules alone are scored beside the fitted tagger.

    On a judge's labels map its tags (--map self_checking=verification); the toy world's
    ground truth (`sftlens data labelled`) uses backtrack and verify.

    Example:

      sftlens data countdown --n 40 --style cot --out cd.jsonl

      sftlens data labelled cd.jsonl --out labels.jsonl

      sftlens tag-eval labels.jsonl --map backtrack=backtracking \\
        --map verify=verification

      sftlens tag-eval labels.jsonl --map verify=verification \\
        --calibration default --split held-out --n-boot 100

      sftlens tag cd.jsonl --text-field response --out tags.jsonl

      sftlens tag-eval labels.jsonl --map verify=verification --tags tags.jsonl
    """
    from sftlens.trace_tagger._labelled import parse_maps
    from sftlens.trace_tagger._tageval import TagsFile, evaluate_labelled
    from sftlens.trace_tagger._tagger import get_tagger

    if n_boot < 0:
        raise ConfigError(f"--n-boot must be >= 0, got {n_boot}.")
    taggers = {"rules": get_tagger(ruleset)}
    if calibration is not None:
        taggers["fitted"] = get_tagger(ruleset, calibration)
    for path in tags:
        taggers[path.name] = TagsFile(path)
    rows, info = evaluate_labelled(labelled, parse_maps(maps), taggers, split=split,
                                   n_boot=n_boot, seed=seed)  # fmt: skip
    typer.echo(f"{info['file']}: split {info['split']}, {info['traces']} traces, "
               f"{info['chunks']} chunks (problems grouped by {info['grouped_by']}); "
               f"intervals resample {rows[0]['units'] if rows else 'traces'}")  # fmt: skip
    for lab in info["skipped_labels"]:
        typer.echo(f"{lab}: skipped (the file never uses a tag mapped to it)")
    typer.echo("")
    for line in _table(rows, ("tagger", "label")):
        typer.echo(line)
    typer.echo("\nfalse positives: what the judge labelled them instead (chunks)")
    for m in rows:
        top = list(m["false_positive_tags"].items())[:confusion]
        typer.echo(f"  {m['tagger']} {m['label']}: " + ", ".join(f"{t} {n}" for t, n in top))
    typer.echo("\n" + "; ".join(f"{name}: {t.tag_id}" for name, t in taggers.items()))


def register(app: typer.Typer) -> None:
    """Add tag-fit and tag-eval to the `sftlens` app."""
    app.command("tag-fit")(tag_fit_cmd)
    app.command("tag-eval")(tag_eval_cmd)
