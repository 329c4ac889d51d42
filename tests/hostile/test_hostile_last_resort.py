"""An unexpected exception is a bug: one line saying so and where the traceback went, exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from sftlens.cli import app, main


@pytest.fixture
def broken_verb():
    """A verb with a real bug in it, registered for this test only."""

    def broken(n: int = 3) -> None:
        """Look up a key that is not there."""
        print({"a": 1}["b" * n])  # KeyError: a bug, not bad input

    app.command("broken-for-test")(broken)
    yield
    app.registered_commands.pop()


def test_unexpected_exception_is_one_line_exit_1_with_traceback_file(broken_verb, capsys):
    with pytest.raises(SystemExit) as ex:
        main(["broken-for-test", "--n", "2"])
    err = capsys.readouterr().err
    assert ex.value.code == 1
    assert err.count("\n") == 1 and err.startswith("error: internal error (KeyError)")
    assert "bug in sftlens" in err and "Traceback" not in err
    path = Path(err.strip().rsplit(" ", 1)[-1])
    try:
        text = path.read_text(encoding="utf-8")
        assert "Traceback" in text and "KeyError: 'bb'" in text
        assert text.startswith("command: sftlens broken-for-test --n 2")
    finally:
        path.unlink(missing_ok=True)
