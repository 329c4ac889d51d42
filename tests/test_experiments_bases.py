"""Shipped toy bases: small files, loadable, behaving like pretrained bases; rebuilt on demand."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from sftlens.core import find_checkpoints, load_causal_lm
from sftlens.experiments import _bases

SHIPPED = ("toy-weak", "toy-strong")


def test_export_shards_and_compare_round_trip(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(_bases, "SHARD_BYTES", 40_000)  # force several shards on a tiny model
    dest = _bases.export(tiny_model_dir, tmp_path / "base", "r1", {"seed": 0})
    shards = sorted(dest.glob("*.safetensors"))
    assert len(shards) > 1 and all(f.stat().st_size < 40_000 for f in shards)
    assert json.loads((dest / _bases.RECIPE_FILE).read_text())["recipe"] == "r1"
    assert _bases.compare(dest, tiny_model_dir) == []
    # The shards load as one model with the original's weights.
    ckpt = tmp_path / "run" / "checkpoints" / "step-000005"
    _bases.install(dest, ckpt)
    assert not (ckpt / _bases.RECIPE_FILE).exists()
    assert [c.step for c in find_checkpoints(tmp_path / "run")] == [0]  # trainer_state's step
    load_causal_lm(str(ckpt))
    # One changed value is found by name.
    w = load_file(str(shards[0]))
    name = sorted(w)[0]
    w[name] = w[name].clone()
    w[name].view(-1)[0] += 1e-6
    save_file(w, str(shards[0]), metadata={"format": "pt"})
    assert _bases.compare(dest, tiny_model_dir) == [name]


def test_shipped_base_is_found_only_for_its_recipe(tiny_model_dir, tmp_path):
    _bases.export(tiny_model_dir, tmp_path / "toy-weak", "abc")
    assert _bases.find_shipped("toy-weak", "abc", root=tmp_path) == tmp_path / "toy-weak"
    assert _bases.find_shipped("toy-weak", "abd", root=tmp_path) is None
    assert _bases.find_shipped("toy-strong", "abc", root=tmp_path) is None


def test_shipped_bases_are_small_and_name_their_rebuild():
    root = _bases.shipped_root()
    total = 0
    for base in SHIPPED:
        d = root / base
        rec = json.loads((d / _bases.RECIPE_FILE).read_text())
        assert rec["spec"] == "countdown_lab" and rec["scale"] == "tiny" and rec["seed"] == 0
        assert "sftlens bases" in rec["rebuild"]
        for f in d.iterdir():
            assert f.stat().st_size < 1.2 * 2**20, f  # every tracked file well under 2 MiB
            total += f.stat().st_size
    assert total < 6 * 2**20


@pytest.mark.integration
def test_shipped_strong_base_passes_the_behavioural_checks(tmp_path):
    res = _bases.base_checks(_bases.shipped_root() / "toy-strong", tmp_path, n=24)
    assert all(r["passed"] for r in res.values()), res


@pytest.mark.slow
def test_rebuilt_bases_pass_the_checks_and_match_on_the_same_machine(tmp_path):
    """Pretrain both bases from scratch (minutes) and compare them with the shipped ones."""
    built = _bases.rebuild_bases(tmp_path / "run", tmp_path / "out")
    assert set(built) == set(SHIPPED)
    for base, path in built.items():
        res = _bases.base_checks(path, tmp_path / f"checks-{base}")
        assert all(r["passed"] for r in res.values()), (base, res)
        shipped = _bases.shipped_root() / base
        rec = json.loads((shipped / _bases.RECIPE_FILE).read_text())
        new = json.loads((path / _bases.RECIPE_FILE).read_text())
        assert new["recipe"] == rec["recipe"], "the recipe (inputs, parameters) changed"
        if new["built_on"] == rec["built_on"]:
            # Same CPU, torch and thread count: the very same bytes.
            assert _bases.compare(path, shipped) == []
    shutil.rmtree(tmp_path / "run")


def test_rebuild_command_is_documented():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert _bases.REBUILD_COMMAND in readme


@pytest.mark.integration
def test_quickstart_installs_the_shipped_bases_instead_of_pretraining(tmp_path):
    """The quickstart's data and tokenizer give the shipped bases' recipe, so no pretraining."""
    import io

    from sftlens.experiments import build_stages, load_spec, run_stages
    from sftlens.experiments._stages import pretrain_recipe

    spec = load_spec(_bases.BASES_SPEC, scale=_bases.BASES_SCALE)
    stages = build_stages(spec)
    run = tmp_path / "qs"
    data = [s for s in stages if s.name.startswith("data.")]
    run_stages(run, data, spec=spec, stream=io.StringIO())
    pre = [s for s in stages if s.name.startswith("pretrain.")]
    for s in pre:
        fp = pretrain_recipe(run, s.params)
        assert _bases.find_shipped(s.params["base"], fp) is not None, (s.name, fp)
    out = io.StringIO()
    run_stages(run, data + pre, spec=spec, stream=out)
    assert out.getvalue().count("shipped base installed") == 2
    for s in pre:
        model = run / "models" / s.params["model"]["name"]
        assert not (model / "metrics.jsonl").exists()  # installed, not trained
        ckpt = Path(find_checkpoints(model)[-1].path)
        assert _bases.compare(ckpt, _bases.shipped_root() / s.params["base"]) == []
