"""The checkpoint resolver on every layout, built for real in the shape each tool writes it."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from sftlens.core import DataError, resolve_series, step_from_name


def _model(src: Path, dest: Path, state: dict | None = None) -> Path:
    """A copy of the tiny model dir (weights, config, tokenizer) with `state` as its
    trainer_state.json (none when None)."""
    shutil.copytree(src, dest)
    (dest / "trainer_state.json").unlink()
    if state is not None:
        (dest / "trainer_state.json").write_text(json.dumps(state))
    return dest


def hf_state(step: int, every: int = 10, lr0: float = 1e-3) -> dict:
    """trainer_state.json as transformers' Trainer writes it into checkpoint-N/."""
    logs = [
        {
            "epoch": s / 100,
            "grad_norm": 1.5,
            "learning_rate": lr0 * (1 - s / 1000),
            "loss": round(3.0 - s / 100, 4),
            "step": s,
        }
        for s in range(every, step + 1, every)
    ]
    return {
        "best_global_step": None,
        "best_metric": None,
        "best_model_checkpoint": None,
        "epoch": step / 100,
        "eval_steps": 500,
        "global_step": step,
        "is_hyper_param_search": False,
        "is_local_process_zero": True,
        "is_world_process_zero": True,
        "log_history": logs,
        "logging_steps": every,
        "max_steps": 150,
        "num_input_tokens_seen": 0,
        "num_train_epochs": 2,
        "save_steps": 50,
        "stateful_callbacks": {},
        "total_flos": 1.0,
        "train_batch_size": 8,
        "trial_name": None,
        "trial_params": None,
    }


@pytest.fixture
def trainer_run(tiny_model_dir, tmp_path):
    """An HF Trainer / TRL output folder: checkpoint-{50,100,150}/ and the final model at
    the root (with the root trainer_state.json that `trainer.save_state()` writes)."""
    run = tmp_path / "qwen-sft"
    for s in (50, 100, 150):
        _model(tiny_model_dir, run / f"checkpoint-{s}", hf_state(s))
    for f in tiny_model_dir.iterdir():
        if f.name != "trainer_state.json":
            shutil.copy(f, run / f.name)
    (run / "trainer_state.json").write_text(json.dumps(hf_state(150)))
    return run


def test_step_from_name_reads_every_tool_naming():
    assert step_from_name("checkpoint-50") == 50
    assert step_from_name("global_step_7") == 7
    assert step_from_name("step-000120") == 120
    assert step_from_name("step1000") == 1000
    assert step_from_name("stage1-step1000-tokens4B") == 1000
    assert step_from_name("final") is None
    assert step_from_name("model_v2") is None


def test_trainer_folder_in_step_order_with_final_last(trainer_run):
    s = resolve_series(trainer_run)
    assert s.name == "qwen-sft"
    assert [c.name for c in s.checkpoints] == [
        "checkpoint-50",
        "checkpoint-100",
        "checkpoint-150",
        "final",
    ]
    assert [c.step for c in s.checkpoints] == [50, 100, 150, 150]
    assert s.checkpoints[-1].final and s.checkpoints[-1].path == str(trainer_run)
    c100 = s.checkpoints[1]
    assert c100.step_source == "trainer_state"
    assert c100.loss == pytest.approx(2.0) and c100.lr == pytest.approx(1e-3 * 0.9)
    assert c100.epoch == pytest.approx(1.0)


def test_checkpoints_given_one_by_one_are_one_series_in_step_order(trainer_run):
    s = resolve_series([trainer_run / "checkpoint-100", trainer_run / "checkpoint-50"])
    assert s.name == "qwen-sft"
    assert [c.step for c in s.checkpoints] == [50, 100]


def test_step_from_the_name_when_the_trainer_state_is_missing(tiny_model_dir, tmp_path):
    run = tmp_path / "llamafactory-out"
    for s in (200, 1000):
        _model(tiny_model_dir, run / f"checkpoint-{s}")
    s = resolve_series(run)
    assert [(c.step, c.step_source) for c in s.checkpoints] == [(200, "name"), (1000, "name")]
    assert s.notes == []


def test_sftlens_run_layout_still_resolves(tiny_model_dir):
    s = resolve_series(tiny_model_dir.parent.parent)
    assert [(c.step, c.step_source) for c in s.checkpoints] == [(0, "trainer_state")]
    assert s.name == tiny_model_dir.parent.parent.name


def test_no_step_anywhere_orders_by_natural_name_and_says_so_once(tiny_model_dir, tmp_path):
    for n in ("model_v10", "model_v2", "model_v1"):
        _model(tiny_model_dir, tmp_path / "series" / n)
    said = []
    s = resolve_series(tmp_path / "series", log=said.append)
    assert [c.name for c in s.checkpoints] == ["model_v1", "model_v2", "model_v10"]
    assert [(c.step, c.step_source) for c in s.checkpoints] == [
        (0, "order"),
        (1, "order"),
        (2, "order"),
    ]
    assert len(said) == 1 and "natural order" in said[0]
    assert s.checkpoints[0].provenance()["step_source"] == "order"


