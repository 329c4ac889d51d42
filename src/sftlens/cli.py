"""The `sftlens` command: one verb per stage, each a thin wrapper over an importable function.

Each stage package owns its verbs in ``<package>/_cli.py`` with a ``register(app)`` function;
this module assembles them and turns every `SftlensError` into one line on stderr and exit 2.
Heavy libraries (torch, transformers, spaCy) are imported inside the commands, so ``--help`` is
fast.
"""

from __future__ import annotations

import importlib
import inspect
import shlex
import sys
import warnings

import click
import typer
from rich.markup import escape
from typer.core import TyperGroup
from typer.main import get_command_name

from sftlens.core import EXIT_USAGE, SftlensError, SftlensWarning, enable_ctrl_c

# The shell's code for a run ended by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130

# Verb name -> position in the pipeline (filled as the verb modules register, below).
_RANK: dict[str, int] = {}


def _tidy_help(text: str | None) -> str | None:
    """Prose paragraphs joined into one line each (rich re-wraps them to the terminal), example
    paragraphs (indented lines) kept line by line, and rich markup characters escaped so a
    ``[...]`` in a help text prints as written."""
    if not text:
        return text
    paragraphs = []
    for para in inspect.cleandoc(text).split("\n\n"):
        if para.startswith(" "):
            paragraphs.append(para)
        else:
            paragraphs.append(" ".join(line.strip() for line in para.splitlines()))
    if len(paragraphs) > 1:
        # typer dedents the text after the summary as one block, ignoring its first line: an
        # empty first line keeps "Example:" in the margin, so the examples stay indented.
        paragraphs.insert(1, "")
    return escape("\n\n".join(paragraphs))


def _tidy(cmd: click.Command) -> None:
    """Tidy the help of `cmd` and every subcommand: prose re-flowed, examples kept on their own
    lines, and no ``<bool>`` type shown beside an on/off flag."""
    cmd.help = _tidy_help(cmd.help)
    # click builds --help lazily and caches it; build it now so it is tidied too.
    help_option = cmd.get_help_option(cmd.context_class(cmd))
    for param in [*cmd.params, *([help_option] if help_option else [])]:
        # Options carry help and may be flags; arguments do neither (duck-typed: typer's
        # option class is not click's).
        if getattr(param, "param_type_name", "") == "option":
            param.help = _tidy_help(param.help)
            if param.is_flag:
                param.metavar = ""
    for sub in (getattr(cmd, "commands", None) or {}).values():
        _tidy(sub)


class _Root(TyperGroup):
    """The root command: verbs listed in pipeline order, every help text tidied once."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _tidy(self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = super().list_commands(ctx)
        end = len(VERB_MODULES)
        return sorted(names, key=lambda n: (_RANK.get(n, end), names.index(n)))


app = typer.Typer(
    name="sftlens",
    help=(
        "See what reasoning SFT taught a model: make task data, train a checkpoint grid, sample "
        "and score every checkpoint, tag reasoning behaviours, probe activations and refusal "
        "directions, and write a report.\n\n"
        "Examples:\n\n"
        "  sftlens run countdown_lab --scale micro --out toy   # every stage, tiny\n\n"
        "  sftlens quickstart        # the toy world end to end on CPU, minutes\n\n"
        "  sftlens data countdown --n 100 --style cot --out data/cd.jsonl\n\n"
        "  sftlens tag data/cd.jsonl --text-field response --out tags.jsonl"
    ),
    cls=_Root,
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
    "sftlens.core._cli",
    "sftlens.tasks._cli",
    "sftlens.train._cli",
    "sftlens.rollout._cli",
    "sftlens.trace_tagger._cli",
    "sftlens.probes._cli",
    "sftlens.probes._refusal_cli",
    "sftlens.probes._merge_cli",
    "sftlens.experiments._cli",
)


def _registered_names() -> list[str]:
    names = [c.name or get_command_name(c.callback.__name__) for c in app.registered_commands]
    return names + [g.name for g in app.registered_groups if g.name]


for _rank, _name in enumerate(VERB_MODULES):
    try:
        _mod = importlib.import_module(_name)
    except ModuleNotFoundError as _e:
        # A stage package that has no verbs yet is simply not listed.
        if _e.name != _name:
            raise
        continue
    _mod.register(app)
    for _verb in _registered_names():
        _RANK.setdefault(_verb, _rank)
_RANK["version"] = len(VERB_MODULES)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # sftlens warnings are one line for the user; others keep Python's format.
    if issubclass(category, SftlensWarning):
        typer.echo(f"warning: {message}", err=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit; bad input prints one line and exits 2, never a traceback.

    Ctrl-C ends any verb with exit code 130 and the command that resumes it (every verb's
    outputs are written atomically or resumably, so rerunning the same command picks up).
    """
    # A Ctrl-C must stop the run even when SIGINT was inherited as ignored.
    enable_ctrl_c()
    warnings.showwarning = _show_warning
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        rv = app(args=args, prog_name="sftlens", standalone_mode=False)
    except SftlensError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _interrupted(args)
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
    except Exception as e:
        # Last resort: anything else is a bug in sftlens, not the user's input. Exit 1 (so 2
        # keeps meaning "fix your input") and keep the traceback in a file for the report.
        path = _write_traceback(e, argv)
        typer.echo(
            f"error: internal error ({type(e).__name__}); this is a bug in sftlens, please "
            f"report it with the traceback written to {path}",
            err=True,
        )
        sys.exit(EXIT_BUG)
    if rv == EXIT_INTERRUPTED:
        # typer turns a KeyboardInterrupt inside a command into a silent return of 130 (no
        # verb returns 130 itself): say what happened and how to go on.
        _interrupted(args)
    sys.exit(rv if isinstance(rv, int) else 0)


def _interrupted(args: list[str]) -> None:
    command = shlex.join(["sftlens", *args])
    typer.echo(f"interrupted; to resume, rerun the same command: {command}", err=True)
    sys.exit(EXIT_INTERRUPTED)


EXIT_BUG = 1


def _write_traceback(exc: BaseException, argv: list[str] | None) -> str:
    """Write the full traceback (and the command line) to a new file in the temp folder."""
    import tempfile
    import traceback

    text = "".join(traceback.format_exception(exc))
    command = " ".join(["sftlens", *(argv if argv is not None else sys.argv[1:])])
    try:
        fd, name = tempfile.mkstemp(prefix="sftlens-traceback-", suffix=".txt")
        with open(fd, "w", encoding="utf-8") as f:
            f.write(f"command: {command}\n\n{text}")
    except OSError:
        return "(the temp folder is not writable; rerun with python -X dev for the traceback)"
    return name


__all__ = ["EXIT_INTERRUPTED", "EXIT_USAGE", "app", "main"]

if __name__ == "__main__":
    main()
