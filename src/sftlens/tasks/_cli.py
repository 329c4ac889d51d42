"""``sftlens data``: write task problems, SFT examples or the base corpus as JSONL; ``data stats``."""

from __future__ import annotations

from pathlib import Path

import click
import typer
from typer.core import TyperGroup

from sftlens.core import ConfigError, out_file, parse_overrides

TASK_COMMANDS = {
    "countdown": "Countdown: make a target from 3-4 numbers (styles cot, nocot, lowq, verbose).",
    "countdown-hard": "Harder Countdown with 5-6 numbers, for evaluation.",
    "route": "Route: find a path through one-way rooms or roads (the cross-domain task).",
    "harmful": "Harmful requests (8 categories); --split eval uses held-out templates only.",
    "harmless": "Harmless requests with templated helpful answers.",
}
EXAMPLES = {
    "countdown": "sftlens data countdown --n 1000 --seed 0 --style cot --out data/cd_cot.jsonl\n\n"
    "  sftlens data countdown --n 200 --split eval --out data/cd_eval.jsonl",
    "countdown-hard": "sftlens data countdown-hard --n 200 --split eval --out data/cd_hard.jsonl",
    "route": "sftlens data route --n 200 --split eval --knob n_nodes=7 --out route.jsonl"
    "\n\n  sftlens data route --n 1000 --style cot --out data/route_cot.jsonl",
    "harmful": "sftlens data harmful --n 100 --out data/harmful_eval.jsonl",
    "harmless": "sftlens data harmless --n 100 --out data/harmless_eval.jsonl",
}


class _DataGroup(TyperGroup):
    """Turns an unknown subcommand into one line (exit 2) instead of a usage screen."""

    def resolve_command(self, ctx: click.Context, args: list[str]):  # type: ignore[override]
        if args and not args[0].startswith("-") and self.get_command(ctx, args[0]) is None:
            known = ", ".join(self.list_commands(ctx))
            raise ConfigError(f"unknown data task {args[0]!r}; known: {known}.")
        return super().resolve_command(ctx, args)


def _knobs(items: list[str] | None) -> dict:
    for item in items or ():
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise ConfigError(f"--knob {item!r}: write it as key=value, e.g. --knob n_nodes=6.")
    return parse_overrides(items)


def _write(records: list[dict], out: Path) -> int:
    from sftlens.core import write_jsonl

    try:
        return write_jsonl(out, records)
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot write ({e.strerror}).") from None


def _run(task: str, n: int, seed: int, split, style, knob, out: Path) -> None:
    from sftlens.tasks._corpus import make_data

    if split is not None and split not in ("train", "eval"):
        raise ConfigError(f"--split {split!r}: use train or eval.")
    records = make_data(task, n, seed, split=split, style=style, knobs=_knobs(knob))
    count = _write(records, out)
    what = f"{style} examples" if style else ("records" if task == "base-corpus" else "problems")
    typer.echo(f"wrote {count} {task} {what} to {out}")


N_OPT = typer.Option(100, "--n", help="Number of records.")
SEED_OPT = typer.Option(0, "--seed", help="Seed; the same seed writes a byte-identical file.")
OUT_OPT = typer.Option(
    ..., "--out", callback=out_file, help="Output JSONL file (written atomically)."
)
KNOB_OPT = typer.Option(
    None, "--knob", help="Task knob key=value (repeatable), e.g. n_nodes=6 or max_numbers=5."
)


def _task_command(name: str):
    def command(
        n: int = N_OPT,
        seed: int = SEED_OPT,
        split: str | None = typer.Option(
            None, "--split", help="train or eval (default: train; eval for harmful/harmless)."
        ),
        style: str | None = typer.Option(
            None, "--style", help="Write SFT examples in this style (cot, nocot, lowq, verbose)."
        ),
        knob: list[str] | None = KNOB_OPT,
        out: Path = OUT_OPT,
    ) -> None:
        _run(name, n, seed, split, style, knob, out)

    command.__doc__ = (
        f"{TASK_COMMANDS[name]} Writes problem records, or with --style SFT examples with "
        f"response and ground-truth events.\n\nExample:\n\n  {EXAMPLES[name]}"
    )
    return command


