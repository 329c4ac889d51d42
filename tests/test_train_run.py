"""The trainer end to end on tiny models (CPU): grids, parameters, errors, resume, 2 processes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from sftlens.core import find_checkpoints, load_causal_lm, load_tokenizer, read_jsonl
from sftlens.train import CRASH_ENV, TRAINING_STATE_DIR, TrainConfig, train
from sftlens.train._state import load_optimizer_state

REPO = Path(__file__).resolve().parents[1]


def _sft_records(n: int = 48) -> list[dict]:
    out = []
    for i in range(n):
        a, b = 3 + i % 7, 5 + (i * 3) % 11
        # responses of different lengths, so micro-batches hold different target counts
        checks = " Check: {s} = {s}.".format(s=a + b) * (i % 5)
        reply = f"Try {a}+{b} = {a + b}.{checks} <answer>{a}+{b}</answer>"
        out.append(
            {
                "id": f"r{i}",
                "prompt": f"Using the numbers [{a}, {b}], make {a + b}.",
                "response": reply,
            }
        )
    return out


@pytest.fixture
def sft_file(tmp_path):
    p = tmp_path / "sft.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in _sft_records()))
    return p


def _cfg(model_dir, data, out_dir, **kw) -> TrainConfig:
    base = {
        "objective": "sft",
        "model": str(model_dir),
        "data": str(data),
        "out_dir": str(out_dir),
        "max_steps": 6,
        "batch_size": 4,
        "lr": 5e-3,
        "max_length": 64,
        "grid": {"kind": "every", "every": 2},
        "log_every": 1,
        "progress": False,
        "seed": 3,
    }
    base.update(kw)
    return TrainConfig.from_dict(base)


def _weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return load_file(str(ckpt / "model.safetensors"))


@pytest.mark.integration
def test_sft_run_writes_grid_and_changes_every_parameter(tiny_model_dir, sft_file, tmp_path):
    out = train(_cfg(tiny_model_dir, sft_file, tmp_path / "run"))
    ckpts = find_checkpoints(out)
    assert [c.step for c in ckpts] == [0, 2, 4, 6]
    last = Path(ckpts[-1].path)
    state = json.loads((last / "trainer_state.json").read_text())
    assert state["step"] == 6 and state["tokens_seen"] > 0 and state["loss"] > 0
    assert state["epoch"] == pytest.approx(6 / (48 // 4))
    assert load_tokenizer(last).get_vocab() == load_tokenizer(tiny_model_dir).get_vocab()
    # only the last checkpoint keeps the optimizer state for resume
    assert [(Path(c.path) / TRAINING_STATE_DIR).is_dir() for c in ckpts] == [False] * 3 + [True]
    # ... as safetensors + JSON (no pickle), and it reloads into a fresh optimizer
    assert sorted(p.name for p in (last / TRAINING_STATE_DIR).iterdir()) == [
        "optimizer.json",
        "optimizer.safetensors",
        "state.json",
    ]
    reloaded = load_optimizer_state(last)
    params = list(load_causal_lm(last).parameters())
    grouped = sorted(i for g in reloaded["param_groups"] for i in g["params"])
    assert sorted(reloaded["state"]) == grouped == list(range(len(params)))
    assert all(torch.is_tensor(v["exp_avg"]) for v in reloaded["state"].values())
    # every trainable parameter moved away from the base
    before, after = _weights(Path(ckpts[0].path)), _weights(last)
    assert before.keys() == after.keys() and len(before) > 5
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert unchanged == []
    # the step-0 checkpoint is the base model itself
    base = _weights(tiny_model_dir)
    assert all(torch.equal(base[k], before[k]) for k in base)
    metrics = list(read_jsonl(out / "metrics.jsonl"))
    assert [m["step"] for m in metrics] == [1, 2, 3, 4, 5, 6]
    assert metrics[-1]["loss"] < metrics[0]["loss"]
    assert TrainConfig.load(out / "train_config.yaml") == _cfg(tiny_model_dir, sft_file, out)


@pytest.mark.integration
def test_toy_base_pretrain_then_sft_from_its_checkpoint(tmp_path, sft_file):
    texts = [r["prompt"] + " " + r["response"] for r in _sft_records()] * 2
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    pre = train(
        TrainConfig.from_dict(
            {
                "objective": "pretrain",
                "model": "toy-tiny",
                "vocab_size": 300,
                "data": str(corpus),
                "out_dir": str(tmp_path / "pre"),
                "max_steps": 3,
                "batch_size": 2,
                "max_length": 96,
                "packing": True,
                "grid": {"kind": "list", "steps": [2]},
                "progress": False,
            }
        )
    )
    base = find_checkpoints(pre)
    assert [c.step for c in base] == [0, 2, 3]
    tok = load_tokenizer(base[-1].path)
    assert tok.convert_tokens_to_ids("<|assistant|>") != tok.unk_token_id
    sft = train(
        _cfg(
            base[-1].path,
            sft_file,
            tmp_path / "sft",
            max_steps=2,
            grid={"kind": "log2", "start": 1},
        )
    )
    assert [c.step for c in find_checkpoints(sft)] == [0, 1, 2]


def _bad_cases(tmp_path, tiny_model_dir, sft_file):
    bad_line = tmp_path / "bad.jsonl"
    bad_line.write_text(sft_file.read_text() + '{"prompt": "x", "response": \n')
    no_tok = tmp_path / "no_tok"
    shutil.copytree(tiny_model_dir, no_tok)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        (no_tok / f).unlink()
    ok = {"model": str(tiny_model_dir), "data": str(sft_file), "max_steps": 2}
    return {
        "unknown key": ({**ok, "learning_rate": 1}, "unknown key 'learning_rate'"),
        "contradiction": ({**ok, "epochs": 1}, "exactly one of max_steps and epochs"),
        "missing data": ({**ok, "data": str(tmp_path / "nope.jsonl")}, "nope.jsonl"),
        "malformed line": ({**ok, "data": str(bad_line)}, "bad.jsonl:49"),
        "no tokenizer": ({**ok, "model": str(no_tok)}, "no tokenizer.json"),
        "toy sft without tokenizer": ({**ok, "model": "toy-weak"}, "needs the world's tokenizer"),
        "batch too big": ({**ok, "batch_size": 64}, "fewer than one global batch"),
        "subset too big": ({**ok, "subset_size": 500}, "subset_size"),
    }


@pytest.mark.integration
def test_bad_inputs_end_with_one_line_exit_2_and_write_nothing(
    run_cli, tmp_path, tiny_model_dir, sft_file
):
    for name, (spec, needle) in _bad_cases(tmp_path, tiny_model_dir, sft_file).items():
        out_dir = tmp_path / f"out-{name.replace(' ', '_')}"
        y = tmp_path / "cfg.yaml"
        y.write_text(yaml.safe_dump({**spec, "out_dir": str(out_dir)}))
        rc, _out, err = run_cli("train", "--config", y)
        assert rc == 2, (name, err)
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], (name, err)
        assert not out_dir.exists(), name


@pytest.mark.integration
def test_rerun_resumes_its_own_run_and_refuses_another_config(
    run_cli, tmp_path, tiny_model_dir, sft_file
):
    cfg = _cfg(tiny_model_dir, sft_file, tmp_path / "run", max_steps=2)
    train(cfg)
    stamp = (tmp_path / "run" / "metrics.jsonl").read_text()
    y = tmp_path / "c.yaml"
    cfg.save(y)
    # The same command again: its own finished run, so there is nothing left to do.
    rc, _, err = run_cli("train", "--config", y)
    assert rc == 0, err
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == stamp
    # Another config in the same out_dir is refused (with or without --resume), naming the key.
    for extra in ((), ("--resume",)):
        rc, _, err = run_cli("train", "--config", y, *extra, "--set", "lr=1e-2")
        assert rc == 2 and "lr=" in err and "same config" in err and "another out_dir" in err
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == stamp
    # A run folder without its saved config is only continued on request.
    (tmp_path / "run" / "train_config.yaml").unlink()
    rc, _, err = run_cli("train", "--config", y)
    assert rc == 2 and "set resume=true" in err
    rc, _, err = run_cli("train", "--config", y, "--resume")
    assert rc == 0, err


def _run_cli_subprocess(args: list[str], env_extra: dict | None = None, launcher=None):
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    env.update(env_extra or {})
    cmd = (launcher or [sys.executable, "-m"]) + ["sftlens", "train", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=REPO)


@pytest.mark.integration
def test_resume_after_a_killed_run_gives_bitwise_equal_weights(tmp_path, tiny_model_dir, sft_file):
    kw = {
        "max_steps": 8,
        "grid": {"kind": "list", "steps": [2, 4]},
        "shuffle": "per_epoch",
        "subset_size": 24,
    }
    # The uninterrupted reference: 8 steps over 6-step epochs (24 examples, batches of 4).
    ref = train(_cfg(tiny_model_dir, sft_file, tmp_path / "ref", **kw))
    # The same run in a real subprocess, killed (os._exit) right after step 5.
    cfg = _cfg(tiny_model_dir, sft_file, tmp_path / "crash", **kw)
    y = tmp_path / "crash.yaml"
    cfg.save(y)
    proc = _run_cli_subprocess(["--config", str(y)], {CRASH_ENV: "5"})
    assert proc.returncode == 17, proc.stderr[-2000:]
    assert [c.step for c in find_checkpoints(tmp_path / "crash")] == [0, 2, 4]
    assert max(r["step"] for r in read_jsonl(tmp_path / "crash" / "metrics.jsonl")) == 5
    # The same config again resumes: from step 4 (optimizer state, schedule, data position).
    train(cfg)
    a, b = (
        _weights(ref / "checkpoints" / "step-000008"),
        _weights(tmp_path / "crash" / "checkpoints" / "step-000008"),
    )
    assert all(torch.equal(a[k], b[k]) for k in a), (
        "resumed weights differ from the uninterrupted run"
    )
    ma = [r["loss"] for r in read_jsonl(ref / "metrics.jsonl")]
    mb = [r["loss"] for r in read_jsonl(tmp_path / "crash" / "metrics.jsonl")]
    assert ma == mb  # steps 5.. logged once, from the resumed run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration
def test_loss_is_invariant_to_processes_and_accumulation(tmp_path, tiny_model_dir, sft_file):
    """1 process x 4 accumulation steps == 2 processes (gloo) x 2 steps: same losses, weights."""
    kw = {
        "max_steps": 3,
        "batch_size": 2,
        "grid": {"kind": "list", "steps": [1]},
        "max_grad_norm": None,
    }
    single = train(_cfg(tiny_model_dir, sft_file, tmp_path / "p1", grad_accum=4, **kw))
    cfg2 = _cfg(tiny_model_dir, sft_file, tmp_path / "p2", grad_accum=2, **kw)
    y = tmp_path / "p2.yaml"
    cfg2.save(y)
    launcher = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()), "-m",
    ]  # fmt: skip
    proc = _run_cli_subprocess(["--config", str(y)], {"OMP_NUM_THREADS": "1"}, launcher=launcher)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((tmp_path / "p2" / "run_info.json").read_text())
    assert info["world_size"] == 2 and info["global_batch"] == 8
    la = [r["loss"] for r in read_jsonl(single / "metrics.jsonl")]
    lb = [r["loss"] for r in read_jsonl(tmp_path / "p2" / "metrics.jsonl")]
    assert la == pytest.approx(lb, rel=1e-5, abs=1e-6)
    a, b = (
        _weights(single / "checkpoints" / "step-000003"),
        _weights(tmp_path / "p2" / "checkpoints" / "step-000003"),
    )
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6)
    # the control: a per-micro-batch mean (what a naive loop does) is not this loss
    naive = _naive_step_loss(single, step=2)
    print("naive", naive, "token-mean", la[1])
    assert abs(naive - la[1]) > 100 * max(abs(x - y) for x, y in zip(la, lb, strict=True))


def _naive_step_loss(run: Path, step: int) -> float:
    """Mean of per-micro-batch mean losses at `step` (the quantity the trainer avoids)."""
    from sftlens.core import load_causal_lm
    from sftlens.train import collate, epoch_batches, load_units

    cfg = TrainConfig.load(run / "train_config.yaml")
    ckpt = run / "checkpoints" / f"step-{step - 1:06d}"
    tok = load_tokenizer(ckpt)
    units, _ = load_units(cfg, tok)
    steps = epoch_batches(
        [len(u) for u in units], 0, cfg.seed, 8, 2, cfg.shuffle, cfg.group_by_length
    )
    model = load_causal_lm(ckpt)
    losses = []
    with torch.no_grad():
        for m in steps[step - 1]:
            b = collate([units[i] for i in m], tok.pad_token_id)
            logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
            losses.append(
                torch.nn.functional.cross_entropy(
                    logits[:, :-1].flatten(0, 1), b["labels"][:, 1:].flatten(), ignore_index=-100
                ).item()
            )
    return sum(losses) / len(losses)


@pytest.mark.integration
def test_tensorboard_tracker_and_gradient_checkpointing(tmp_path, tiny_model_dir, sft_file):
    pytest.importorskip("tensorboard")
    cfg = _cfg(
        tiny_model_dir,
        sft_file,
        tmp_path / "tb",
        max_steps=2,
        trackers=["tensorboard"],
        gradient_checkpointing=True,
        packing=True,
    )
    out = train(cfg)
    events = list((out / "logs").rglob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    assert [c.step for c in find_checkpoints(out)] == [0, 2]
