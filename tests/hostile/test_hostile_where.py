"""``--where`` is a filter language that can compare columns and nothing else.

The payloads below would each create a file if any part of them ran (pandas ``eval`` with ``@``
reaches module globals such as ``os``); each must leave the file absent and exit 2 with one
line naming the filter.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sftlens.core import DataError, where_mask


def _cache(tmp_path):
    """A real two-shard-free activation cache folder: cache.json, one shard, its index."""
    import torch
    from safetensors.torch import save_file

    from sftlens.core import write_json, write_jsonl

    d = tmp_path / "cache"
    d.mkdir()
    hook = "blocks.0.hook_resid_post"
    n = 40
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, 8)).astype("float32")
    x[:, 0] += 3 * y
    write_json(d / "cache.json", {"hooks": [hook], "d_model": 8})
    save_file({hook: torch.from_numpy(x)}, str(d / "shard-00000.safetensors"))
    pd.DataFrame(
        {
            "trace_id": [f"t{i}" for i in range(n)],
            "group": [f"g{i % 10}" for i in range(n)],
            "shard": "shard-00000",
            "row": np.arange(n),
            "position": np.arange(n),
            "position_kind": np.where(np.arange(n) % 4 < 2, "step_end", "other"),
            "dead_end": y,
        }
    ).to_parquet(d / "shard-00000.parquet", index=False)
    write_jsonl(d / "shards.jsonl", [{"shard": "shard-00000", "n_rows": n}])
    return d


def _payloads(marker) -> list[str]:
    m = str(marker)
    return [
        f"dead_end == @np._pytesttester.os.system('touch {m}') or dead_end >= 0",
        f"@pd.io.common.os.system('touch {m}')",
        f"dead_end == __import__('os').system('touch {m}')",
        f"dead_end.__class__.__init__.__globals__['os'].system('touch {m}') == 0",
        f"(lambda: __import__('os').system('touch {m}'))() == 0",
        f"[c for c in ().__class__.__base__.__subclasses__()] == 0 or open('{m}', 'w')",
        f"dead_end[0] == 0 and open('{m}', 'w')",
        f"position_kind.str.cat(open('{m}', 'w')) == 'x'",
        f'exec(\'open("{m}", "w")\') == 0',
    ]


def test_where_payloads_never_run_in_process(tmp_path, run_cli):
    cache = _cache(tmp_path)
    marker = tmp_path / "PWNED"
    out = tmp_path / "fit.parquet"
    for payload in _payloads(marker):
        code, _, err = run_cli("probe", "fit", cache, "--where", payload, "-o", out)
        assert code == 2, (payload, err)
        assert err.startswith("error: row filter") and err.count("\n") == 1, err
        assert "Traceback" not in err
        assert not marker.exists(), payload
        assert not out.exists()
    # The same command with an honest filter works, so the refusals above are about the filter.
    code, _, err = run_cli(
        "probe", "fit", cache, "--where", "position_kind == 'step_end'", "-o", out
    )
    assert code == 0, err
    assert out.is_file()


def test_where_payload_never_runs_in_a_real_process(tmp_path):
    cache = _cache(tmp_path)
    marker = tmp_path / "PWNED"
    payload = _payloads(marker)[0]
    proc = subprocess.run(
        [sys.executable, "-m", "sftlens", "probe", "fit", str(cache), "--where", payload]
        + ["-o", str(tmp_path / "fit.parquet")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "row filter" in proc.stderr
    assert not marker.exists()


FRAME = pd.DataFrame(
    {
        "kind": ["a", "b", "a", "c"],
        "dead_end": [0, 1, 1, 0],
        "x": [0.5, 1.5, 2.0, -1.0],
        "flag": [True, False, True, False],
    }
)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("kind == 'a'", [1, 0, 1, 0]),
        ('kind != "a"', [0, 1, 0, 1]),
        ("kind == 'a' and dead_end == 1", [0, 0, 1, 0]),
        ("kind == 'b' or x < 0", [0, 1, 0, 1]),
        ("not (dead_end == 1)", [1, 0, 0, 1]),
        ("~flag | (x >= 2.0)", [0, 1, 1, 1]),
        ("kind in ['a', 'c']", [1, 0, 1, 1]),
        ("kind not in ('a',)", [0, 1, 0, 1]),
        ("flag & dead_end == 0", [1, 0, 0, 0]),
        ("`dead_end` > 0", [0, 1, 1, 0]),
        ("x > -1e0", [1, 1, 1, 0]),
        ("", [1, 1, 1, 1]),
    ],
)
def test_where_grammar_selects_rows(where, expected):
    assert where_mask(FRAME, where).tolist() == [bool(v) for v in expected]


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("kind ==", "ends too early"),
        ("knd == 'a'", "no column 'knd'"),
        ("kind", "not true/false"),
        ("x + 1 > 0", r"unexpected '\+'"),
        ("kind > 1", "different types"),
        ("0 < x < 2", "chained comparisons"),
        ("(" * 50 + "flag" + ")" * 50, "nested deeper"),
        ("dead_end == 1" + " and flag" * 2000, "longer than"),
        ("kind in [kind]", "constants only"),
        ("dead_end == 123456789012345678901234567890", "number too long"),
    ],
)
def test_where_errors_are_one_line_naming_filter_and_columns(where, says):
    with pytest.raises(DataError, match=says) as err:
        where_mask(FRAME, where)
    msg = str(err.value)
    assert "\n" not in msg and "row filter" in msg and "dead_end" in msg
