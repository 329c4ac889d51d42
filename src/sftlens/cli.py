"""The `sftlens` command: one verb per stage, each a thin wrapper over an importable function.

Each stage package owns its verbs in ``<package>/_cli.py`` with a ``register(app)`` function;
this module assembles them and turns every `SftlensError` into one line on stderr and exit 2.
Heavy libraries (torch, transformers, spaCy) are imported inside the commands, so ``--help`` is
fast.
"""

from __future__ import annotations

import importlib
import sys

import typer

from sftlens.core import EXIT_USAGE, SftlensError

app = typer.Typer(
    name="sftlens",
    help=(
        "See what reasoning SFT taught a model: make task data, train a checkpoint grid, sample "
        "and score every checkpoint, tag reasoning behaviours, probe activations and refusal "
        "directions, and write a report.\n\n"
        "Examples:\n\n"
        "  sftlens quickstart                      # the toy world end to end, on CPU\n\n"
        "  sftlens data countdown --n 1000 --style cot --out data/cd.jsonl\n\n"
        "  sftlens train --config configs/train_toy.yaml\n\n"
        "  sftlens tag traces.jsonl --text-field completion --out tags.jsonl"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def version() -> None:
    """Print the versions sftlens records in every manifest (python, torch, transformers, ...).

    Example:

      sftlens version
    """
    import json

    from sftlens.core import environment

    typer.echo(json.dumps(environment(), indent=2))


# Verb modules in pipeline order; each defines register(app).
VERB_MODULES = (
    "sftlens.tasks._cli",
    "sftlens.train._cli",
    "sftlens.rollout._cli",
    "sftlens.trace_tagger._cli",
    "sftlens.probes._cli",
    "sftlens.probes._refusal_cli",
    "sftlens.experiments._cli",
)

for _name in VERB_MODULES:
    try:
        _mod = importlib.import_module(_name)
    except ModuleNotFoundError as _e:
        # A stage package that has no verbs yet is simply not listed.
        if _e.name != _name:
            raise
        continue
    _mod.register(app)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit; bad input prints one line and exits 2, never a traceback."""
    try:
        rv = app(args=argv, prog_name="sftlens", standalone_mode=False)
    except SftlensError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted; rerun the same command to resume.", err=True)
        sys.exit(130)
    except typer.TyperException as e:
        # Usage errors (bad option value, missing option): one line naming the option.
        if type(e).__name__ == "NoArgsIsHelpError":
            e.show()
            sys.exit(0)
        ctx = getattr(e, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        message = " ".join(e.format_message().split())
        typer.echo(f"error: {message}{hint}", err=True)
        sys.exit(getattr(e, "exit_code", 2))
    sys.exit(rv if isinstance(rv, int) else 0)


__all__ = ["EXIT_USAGE", "app", "main"]

if __name__ == "__main__":
    main()
