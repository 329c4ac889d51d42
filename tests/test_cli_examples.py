"""Every example in every `--help` runs as written, in a fresh folder, and shows on its own lines.

The examples of one help screen are a recipe: they run in order in one fresh folder, so a screen
can make what its later examples read. The only change made to an example is ``--dry-run`` for
a command that has that flag and is not asked for the micro scale. New verbs are picked up
from the command tree; nothing here lists them.

Screens whose recipe builds the micro toy world (`sftlens run ... --scale micro`: 80 s on two
idle cores, 4-5 minutes on a loaded machine) are marked slow and run in `make test-all`; every
other screen runs in the default `make test`, and the two checks above every screen do too.
"""

from __future__ import annotations

import re
import shlex
import shutil

import pytest
import typer.main

from sftlens.cli import app

PREFIX = "sftlens "
WIDTH = "80"  # the width of a terminal nobody resized, and of CI logs


def _screens() -> dict[str, object]:
    """Every help screen: "" for the top level, "data countdown" for a subcommand, ..."""
    out = {}
    stack = [((), typer.main.get_command(app))]
    while stack:
        path, cmd = stack.pop()
        out[" ".join(path)] = cmd
        for name, sub in (getattr(cmd, "commands", None) or {}).items():
            stack.append(((*path, name), sub))
    return dict(sorted(out.items()))


SCREENS = _screens()


def examples(text: str) -> list[str]:
    """The example commands in a help text: lines starting with ``sftlens ``, a line ending in
    a backslash continued on the next."""
    found: list[str] = []
    lines = iter(text.splitlines())
    for line in lines:
        line = line.strip()
        if not line.startswith(PREFIX):
            continue
        while line.endswith("\\"):
            line = line[:-1].rstrip() + " " + next(lines, "").strip()
        found.append(line)
    return found


def _leaf(argv: list[str]):
    """The command an argv runs (the deepest command its leading words name)."""
    cmd = SCREENS[""]
    for word in argv:
        sub = (getattr(cmd, "commands", None) or {}).get(word)
        if sub is None:
            break
        cmd = sub
    return cmd


def _as_run(example: str) -> list[str]:
    argv = shlex.split(example, comments=True)[1:]
    flags = {o for p in _leaf(argv).params for o in getattr(p, "opts", ())}
    micro = any(a == "micro" and b == "--scale" for b, a in zip(argv, argv[1:], strict=False))
    if "--dry-run" in flags and "--dry-run" not in argv and not micro:
        argv.append("--dry-run")
    return argv


def test_every_help_screen_has_an_example_that_is_a_real_command():
    for name, cmd in SCREENS.items():
        found = examples(cmd.help or "")
        assert found, f"`sftlens {name} --help` shows no example"
        for example in found:
            argv = shlex.split(example, comments=True)[1:]
            # It names a command, not a group (a misspelled verb would only print help).
            assert not getattr(_leaf(argv), "commands", None), example


def test_examples_keep_their_lines_at_80_columns(run_cli, monkeypatch):
    """rich re-wraps help text to the terminal; an example longer than a line would be split
    mid-argument and could not be copied. The rendered help shows each example whole."""
    monkeypatch.setenv("COLUMNS", WIDTH)
    for name, cmd in SCREENS.items():
        rc, out, err = run_cli(*name.split(), "--help")
        assert rc == 0, err
        rendered = examples(out.replace("│", " "))
        written = examples(re.sub(r"\\\[", "[", cmd.help or ""))
        assert rendered == written, f"`sftlens {name} --help` splits an example"


@pytest.fixture(scope="module")
def first_example_results(tmp_path_factory):
    """What a screen's first example left in its fresh folder, by command line: screens that
    start from the same command (e.g. the micro toy run) copy that folder instead of rerunning
    it. The command is seeded, so the copy is what a rerun would write."""
    return {"root": tmp_path_factory.mktemp("first-examples"), "done": {}}


def _builds_toy_world(screen: str) -> bool:
    return any(
        _as_run(e)[:1] == ["run"] and "--dry-run" not in _as_run(e)
        for e in examples(SCREENS[screen].help or "")
    )


@pytest.mark.parametrize(
    "screen",
    [pytest.param(s, marks=pytest.mark.slow) if _builds_toy_world(s) else s for s in SCREENS],
    ids=lambda s: s or "sftlens",
)
def test_every_example_runs_in_a_fresh_folder(screen, tmp_path, monkeypatch, run_cli,
                                              first_example_results):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    cache = first_example_results
    for i, example in enumerate(examples(SCREENS[screen].help or "")):
        argv = _as_run(example)
        key = " ".join(argv)
        if i == 0 and key in cache["done"]:
            shutil.copytree(cache["done"][key], tmp_path, dirs_exist_ok=True)
            continue
        rc, out, err = run_cli(*argv)
        assert rc == 0, f"`sftlens {screen} --help`: `{example}` failed:\n{err[-2000:]}"
        if i == 0:
            saved = cache["root"] / str(len(cache["done"]))
            shutil.copytree(tmp_path, saved)
            cache["done"][key] = saved