def base_corpus(
    n: int = N_OPT,
    seed: int = SEED_OPT,
    knob: list[str] | None = typer.Option(
        None,
        "--knob",
        help="Mix share kind=weight (repeatable): arithmetic, countdown, route, chat_harmless, "
        "chat_harmful.",
    ),
    out: Path = OUT_OPT,
    split: str | None = typer.Option(None, "--split", hidden=True),
    style: str | None = typer.Option(None, "--style", hidden=True),
) -> None:
    """The base corpus for pretraining toy bases (arithmetic, answers-only problems, chat).

    Arithmetic in a few formats, Countdown and route problems with answers only (no CoT), and
    chat where harmless requests are answered and harmful ones refused (train templates only).

    Example:

      sftlens data base-corpus --n 2000 --seed 0 --out data/base.jsonl

      sftlens data base-corpus --n 500 --knob route=0 --knob arithmetic=0.5 \\
        --out base.jsonl
    """
    # --split/--style are accepted only to say clearly that they do not apply here.
    _run("base-corpus", n, seed, split, style, knob, out)


def stats(file: Path = typer.Argument(..., help="A JSONL file written by sftlens data.")) -> None:
    """Counts per task and style, mean response length in words, and events per record.

    Example:

      sftlens data countdown --n 100 --style cot --out data/cd_cot.jsonl

      sftlens data stats data/cd_cot.jsonl
    """
    from sftlens.core import read_jsonl
    from sftlens.tasks._corpus import data_stats

    rows = data_stats(list(read_jsonl(file)))
    typer.echo(f"{'task':<16}{'style/kind':<16}{'n':>8}{'words':>9}  events per record")
    for r in rows:
        ev = ", ".join(f"{k} {v:.2f}" for k, v in r["events"].items()) or "-"
        typer.echo(f"{r['task']:<16}{r['style']:<16}{r['n']:>8}{r['mean_words']:>9.1f}  {ev}")


def labelled(
    file: Path = typer.Argument(..., help="SFT examples written by sftlens data (--style)."),
    out: Path = OUT_OPT,
) -> None:
    """The ground truth of SFT examples as labelled traces, for tag-eval and tag-fit.

    One chunk per line of each response, tagged with the ground-truth events it overlaps
    (backtrack, verify, step), in the shape `sftlens tag-eval` and `sftlens tag-fit` read.

    Example:

      sftlens data countdown --n 40 --style cot --out cd.jsonl

      sftlens data labelled cd.jsonl --out labels.jsonl

      sftlens tag-eval labels.jsonl --map backtrack=backtracking \\
        --map verify=verification
    """
    from sftlens.core import read_jsonl
    from sftlens.tasks._labelled import labelled_traces

    records = labelled_traces(read_jsonl(file, required=("id",)), where=str(file))
    typer.echo(f"wrote {_write(records, out)} labelled traces to {out}")


def register(app: typer.Typer) -> None:
    """Add the ``data`` verb group to the ``sftlens`` app."""
    data = typer.Typer(
        cls=_DataGroup,
        no_args_is_help=True,
        help=(
            "Make task data: problems and SFT examples (with ground-truth events) for each "
            "task, the base corpus, and refusal-eval prompts.\n\n"
            "Examples:\n\n"
            "  sftlens data countdown --n 1000 --style cot --out data/cd_cot.jsonl\n\n"
            "  sftlens data route --n 200 --split eval --out data/route_eval.jsonl\n\n"
            "  sftlens data base-corpus --n 2000 --out data/base.jsonl\n\n"
            "  sftlens data stats data/cd_cot.jsonl"
        ),
    )
    for name in TASK_COMMANDS:
        data.command(name)(_task_command(name))
    data.command("base-corpus")(base_corpus)
    data.command("stats")(stats)
    data.command("labelled")(labelled)
    app.add_typer(data, name="data")
