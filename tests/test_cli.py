"""The `sftlens` entry point: verbs in pipeline order, readable options, one-line usage errors.

That every --help example runs is checked in test_cli_examples.py."""

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


def test_top_level_help_lists_verbs_in_pipeline_order(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    rc, out, _ = run_cli("--help")
    assert rc == 0
    root = typer.main.get_command(app)
    assert set(root.commands) >= EXPECTED_VERBS, sorted(set(root.commands))
    listed = [
        w for line in out.splitlines() if (w := line.strip("│ ").split(" ")[0]) in root.commands
    ]
    order = ["data", "train", "generate", "tag", "probe", "refusal", "run", "report", "version"]
    assert [v for v in listed if v in order] == order, listed


def test_flags_show_no_type_and_sampling_options_show_their_defaults(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    rc, out, _ = run_cli("generate", "--help")
    assert rc == 0
    assert "<bool>" not in out
    for flag, default in [("--n ", "1"), ("--temperature", "0.0"), ("--top-p", "1.0"),
                          ("--top-k", "0"), ("--max-new-tokens", "256"), ("--seed", "0")]:  # fmt: skip
        line = next(x for x in out.splitlines() if f"│ {flag}" in x)
        assert f"[default: {default}]" in line, line
    rc, out, _ = run_cli("run", "--help")
    assert "--list" not in out and "<bool>" not in out


def test_a_flag_left_out_keeps_the_config_file_value(tmp_path, tiny_model_dir):
    """Sampling defaults are shown in --help, yet a flag not given must not override the
    config file's value."""
    import yaml

    from sftlens.core import read_jsonl, write_text

    write_text(
        tmp_path / "gen.yaml",
        yaml.safe_dump(
            {
                "models": [{"path": str(tiny_model_dir)}],
                "eval_sets": [{"task": "countdown", "n": 2}],
                "sampling": {"max_new_tokens": 5, "stop": []},
                "out": str(tmp_path / "out"),
            }
        ),
    )
    from sftlens.cli import main

    try:
        main(["generate", str(tmp_path / "gen.yaml"), "--no-table", "--seed", "7"])
    except SystemExit as e:
        assert e.code == 0
    rows = list(read_jsonl(tmp_path / "out" / "traces.jsonl"))
    assert rows and all(r["sampling"]["max_new_tokens"] == 5 for r in rows)
    assert all(r["sampling"]["seed"] == 7 and r["sampling"]["stop"] == [] for r in rows)


def test_usage_errors_are_one_line_exit_2(run_cli):
    rc, out, err = run_cli("data", "countdown", "--n", "abc", "--out", "x.jsonl")
    assert rc == 2
    assert err.strip().count("\n") == 0 and "--n" in err and "Traceback" not in err
    rc, _, err = run_cli("no-such-verb")
    assert rc == 2 and err.startswith("error:")