def test_explicit_name_path_at_step(tiny_model_dir, tmp_path):
    d = _model(tiny_model_dir, tmp_path / "whatever")
    s = resolve_series([f"mine={d}@250"])
    assert s.name == "mine"
    assert [(c.step, c.step_source) for c in s.checkpoints] == [(250, "given")]


def test_verl_folder_reads_actor_huggingface(tiny_model_dir, tmp_path):
    root = tmp_path / "checkpoints" / "proj" / "exp"
    for s in (10, 5):
        actor = root / f"global_step_{s}" / "actor"
        _model(tiny_model_dir, actor / "huggingface")
        (actor / "model_world_size_2_rank_0.pt").write_bytes(b"shard")
    (root / "latest_checkpointed_iteration.txt").write_text("10")
    s = resolve_series(root)
    assert [c.step for c in s.checkpoints] == [5, 10]
    assert s.checkpoints[0].path.endswith("global_step_5/actor/huggingface")
    one = resolve_series(root / "global_step_10")
    assert one.name == "exp" and one.checkpoints[0].step == 10


def test_verl_fsdp_shards_only_name_the_merger(tiny_model_dir, tmp_path, run_cli):
    actor = tmp_path / "exp" / "global_step_20" / "actor"
    hf = actor / "huggingface"
    hf.mkdir(parents=True)
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / f, hf / f)
    for r in range(2):
        (actor / f"model_world_size_2_rank_{r}.pt").write_bytes(b"shard")
    with pytest.raises(DataError, match="python -m verl.model_merger merge --backend fsdp"):
        resolve_series(tmp_path / "exp")
    rc, _out, err = run_cli("checkpoints", str(tmp_path / "exp"))
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert f"--local_dir {actor} --target_dir {hf}" in err


def test_missing_path_is_one_line(tmp_path, run_cli):
    rc, _out, err = run_cli("checkpoints", str(tmp_path / "nope"))
    assert rc == 2 and "no such run or model directory" in err and err.count("\n") == 1


def test_checkpoints_cli_lists_name_step_path_loss(trainer_run, run_cli):
    rc, out, _err = run_cli("checkpoints", str(trainer_run), "--json")
    assert rc == 0
    rows = json.loads(out)
    assert [(r["name"], r["step"]) for r in rows] == [
        ("checkpoint-50", 50),
        ("checkpoint-100", 100),
        ("checkpoint-150", 150),
        ("final", 150),
    ]
    assert rows[0]["loss"] == pytest.approx(2.5) and rows[0]["path"].endswith("checkpoint-50")
    rc, out, _err = run_cli("checkpoints", str(trainer_run))
    assert rc == 0 and out.splitlines()[0].split() == [
        "model",
        "name",
        "step",
        "from",
        "loss",
        "path",
    ]
    assert "checkpoint-100" in out.splitlines()[2]


# ------------------------------------------------------------------------------ hub cache


def hub_cache(
    root: Path, repo: str, revisions: dict[str, Path], sub: dict[str, Path] | None = None
):
    """A real huggingface_hub cache: blobs, refs/<rev> -> commit, snapshots/<commit>/ links.

    `revisions` maps a branch name to a model dir stored as that revision's snapshot; `sub`
    maps folder names to model dirs stored under the ``main`` snapshot.
    """
    import hashlib

    repo_dir = root / ("models--" + repo.replace("/", "--"))
    (repo_dir / "blobs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs").mkdir(exist_ok=True)

    def put(files_from: Path, snap: Path):
        for f in files_from.iterdir():
            if not f.is_file():
                continue
            data = f.read_bytes()
            blob = repo_dir / "blobs" / hashlib.sha256(data).hexdigest()
            blob.write_bytes(data)
            snap.mkdir(parents=True, exist_ok=True)
            link = snap / f.name
            link.symlink_to(os.path.relpath(blob, snap))

    for i, (rev, d) in enumerate(revisions.items()):
        commit = hashlib.sha1(f"{repo}{rev}{i}".encode()).hexdigest()
        (repo_dir / "refs" / rev).write_text(commit)
        put(d, repo_dir / "snapshots" / commit)
        if sub and rev == "main":
            for name, sd in sub.items():
                put(sd, repo_dir / "snapshots" / commit / name)
    return repo_dir


