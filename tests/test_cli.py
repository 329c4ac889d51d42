"""The `sftlens` entry point: every verb has --help with an example; usage errors are one line."""

from __future__ import annotations

import typer.main

from sftlens.cli import app

EXPECTED_VERBS = {
    "data",
    "train",
    "generate",
    "tag",
    "probe",
    "refusal",
    "run",
    "report",
    "quickstart",
}


def _all_command_paths():
    """Every leaf command as an argv prefix, e.g. ("data", "countdown")."""
    root = typer.main.get_command(app)
    stack = [((), root)]
    while stack:
        path, cmd = stack.pop()
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                stack.append(((*path, name), sub))
        else:
            yield path


def test_top_level_help_lists_verbs(run_cli):
    rc, out, _ = run_cli("--help")
    assert rc == 0
    root = typer.main.get_command(app)
    assert set(root.commands) >= EXPECTED_VERBS, sorted(set(root.commands))
    for verb in EXPECTED_VERBS:
        assert verb in out


def test_every_verb_help_has_an_example(run_cli):
    paths = list(_all_command_paths())
    assert len(paths) >= len(EXPECTED_VERBS)
    for path in paths:
        rc, out, err = run_cli(*path, "--help")
        assert rc == 0, (path, err)
        assert "Example" in out, f"`sftlens {' '.join(path)} --help` shows no example"


def test_usage_errors_are_one_line_exit_2(run_cli):
    rc, out, err = run_cli("data", "countdown", "--n", "abc", "--out", "x.jsonl")
    assert rc == 2
    assert err.strip().count("\n") == 0 and "--n" in err and "Traceback" not in err
    rc, _, err = run_cli("no-such-verb")
    assert rc == 2 and err.startswith("error:")
