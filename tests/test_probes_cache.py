"""Loading into TransformerLens and the streaming activation cache, on a real tiny Llama."""

from __future__ import annotations

import tracemalloc

import pytest
import torch

from sftlens.core import DataError, read_jsonl
from sftlens.probes import (
    ActivationCache,
    CacheItem,
    cache_activations,
    countdown_examples,
    dead_end_items,
    hook_names,
    load_lens,
)
from sftlens.probes._cache import SHARDS_LOG


@pytest.fixture(scope="module")
def lens(tiny_model_dir):
    return load_lens(tiny_model_dir)


@pytest.fixture(scope="module")
def examples():
    return countdown_examples(6, seed=0)


def test_lens_logits_and_resid_post_equal_hf(tiny_model_dir, lens):
    from sftlens.core import load_causal_lm

    bridge, tok, info = lens
    hf = load_causal_lm(tiny_model_dir)
    ids = torch.tensor([tok("Numbers: 3 5 7. Target: 22.\nTry 7*3=21.")["input_ids"]])
    outs = {}
    handles = [
        layer.register_forward_hook(
            lambda m, i, o, k=k: outs.__setitem__(k, o[0] if isinstance(o, tuple) else o)
        )
        for k, layer in enumerate(hf.model.layers)
    ]
    with torch.no_grad():
        hf_logits = hf(ids).logits
        tl_logits, cache = bridge.run_with_cache(ids, names_filter=hook_names("resid_post", [0, 1]))
    for h in handles:
        h.remove()
    torch.testing.assert_close(tl_logits, hf_logits, atol=1e-5, rtol=1e-5)
    for k in range(2):
        torch.testing.assert_close(
            cache[f"blocks.{k}.hook_resid_post"], outs[k], atol=1e-5, rtol=1e-5
        )
    assert info.loading_mode == "boot_transformers"
    assert info.transformer_lens.startswith("4.")
    assert (info.n_layers, info.d_model) == (2, 32)


def test_cache_equals_run_with_cache_at_the_same_positions(tmp_path, lens, examples):
    bridge, tok, _ = lens
    items = list(dead_end_items(tok, examples))
    hooks = [*hook_names("resid_post", [0, 1]), "blocks.1.hook_mlp_out"]
    cache = cache_activations(bridge, items, hooks, tmp_path / "c", batch_size=4, shard_traces=4)
    index = cache.index
    assert len(cache.shards()) == 2
    assert len(index) == sum(len(it.positions) for it in items)
    by_id = {it.trace_id: it for it in items}
    acts = {h: cache.load(h) for h in hooks}
    for trace_id, rows in index.groupby("trace_id"):
        ids = torch.tensor([by_id[trace_id].input_ids])
        with torch.no_grad():
            _, full = bridge.run_with_cache(ids, names_filter=hooks)
        for h in hooks:
            assert acts[h].shape == (len(index), 32)
            want = full[h][0, rows["position"].tolist()]
            torch.testing.assert_close(acts[h][rows.index.tolist()], want, atol=1e-5, rtol=1e-5)
    assert cache.config["transformer_lens"].startswith("4.")


def _interrupting(items, after):
    for i, it in enumerate(items):
        if i == after:
            raise KeyboardInterrupt
        yield it


def test_interrupted_cache_resumes_without_duplicates(tmp_path, lens, examples):
    bridge, tok, _ = lens
    items = list(dead_end_items(tok, examples))
    hooks = hook_names("resid_post", [1])
    with pytest.raises(KeyboardInterrupt):
        cache_activations(bridge, _interrupting(items, 5), hooks, tmp_path, 2, shard_traces=2)
    assert len(list(read_jsonl(tmp_path / SHARDS_LOG))) == 2  # shards 0-1 finished, 2 lost
    cache = cache_activations(bridge, items, hooks, tmp_path, batch_size=2, shard_traces=2)
    assert cache.stats.n_traces_skipped == 4 and cache.stats.n_traces == 2
    index = ActivationCache(tmp_path).index
    assert sorted(index["trace_id"].unique()) == sorted(it.trace_id for it in items)
    assert not index.duplicated(["trace_id", "position", "position_kind"]).any()
    assert cache.load(hooks[0]).shape[0] == len(index)


def test_cache_memory_is_bounded_by_the_shard_not_the_data(tmp_path, lens, examples):
    """N and 4N traces with a fixed batch and shard size: the same peak buffer, and a Python
    heap peak that does not grow with the data."""
    bridge, tok, _ = lens
    base = list(dead_end_items(tok, examples[:2]))

    def stream(n):
        # A lazy stream of n traces (copies with new ids), as from a large file.
        for i in range(n):
            it = base[i % len(base)]
            yield CacheItem(f"{it.trace_id}-{i}", it.group, it.input_ids, it.positions, it.rows)

    hooks = hook_names("resid_post", [0, 1])
    cache_activations(bridge, stream(4), hooks, tmp_path / "warm", 2, 4)  # lazy imports
    peaks, buffers = [], []
    for n in (4, 16):
        tracemalloc.start()
        c = cache_activations(bridge, stream(n), hooks, tmp_path / str(n), 2, 4)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        buffers.append(c.stats.peak_buffer_bytes)
        assert c.stats.n_traces == n
    assert buffers[0] == buffers[1] > 0
    print("python heap peaks", peaks)
    assert peaks[1] < 1.5 * peaks[0]


def test_cache_errors_name_the_problem(tmp_path, lens):
    bridge, _, _ = lens
    with pytest.raises(DataError, match="position 9 outside the sequence"):
        CacheItem("t", "g", [1, 2, 3], [9], [{}])
    with pytest.raises(DataError, match="never fired|not found|blocks"):
        cache_activations(
            bridge, [CacheItem("t", "g", [1, 2], [1], [{}])], ["blocks.0.hook_nope"], tmp_path
        )
    cache_activations(
        bridge,
        [CacheItem("t", "g", [1, 2], [1], [{}])],
        hook_names("resid_post", [0]),
        tmp_path / "x",
    )
    with pytest.raises(DataError, match="other hooks"):
        cache_activations(bridge, [], hook_names("resid_post", [1]), tmp_path / "x")


def test_dead_end_positions_sit_at_step_ends(lens, examples):
    _, tok, _ = lens
    ex = examples[0]
    item = next(iter(dead_end_items(tok, [ex], kinds=("step_end",))))
    steps = [e for e in ex["events"] if e["type"] == "step"]
    assert len(item.positions) == len(steps)
    enc = tok(ex["prompt"], add_special_tokens=False)  # noqa: F841  (prompt tokenizes)
    from sftlens.probes._datasets import encode_with_offsets

    _, offsets, resp_char = encode_with_offsets(tok, ex["prompt"], ex["response"])
    for pos, row, ev in zip(item.positions, item.rows, steps, strict=True):
        s, e = offsets[pos]
        assert s <= resp_char + ev["end"] - 1 < e  # the token holding the step's last char
        assert row["dead_end"] == int(ev["dead_end"])
        assert row["state_size"] == len(ev["state"])
        assert row["token_id"] == item.input_ids[pos]
        assert row["recent_ids"][-1] == item.input_ids[pos]
    assert item.group == ex["problem_id"]