@pytest.fixture
def offline_hub(tiny_model_dir, tmp_path, monkeypatch):
    cache = tmp_path / "hf"
    src = _model(tiny_model_dir, tmp_path / "m")
    hub_cache(
        cache,
        "org/tiny",
        {"main": src, "step100": src, "step2000": src, "step300": src},
        sub={"step120": src, "step40": src},
    )
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_hub_revision_and_subfolder_from_the_offline_cache(offline_hub):
    s = resolve_series("org/tiny@step300")
    assert s.name == "org/tiny"
    (c,) = s.checkpoints
    assert (c.step, c.step_source, c.source) == (300, "name", "org/tiny@step300")
    assert Path(c.path, "config.json").is_file()
    (c,) = resolve_series("org/tiny:step120").checkpoints
    assert c.step == 120 and c.path.endswith("step120") and c.source == "org/tiny:step120"


def test_hub_patterns_expand_over_the_cache_offline_and_say_so(offline_hub):
    s = resolve_series("org/tiny@step*")
    assert [c.step for c in s.checkpoints] == [100, 300, 2000]
    assert any("HF_HUB_OFFLINE=1" in m and "local cache" in m for m in s.notes)
    s = resolve_series("org/tiny:step*")
    assert [c.name for c in s.checkpoints] == ["step40", "step120"]


def test_hub_missing_revision_is_one_line(offline_hub, run_cli):
    with pytest.raises(DataError, match="not in the local hub cache"):
        resolve_series("org/tiny@step999")
    rc, _out, err = run_cli(
        "generate", "-m", "org/tiny@step999", "-e", "route", "-o", offline_hub / "x"
    )
    assert rc == 2 and err.count("\n") == 1 and "hf download org/tiny --revision step999" in err
    assert not (offline_hub / "x").exists()  # nothing written on bad input
    rc, _out, err = run_cli("checkpoints", "org/nothing@step*")
    assert rc == 2 and "matched nothing" in err


# ----------------------------------------------------------------------------------- PEFT


def _adapter(base: Path, dest: Path) -> tuple[Path, object]:
    """A LoRA adapter on `base` saved the way PEFT saves it, with its non-zero B weights."""
    import torch
    from peft import LoraConfig, get_peft_model

    from sftlens.core import load_causal_lm

    model = load_causal_lm(base)
    pm = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    pm.save_pretrained(dest)
    return dest, pm


