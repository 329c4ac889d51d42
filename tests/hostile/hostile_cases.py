"""The hostile-input corpus: every verb against every hostile input that applies to it.

Each case builds its inputs in a fresh folder (nothing is checked in), runs the real CLI entry
point, and the runner checks the error contract: exit 2, one ``error:`` line naming the file,
line, key or option, no traceback, and the folder byte-for-byte as it was (no input changed,
no partial or stray file, no mode changed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path

from hostile_inputs import (
    DIRECTIONS,
    JSONL_HOSTILE,
    TAG_WRONG_TYPES,
    TAGS,
    TRACE_WRONG_TYPES,
    TRACES,
    WEIGHTS_HOSTILE,
    YAML_HOSTILE,
    jsonl,
    model_dir,
    safetensors_bytes,
)

__all__ = ["DEFAULT_IDS", "TRACES", "Case", "all_cases", "check_case", "jsonl", "run_in_process"]

# --------------------------------------------------------------------------- cases


@dataclasses.dataclass
class Case:
    """One hostile run: `build(folder)` writes the inputs and returns the argv."""

    id: str
    cause: str
    build: Callable[[Path], list[str]]
    needle: str  # text the one-line error must contain (file, line, key or option)


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def _pair_verbs(d: Path, traces: Path, tags: Path) -> dict[str, list[str]]:
    """The verbs that read a traces file and its tags together."""
    return {
        "tag_table": ["tag-table", tags, "--traces", traces, "--out", d / "out.parquet"],
        "tag_html": ["tag-html", tags, "--traces", traces, "--out", d / "out.html"],
        "appropriateness": [
            "probe",
            "appropriateness",
            "-t",
            traces,
            "--tags",
            tags,
            "-o",
            d / "out.parquet",
        ],  # fmt: skip
    }


# Verbs reading a traces file, and how to call them with it (companions are valid).
def _traces_verbs(d: Path, traces: Path) -> dict[str, list[str]]:
    tags = _write(d / "tags.jsonl", jsonl(TAGS))
    return {
        "score": ["score", traces, "-o", d / "out.jsonl"],
        "score_in_place": ["score", traces, "-o", traces],
        "table": ["table", traces, "-o", d / "out.parquet"],
        "tag": ["tag", traces, "--out", d / "out.jsonl"],
        **_pair_verbs(d, traces, tags),
        # The same file read as problems or as pretraining data by the verbs that take them.
        "data_stats": ["data", "stats", traces],
        "generate_eval": ["generate", "-m", "org/model", "-e", f"countdown@{traces}",
                          "-o", d / "gen"],
        "train_data": ["train", "--set", "model=toy-tiny", "--set", "objective=pretrain",
                       "--set", "text_field=completion", "--set", f"data={traces}",
                       "--set", "max_steps=1", "--out-dir", d / "run"],
    }  # fmt: skip


def _tags_verbs(d: Path, tags: Path) -> dict[str, list[str]]:
    traces = _write(d / "traces.jsonl", jsonl(TRACES))
    return {
        **_pair_verbs(d, traces, tags),
    }


TRACE_VERBS = ("score", "score_in_place", "table", "tag", "tag_table", "tag_html",
               "appropriateness", "data_stats", "generate_eval", "train_data")  # fmt: skip
TAG_VERBS = ("tag_table", "tag_html", "appropriateness")
# Verbs that read only the fields named in the trace contract (tag reads one text field).
TYPED_TRACE_VERBS = ("score", "table", "tag_table", "appropriateness")


def _jsonl_case(kind: str, verb: str, which: str) -> Case:
    cause, make, needle = JSONL_HOSTILE[kind]
    records = TRACES if which == "traces" else TAGS

    def build(d: Path) -> list[str]:
        f = _write(d / f"{which}.jsonl", make(records))
        verbs = _traces_verbs(d, f) if which == "traces" else _tags_verbs(d, f)
        return verbs[verb]

    needle = needle if needle.startswith(":") else needle
    full = f"{which}.jsonl{needle}" if needle.startswith(":") else needle
    return Case(f"{which}-{kind}-{verb}", cause, build, full)


def _type_case(kind: str, verb: str, which: str) -> Case:
    key, value = (TRACE_WRONG_TYPES if which == "traces" else TAG_WRONG_TYPES)[kind]

    def build(d: Path) -> list[str]:
        records = [dict(r) for r in (TRACES if which == "traces" else TAGS)]
        records[2][key] = value
        f = _write(d / f"{which}.jsonl", jsonl(records))
        verbs = _traces_verbs(d, f) if which == "traces" else _tags_verbs(d, f)
        return verbs[verb]

    return Case(f"{which}-{kind}-{verb}", "types", build, key)


def _path_cases() -> list[Case]:
    cases = []

    def folder_input(verb: str) -> Callable[[Path], list[str]]:
        def build(d: Path) -> list[str]:
            (d / "traces.jsonl").mkdir()
            return [str(a) for a in _traces_verbs(d, d / "traces.jsonl")[verb]]

        return build

    for verb in ("score", "table", "tag", "tag_table", "tag_html"):
        cases.append(Case(f"input-is-folder-{verb}", "paths", folder_input(verb), "is a folder"))

    def out_is_dir(verb: str) -> Callable[[Path], list[str]]:
        def build(d: Path) -> list[str]:
            traces = _write(d / "traces.jsonl", jsonl(TRACES))
            argv = [str(a) for a in _traces_verbs(d, traces)[verb]]
            (d / "outdir").mkdir()
            (d / "outdir" / "keep").write_text("x")
            return [str(d / "outdir") if a.startswith(str(d / "out.")) else a for a in argv]

        return build

    def out_under_file(verb: str) -> Callable[[Path], list[str]]:
        def build(d: Path) -> list[str]:
            traces = _write(d / "traces.jsonl", jsonl(TRACES))
            argv = [str(a) for a in _traces_verbs(d, traces)[verb]]
            _write(d / "blocker", "x")
            return [
                str(d / "blocker" / Path(a).name) if a.startswith(str(d / "out.")) else a
                for a in argv
            ]

        return build

    for verb in ("score", "table", "tag", "tag_table", "tag_html", "appropriateness"):
        cases.append(Case(f"out-is-folder-{verb}", "paths", out_is_dir(verb), "outdir"))
        cases.append(Case(f"out-under-file-{verb}", "paths", out_under_file(verb), "blocker"))

    def data_out(kind: str) -> Callable[[Path], list[str]]:
        def build(d: Path) -> list[str]:
            if kind == "dir":
                (d / "outdir").mkdir()
                return ["data", "route", "--n", "3", "--out", str(d / "outdir")]
            _write(d / "blocker", "x")
            return ["data", "route", "--n", "3", "--out", str(d / "blocker" / "o.jsonl")]

        return build

    cases.append(Case("out-is-folder-data", "paths", data_out("dir"), "outdir"))
    cases.append(Case("out-under-file-data", "paths", data_out("file"), "blocker"))

    def dir_out(argv_for: Callable[[Path], list[str]]) -> Callable[[Path], list[str]]:
        def build(d: Path) -> list[str]:
            _write(d / "blocker", "x")
            return argv_for(d)

        return build

    for name, argv_for in {
        "train": lambda d: ["train", "--out-dir", str(d / "blocker")],
        "generate": lambda d: ["generate", "-m", "x/y", "-e", "route", "-o", str(d / "blocker")],
        "run": lambda d: ["run", "countdown_lab", "--dry-run", "--out", str(d / "blocker")],
        "dead_end": lambda d: ["probe", "dead-end", "-m", "a=x", "-o", str(d / "blocker")],
        "refusal": lambda d: ["refusal", str(d), "--out", str(d / "blocker")],
    }.items():
        cases.append(Case(f"out-dir-is-file-{name}", "paths", dir_out(argv_for), "blocker"))
    return cases


def _weights_cases() -> list[Case]:
    cases = []
    for kind, (cause, needle) in WEIGHTS_HOSTILE.items():
        verbs: dict[str, Callable[[Path, Path], list[str]]] = {
            "generate": lambda d, m: [
                "generate",
                "-m",
                str(m),
                "-e",
                "route",
                "--eval-n",
                "2",
                "-o",
                str(d / "gen"),
            ],  # fmt: skip
            "refusal": lambda d, m: ["refusal", str(m), "--out", str(d / "ref")],
            "probe_cache": lambda d, m: [
                "probe",
                "cache",
                str(m),
                "-d",
                str(_write(d / "ex.jsonl", "")),
                "-o",
                str(d / "c"),
            ],  # fmt: skip
            "steer": lambda d, m: [
                "probe",
                "steer",
                str(m),
                "--directions",
                str(_write(d / "dir.safetensors", safetensors_bytes(DIRECTIONS))),
                "--layer",
                "0",
                "-o",
                str(d / "s.parquet"),
            ],  # fmt: skip
            "train": lambda d, m: [
                "train",
                "--set",
                f"model={m}",
                "--set",
                f"tokenizer={m}",
                "--set",
                "max_steps=1",
                "--set",
                f"data={_write(d / 'sft.jsonl', '')}",
                "--out-dir",
                str(d / "run"),
            ],  # fmt: skip
        }
        for verb, argv_for in verbs.items():

            def build(d: Path, kind=kind, argv_for=argv_for) -> list[str]:
                return argv_for(d, model_dir(d, kind))

            cases.append(Case(f"weights-{kind}-{verb}", cause, build, needle))
    return cases


def _yaml_cases() -> list[Case]:
    cases = []
    for kind, (cause, make, needle) in YAML_HOSTILE.items():
        verbs: dict[str, Callable[[Path], list[str]]] = {
            "run": lambda d, make=make: ["run", str(_write(d / "spec.yaml", make("name"))),
                                         "--dry-run", "--out", str(d / "run")],  # fmt: skip
            "train": lambda d, make=make: ["train", "--config",
                                           str(_write(d / "spec.yaml", make("lr")))],  # fmt: skip
            "generate": lambda d, make=make: [
                "generate", str(_write(d / "spec.yaml", make("models"))), "-o", str(d / "g")],
            "dead_end": lambda d, make=make: [
                "probe", "dead-end", "-m", "a=x", "--config",
                str(_write(d / "spec.yaml", make("layers"))), "-o", str(d / "p")],
            "refusal": lambda d, make=make: [
                "refusal", str(d), "--config", str(_write(d / "spec.yaml", make("layers"))),
                "--out", str(d / "r")],
        }  # fmt: skip
        for verb, build in verbs.items():
            full = f"spec.yaml{needle}" if needle.startswith(":") else needle
            cases.append(Case(f"yaml-{kind}-{verb}", cause, build, full))
    return cases


def _value_cases() -> list[Case]:
    def with_traces(*argv: str) -> Callable[[Path], list[str]]:
        def build(d: Path) -> list[str]:
            import pandas as pd

            _write(d / "traces.jsonl", jsonl(TRACES))
            _write(d / "tags.jsonl", jsonl(TAGS))
            _write(d / "dir.safetensors", safetensors_bytes(DIRECTIONS))
            table = {"model": ["m"] * 2, "task": ["t"] * 2, "metric": ["accuracy"] * 2,
                     "step": [0, 1], "value": [0.5, 0.4], "ci_low": [0.4, 0.3],
                     "ci_high": [0.6, 0.5]}  # fmt: skip
            pd.DataFrame(table).to_parquet(d / "table.parquet")
            return [a.replace("{d}", str(d)) for a in argv]

        return build

    T, G = "{d}/traces.jsonl", "{d}/tags.jsonl"
    out = "{d}/out.parquet"
    specs = {
        "table-n-boot-0": (["table", T, "-o", out, "--n-boot", "0"], "--n-boot"),
        "table-n-boot-neg": (["table", T, "-o", out, "--n-boot", "-5"], "--n-boot"),
        "table-ci-2": (["table", T, "-o", out, "--ci", "2"], "--ci"),
        "table-ci-nan": (["table", T, "-o", out, "--ci", "nan"], "--ci"),
        "tag-table-n-boot-neg": (
            ["tag-table", G, "--traces", T, "--out", out, "--n-boot", "-1"],
            "--n-boot",
        ),  # fmt: skip
        "tag-html-limit-neg": (
            ["tag-html", G, "--traces", T, "--out", "{d}/o.html", "--limit", "-1"],
            "--limit",
        ),  # fmt: skip
        "tag-workers-huge": (
            ["tag", T, "--out", "{d}/o.jsonl", "--workers", "100000"],
            "--workers",
        ),  # fmt: skip
        "tag-workers-0": (["tag", T, "--out", "{d}/o.jsonl", "--workers", "0"], "--workers"),
        "dip-missing-metric": (["dip", "{d}/table.parquet", "--metric", "nope"], "nope"),
        "dip-bad-direction": (
            ["dip", "{d}/table.parquet", "--direction", "sideways"],
            "--direction",
        ),  # fmt: skip
        "score-prefix-neg": (
            ["score", T, "-o", "{d}/o.jsonl", "--prefix-chars", "-3"],
            "--prefix-chars",
        ),  # fmt: skip
        "data-n-0": (["data", "route", "--n", "0", "--out", "{d}/o.jsonl"], "--n"),
        "data-n-huge": (["data", "route", "--n", "100000000000", "--out", "{d}/o.jsonl"], "--n"),
        "table-plot-unknown": (["table", T, "-o", out, "--plot", "nope"], "--plot"),
        "run-seed-neg": (
            ["run", "countdown_lab", "--dry-run", "--set", "seed=-1", "--out", "{d}/run"],
            "seed",
        ),
        "run-temperature-neg": (
            [
                "run",
                "countdown_lab",
                "--dry-run",
                "--set",
                "sampling.temperature=-1",
                "--out",
                "{d}/run",
            ],
            "temperature",
        ),
        "data-n-neg": (["data", "route", "--n", "-4", "--out", "{d}/o.jsonl"], "--n"),
        "train-lr-nan": (["train", "--set", "lr=.nan", "--out-dir", "{d}/r"], "lr"),
        "train-lr-inf": (["train", "--set", "lr=.inf", "--out-dir", "{d}/r"], "lr"),
        "generate-temp-nan": (
            ["generate", "-m", "x/y", "-e", "route", "--temperature", "nan", "-o", "{d}/g"],
            "temperature",
        ),  # fmt: skip
        "dead-end-n-problems-0": (
            ["probe", "dead-end", "-m", "a=x", "--n-problems", "0", "-o", "{d}/p"],
            "n_problems",
        ),  # fmt: skip
        "drift-n-problems-0": (
            ["probe", "drift", "-m", "a=x", "--n-problems", "0", "-o", "{d}/p"],
            "n_problems",
        ),  # fmt: skip
        "steer-n-problems-0": (
            [
                "probe",
                "steer",
                "x",
                "--directions",
                "{d}/dir.safetensors",
                "--layer",
                "0",
                "--n-problems",
                "0",
                "-o",
                out,
            ],
            "--n-problems",
        ),  # fmt: skip
    }
    cases = [Case(name, "values", with_traces(*argv), needle) for name, (argv, needle) in
             specs.items()]  # fmt: skip

    def fit_case(where_or_splits: list[str], needle: str) -> Callable[[Path], list[str]]:
        def build(d: Path) -> list[str]:
            from sftlens.core import write_json, write_jsonl

            c = d / "cache"
            c.mkdir()
            write_json(c / "cache.json", {"hooks": ["blocks.0.hook_resid_post"], "d_model": 2})
            write_jsonl(c / "shards.jsonl", [])
            return ["probe", "fit", str(c), "-o", str(d / "fit.parquet"), *where_or_splits]

        return build

    def unknown_task(d: Path) -> list[str]:
        from importlib.resources import files

        spec = files("sftlens.configs.experiments").joinpath("countdown_lab.yaml").read_text()
        assert "task: route" in spec
        _write(d / "spec.yaml", spec.replace("task: route", "task: no-such-task"))
        return ["run", str(d / "spec.yaml"), "--dry-run", "--out", str(d / "run")]

    cases.append(Case("run-unknown-task", "values", unknown_task, "no-such-task"))
    cases.append(Case("fit-n-splits-1", "values", fit_case(["--n-splits", "1"], "--n-splits"),
                      "--n-splits"))  # fmt: skip
    return cases


def _table_cases() -> list[Case]:
    """Parquet tables with a column missing (dip) and a run folder with a broken table."""

    def dip_missing(d: Path) -> list[str]:
        import pandas as pd

        pd.DataFrame({"model": ["m"], "step": [0], "metric": ["accuracy"]}).to_parquet(
            d / "table.parquet"
        )
        return ["dip", str(d / "table.parquet")]

    def dip_not_parquet(d: Path) -> list[str]:
        _write(d / "table.parquet", b"PAR1 not really")
        return ["dip", str(d / "table.parquet")]

    def report_missing(d: Path) -> list[str]:
        import pandas as pd

        (d / "run" / "tables").mkdir(parents=True)
        _write(d / "run" / "spec.yaml", "name: x\n")
        pd.DataFrame({"model": ["m"]}).to_parquet(d / "run" / "tables" / "evals.parquet")
        return ["report", str(d / "run")]

    return [
        Case("dip-missing-column", "types", dip_missing, "table.parquet"),
        Case("dip-not-parquet", "malformed", dip_not_parquet, "table.parquet"),
        Case("report-missing-column", "types", report_missing, "evals.parquet"),
    ]


def all_cases() -> list[Case]:
    """The full corpus."""
    cases: list[Case] = []
    for kind in JSONL_HOSTILE:
        # tag and tag-html read any JSONL of texts: a record without an id is numbered.
        verbs = TYPED_TRACE_VERBS if kind == "missing_key" else TRACE_VERBS
        if kind == "missing_nested_key":
            # The verbs that need the path (`table` reads any tool's traces and keys a
            # checkpoint by its step when the path is absent).
            verbs = ("score", "score_in_place")
        cases += [_jsonl_case(kind, verb, "traces") for verb in verbs]
        if kind != "missing_nested_key":
            cases += [_jsonl_case(kind, verb, "tags") for verb in TAG_VERBS]
    for kind in TRACE_WRONG_TYPES:
        # tag-table reads traces from any tool: only the fields it uses are checked.
        verbs = [
            v for v in TYPED_TRACE_VERBS if not (kind == "sample_idx_str" and v == "tag_table")
        ]
        cases += [_type_case(kind, verb, "traces") for verb in verbs]
    for kind in TAG_WRONG_TYPES:
        cases += [_type_case(kind, verb, "tags") for verb in TAG_VERBS]
    cases += _path_cases() + _weights_cases() + _yaml_cases() + _value_cases() + _table_cases()
    return cases


# One representative per cause for the default run.
DEFAULT_IDS = (
    "traces-malformed_last_line-score_in_place",
    "traces-deep_nesting-table",
    "traces-huge_int-tag",
    "traces-checkpoint_str-table",
    "tags-counts_list-tag_table",
    "out-is-folder-tag_table",
    "out-dir-is-file-generate",
    "weights-truncated-generate",
    "weights-pickle_only-refusal",
    "yaml-alias_bomb-run",
    "yaml-alias_bomb-dead_end",
    "table-n-boot-0",
    "tag-html-limit-neg",
    "dead-end-n-problems-0",
    "run-unknown-task",
    "dip-missing-column",
)


# --------------------------------------------------------------------------- runner


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under `folder`: relative path -> (kind, mode, sha256 of the bytes)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
        out[str(p.relative_to(folder))] = ("d" if p.is_dir() else "f", st.st_mode, digest)
    return out


def run_in_process(argv: list[str]) -> tuple[int, str]:
    """``sftlens.cli.main(argv)`` in this process: (exit code, stderr)."""
    from sftlens.cli import main

    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return code, err.getvalue()


def check_case(case: Case, folder: Path, run: Callable[[list[str]], tuple[int, str]]) -> str:
    """Run `case` in `folder`; return "" when the contract holds, else what broke."""
    folder.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        argv = [str(a) for a in case.build(folder)]
        before = snapshot(folder)
        code, err = run(argv)
        after = snapshot(folder)
    finally:
        os.chdir(cwd)
    problems = []
    if code != 2:
        problems.append(f"exit {code}")
    # The resolver's one-line notes (how it ordered a checkpoint) may come first; the error
    # itself is one line, and the last.
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("note: ")]
    if len(lines) != 1 or not lines[0].startswith("error: "):
        problems.append(f"stderr is not one error line: {err[-600:]!r}")
    if "Traceback" in err:
        problems.append("traceback")
    if case.needle not in err:
        problems.append(f"error does not name {case.needle!r}: {err.strip()[:300]!r}")
    if after != before:
        added = sorted(set(after) - set(before))
        removed = sorted(set(before) - set(after))
        changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
        problems.append(f"folder changed: +{added} -{removed} ~{changed}")
    return "; ".join(problems)