def test_peft_adapter_is_merged_onto_its_base(tiny_model_dir, tmp_path, monkeypatch):
    pytest.importorskip("peft")
    import torch

    from sftlens.core import load_causal_lm

    monkeypatch.setenv("SFTLENS_CACHE", str(tmp_path / "cache"))
    base = _model(tiny_model_dir, tmp_path / "base")
    ad, pm = _adapter(base, tmp_path / "lora" / "checkpoint-30")
    cfg = json.loads((ad / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == str(base)
    assert (ad / "adapter_model.safetensors").is_file()
    (ck,) = resolve_series(tmp_path / "lora").checkpoints
    assert ck.step == 30 and ck.source == str(ad)
    assert Path(ck.path, "config.json").is_file() and Path(ck.path, "tokenizer.json").is_file()
    ids = torch.tensor([[1, 5, 9, 12]])
    merged = load_causal_lm(ck.path)
    with torch.no_grad():
        want = pm.eval()(ids).logits
        got = merged(ids).logits
        plain = load_causal_lm(base)(ids).logits
    assert torch.allclose(got, want, atol=1e-4) and not torch.allclose(got, plain, atol=1e-3)
    # merged once: a second resolve reuses the cached merge
    assert resolve_series(ad).checkpoints[0].path == ck.path


def test_peft_missing_is_one_line(tiny_model_dir, tmp_path, monkeypatch):
    pytest.importorskip("peft")
    base = _model(tiny_model_dir, tmp_path / "base")
    ad, _ = _adapter(base, tmp_path / "ad")
    monkeypatch.setenv("SFTLENS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(DataError, match=r"pip install 'sftlens\[peft\]'"):
        resolve_series(ad)


# ------------------------------------------------------------------ the verbs on these layouts


def test_generate_table_dip_on_a_trainer_folder(trainer_run, tmp_path, run_cli):
    out = tmp_path / "gen"
    rc, _o, err = run_cli(
        "generate", "-m", trainer_run, "-e", "route", "--eval-n", "2", "--n", "1",
        "--max-new-tokens", "3", "-o", out,
    )  # fmt: skip
    assert rc == 0, err
    from sftlens.core import read_jsonl

    steps = sorted(
        {(t["checkpoint"]["step"], t["id"].split("/")[1]) for t in read_jsonl(out / "traces.jsonl")}
    )
    assert steps == [
        (50, "checkpoint-50"),
        (100, "checkpoint-100"),
        (150, "checkpoint-150"),
        (150, "final"),
    ]
    rc, o, err = run_cli("dip", out / "table.parquet", "--metric", "mean_length")
    assert rc == 0 and "qwen-sft" in o, err
    # one by one, out of order: the same run, in step order, never `step: null`
    out2 = tmp_path / "gen2"
    rc, _o, err = run_cli(
        "generate", "-m", trainer_run / "checkpoint-100", "-m", trainer_run / "checkpoint-50",
        "-e", "route", "--eval-n", "1", "--n", "1", "--max-new-tokens", "2", "-o", out2,
    )  # fmt: skip
    assert rc == 0, err
    got = {(t["model"], t["checkpoint"]["step"]) for t in read_jsonl(out2 / "traces.jsonl")}
    assert got == {("qwen-sft", 50), ("qwen-sft", 100)}


def test_probe_drift_on_unnamed_checkpoints(tiny_model_dir, tmp_path, run_cli):
    for n in ("first", "second"):
        _model(tiny_model_dir, tmp_path / "series" / n)
    out = tmp_path / "drift"
    rc, o, err = run_cli(
        "probe", "drift", "-m", f"s={tmp_path / 'series'}", "-o", out, "--n-problems", "3",
    )  # fmt: skip
    assert rc == 0, err
    assert "natural order" in err
    from sftlens.core import read_parquet

    assert sorted(set(read_parquet(out / "drift.parquet")["step"])) == [0, 1]


def test_refusal_and_probe_cache_on_hub_references(offline_hub, tmp_path, run_cli):
    out = tmp_path / "ref"
    rc, o, err = run_cli(
        "refusal", "org/tiny@step1*", "--out", out, "--set", "n_train=4", "--set", "n_val=4",
        "--set", "n_eval=4", "--set", "max_new_tokens=2", "--set", "plots=false",
    )  # fmt: skip
    assert rc == 0, err
    from sftlens.core import read_parquet

    t = read_parquet(out / "refusal.parquet")
    assert set(t["step"]) == {100} and set(t["model"]) == {"org/tiny"}
    rc, _o, err = run_cli("probe", "cache", "org/tiny@step*", "-d", "x.jsonl", "-o", tmp_path / "c")
    errors = [ln for ln in err.splitlines() if not ln.startswith("note: ")]
    assert rc == 2 and "names 3 checkpoints" in err and len(errors) == 1, err


def test_sentencepiece_only_tokenizer_loads_and_generates(tmp_path, run_cli):
    """A model saved with only a sentencepiece ``tokenizer.model`` (no tokenizer.json)."""
    import io

    import sentencepiece as spm
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from sftlens.core import load_tokenizer

    d = tmp_path / "sp-model"
    d.mkdir()
    buf = io.BytesIO()
    text = ["Using the numbers 3 5 7, make 22.", "Try 7*3 = 21. That is not 22.", "No."] * 30
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text), model_writer=buf, vocab_size=60, model_type="bpe",
        bos_id=1, eos_id=2, unk_id=0, pad_id=-1, num_threads=1, minloglevel=2,
    )  # fmt: skip
    (d / "tokenizer.model").write_bytes(buf.getvalue())
    (d / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>"})
    )
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=60, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, bos_token_id=1, eos_token_id=2,
    )  # fmt: skip
    LlamaForCausalLM(cfg).save_pretrained(d)
    tok = load_tokenizer(d)
    assert not (d / "tokenizer.json").exists()
    assert tok.decode(tok("make 22", add_special_tokens=False).input_ids).strip() == "make 22"
    rc, _o, err = run_cli(
        "generate", "-m", d, "-e", "route", "--eval-n", "1", "--n", "1", "--max-new-tokens", "2",
        "-o", tmp_path / "out",
    )  # fmt: skip
    assert rc == 0, err


def test_train_takes_any_reference_as_its_base(offline_hub):
    from sftlens.train import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer("org/tiny@step300")
    assert model.config.model_type == "llama" and tok.pad_token is not None


def test_dip_on_a_table_without_steps_is_one_line(tmp_path, run_cli):
    """Tables written before every checkpoint had a step (``step: null``) never crash."""
    import pandas as pd

    from sftlens.core import write_parquet

    rows = [
        {"model": "m", "checkpoint": f"c{i}", "step": None, "task": "t", "metric": "accuracy",
         "value": v, "ci_low": v, "ci_high": v}
        for i, v in enumerate([0.5, 0.1, 0.6])
    ]  # fmt: skip
    write_parquet(pd.DataFrame(rows), tmp_path / "t.parquet")
    rc, _o, err = run_cli("dip", tmp_path / "t.parquet")
    assert rc == 2 and "no checkpoint in the table has a step" in err and err.count("\n") == 1
    rows[0]["step"], rows[1]["step"] = 0, 10  # a final model at its last checkpoint's step
    rows[2]["step"] = 10
    write_parquet(pd.DataFrame(rows), tmp_path / "t.parquet")
    rc, out, err = run_cli("dip", tmp_path / "t.parquet")
    assert rc == 0, err
