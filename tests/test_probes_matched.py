"""The matched-design instrument where the answer is known.

A tiny Llama is trained, inside the test, to answer the XOR of two bits written at the start of
a sequence, after a stretch of random filler: to predict the answer it must carry the XOR to the
query token, so the XOR is linearly present there. A second property, a bit the input never
shows, is absent by construction. In the probe set both properties are confounded with the
sequence length (what a surface reader sees), so an unmatched surface baseline reads them
well. The matched design must find the first over its surface baseline and not the second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from sftlens.core import DataError
from sftlens.probes import match_states, matched_probe, procedure_verdict, selectivity_difference

V = 24  # 0 BOS, 1 query, 2/3 first bit, 4/5 second bit, 6/7 answer, 8.. filler
BOS, QUERY, ANSWER, FILLER = 0, 1, 6, 8


def _sequences(n, seed, confound=None):
    """Token sequences ``BOS a b filler... QUERY answer`` with ``answer = a XOR b``.

    With `confound` (``"xor"`` or ``"hidden"``), 80% of sequences get 3 more filler tokens when
    that property is 1, so the length gives the property away unless it is matched on.
    """
    rng = np.random.default_rng(seed)
    a, b, hidden = (rng.integers(0, 2, n) for _ in range(3))
    xor = a ^ b
    length = 6 + rng.integers(0, 7, n)
    if confound is not None:
        p = xor if confound == "xor" else hidden
        length = np.where(rng.random(n) < 0.8, 6 + 3 * p + rng.integers(0, 4, n), length)
    seqs = [
        [BOS, 2 + a[i], 4 + b[i], *rng.integers(FILLER, V, length[i]).tolist(), QUERY,
         ANSWER + xor[i]]
        for i in range(n)
    ]  # fmt: skip
    return seqs, {"xor": xor, "hidden": hidden}


@pytest.fixture(scope="module")
def xor_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32,
    )  # fmt: skip
    model = LlamaForCausalLM(cfg)
    seqs, _ = _sequences(2048, seed=1)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    rng = np.random.default_rng(0)
    for _ in range(120):
        batch = [seqs[i] for i in rng.integers(0, len(seqs), 64)]
        x, labels, _last = _pad(batch)
        # Loss on the answer token only: the model must compute the XOR at the query token.
        loss = model(input_ids=x, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    yield model.eval(), float(loss.detach())
    torch.set_num_threads(n_threads)


def _pad(batch):
    width = max(map(len, batch))
    x = torch.zeros(len(batch), width, dtype=torch.long)
    labels = torch.full((len(batch), width), -100)
    for k, s in enumerate(batch):
        x[k, : len(s)] = torch.tensor(s)
        labels[k, len(s) - 1] = s[-1]
    return x, labels, [len(s) - 2 for s in batch]


def _probe_set(model, confound, n=600, seed=7):
    """Residual stream after each layer at the query token ``{hook: [n, 32]}`` and its index."""
    seqs, props = _sequences(n, seed, confound)
    acts = {}
    with torch.no_grad():
        for i in range(0, n, 100):
            x, _, last = _pad(seqs[i : i + 100])
            # Right padding: the query token's activations see only the real tokens before it.
            hs = model(input_ids=x, output_hidden_states=True).hidden_states
            for layer, h in enumerate(hs[1:]):
                rows = h[torch.arange(len(last)), torch.tensor(last)].numpy()
                acts.setdefault(f"blocks.{layer}.hook_resid_post", []).append(rows)
    index = pd.DataFrame(
        {
            "group": [f"p{i // 2}" for i in range(n)],
            "position": [len(s) - 2 for s in seqs],
            "token_id": QUERY,
            "recent_ids": [s[-9:-1] for s in seqs],
            "xor": props["xor"],
            "hidden": props["hidden"],
        }
    )
    return {h: np.concatenate(v) for h, v in acts.items()}, index


def _best(table, design):
    t = table[(table["design"] == design) & (table["probe"] == "logreg")]
    t = t[t["metric"] == "selectivity"]
    return t.loc[t["value"].idxmax()]


def _value(table, design, probe, metric="auroc", hook=None):
    t = table[(table["design"] == design) & (table["probe"] == probe) & (table["metric"] == metric)]
    if hook is not None:
        t = t[t["hook"] == hook]
    return t.iloc[0]


MATCH = {"exact": ("token_id", "position"), "near": ()}


def test_matched_probe_finds_a_present_property_over_the_matched_surface(xor_model):
    model, loss = xor_model
    assert loss < 0.1, "the model must have learned the XOR for the test to mean anything"
    acts, index = _probe_set(model, "xor")
    table, scores = matched_probe(acts, index, "xor", **MATCH, n_boot=300, seed=0)
    # The confound is real: on all rows, length alone predicts the property well.
    assert _value(table, "unmatched", "surface")["value"] > 0.75
    # Matched on length, the surface reader is back near chance; the probe is not.
    surf = _value(table, "matched", "surface")
    assert 0.35 < surf["value"] < 0.65
    best = _best(table, "matched")
    assert best["lo"] > 0.25
    assert _value(table, "matched", "logreg", hook=best["hook"])["value"] > 0.9
    assert set(scores["design"]) == {"unmatched", "matched"}
    # Balanced classes: every matched pair is one state of each class.
    m = table[table["design"] == "matched"].iloc[0]
    assert m["n"] == 2 * m["n_pairs"] and m["n_pos"] == m["n_pairs"]


def test_matched_probe_finds_nothing_in_an_absent_property(xor_model):
    model, _ = xor_model
    acts, index = _probe_set(model, "hidden")
    table, _ = matched_probe(acts, index, "hidden", **MATCH, n_boot=300, seed=0)
    assert _value(table, "unmatched", "surface")["value"] > 0.75
    # Unmatched, a probe reads the length off the activations and looks informative...
    assert _value(table, "unmatched", "logreg", hook="blocks.1.hook_resid_post")["value"] > 0.55
    # ...matched, it has nothing left to read.
    assert 0.35 < _value(table, "matched", "surface")["value"] < 0.65
    best = _best(table, "matched")
    assert best["lo"] < 0.0 < best["hi"] or best["hi"] < 0.0
    assert best["value"] < 0.1


def test_verdict_and_difference_on_present_vs_absent(xor_model):
    model, _ = xor_model
    runs = {}
    for prop in ("xor", "hidden"):
        acts, index = _probe_set(model, prop)
        runs[prop] = matched_probe(acts, index, prop, **MATCH, n_boot=300, seed=0)[1]
    diff = selectivity_difference(runs["xor"], runs["hidden"], n_boot=300, seed=0)
    assert diff["difference"] > 0.3 and diff["lo"] > 0.2
    v = procedure_verdict(diff)
    assert v["verdict"] == "strong_only"
    assert "strong and not weak" in v["text"]
    assert (
        procedure_verdict(selectivity_difference(runs["hidden"], runs["hidden"]))["verdict"]
        == "neither"
    )
    assert procedure_verdict(selectivity_difference(runs["xor"], runs["xor"]))["verdict"] == "both"


def test_matching_pairs_equal_surfaces_without_reuse():
    rng = np.random.default_rng(0)
    n = 400
    index = pd.DataFrame(
        {
            "group": [f"p{i // 4}" for i in range(n)],
            "label": (rng.random(n) < 0.3).astype(int),
            "token_id": rng.integers(0, 3, n),
            "resp_pos": rng.normal(50, 10, n),
        }
    )
    m = match_states(index, "label", exact=("token_id",), near=("resp_pos",), caliper=0.1)
    assert m.index.is_unique  # no state used twice
    per_pair = m.groupby("pair")
    assert (per_pair["label"].sum() == 1).all() and (per_pair.size() == 2).all()
    assert (per_pair["token_id"].nunique() == 1).all()
    assert (per_pair["resp_pos"].agg(np.ptp) <= 0.1 * index["resp_pos"].std() + 1e-9).all()
    assert len(m) // 2 > 80  # most of the rarer class finds a partner
    within = match_states(index, "label", exact=(), near=("resp_pos",), within_group=True)
    assert (within.groupby("pair")["group"].nunique() == 1).all()
    with pytest.raises(DataError, match="label 'nope'"):
        match_states(index, "nope")


@pytest.mark.integration
def test_dead_end_probe_writes_the_matched_design_and_the_comparison(tmp_path, tiny_model_dir):
    from sftlens.probes import VERDICTS, ProbeConfig, countdown_examples, dead_end_probe

    run = tiny_model_dir.parent.parent
    examples = countdown_examples(24, seed=1, expansions=[0, 1, 2])
    assert {e["problem_id"] for e in examples} == {e["problem_id"] for e in examples[::3]}
    cfg = ProbeConfig(n_splits=3, batch_size=8, kinds=["step_end"], n_boot=50, caliper=0.5)
    # The same checkpoint under two names: the difference must be exactly zero.
    dead_end_probe({"strong": run, "weak": run}, tmp_path, cfg, examples=examples)
    mt = pd.read_parquet(tmp_path / "dead_end_matched.parquet")
    assert set(mt["design"]) == {"unmatched", "matched"}
    m = mt[(mt["design"] == "matched") & (mt["probe"] == "surface")].iloc[0]
    assert m["n"] == 2 * m["n_pairs"] and m["n_pairs"] >= 10
    u = mt[(mt["design"] == "unmatched") & (mt["probe"] == "surface")].iloc[0]
    assert u["n"] > m["n"]
    cmp = pd.read_csv(tmp_path / "strong_vs_weak.csv")
    assert len(cmp) == 1 and cmp["verdict"].iloc[0] in VERDICTS
    assert cmp["difference"].iloc[0] == 0 and cmp["lo"].iloc[0] == 0 == cmp["hi"].iloc[0]
    assert cmp["text"].iloc[0].startswith(VERDICTS[cmp["verdict"].iloc[0]])
    # A rerun finds every table and recomputes nothing.
    before = (tmp_path / "strong" / "step-000000" / "matched.parquet").stat().st_mtime_ns
    dead_end_probe({"strong": run, "weak": run}, tmp_path, cfg, examples=examples)
    assert (tmp_path / "strong" / "step-000000" / "matched.parquet").stat().st_mtime_ns == before


def test_report_paragraph_prints_selectivity_over_surface_and_the_verdict():
    from sftlens.experiments._report_text import probe_paragraph

    rows = []
    for model, gain in (("strong-cot", 0.2), ("weak-cot", 0.0)):
        for step in (0, 160):
            for layer in (0, 1):
                v = gain * (step > 0) * layer
                rows += [
                    dict(model=model, step=step, layer=layer, metric="auroc", value=0.84),
                    dict(model=model, step=step, layer=layer, metric="selectivity", value=v,
                         lo=v - 0.05, hi=v + 0.05),
                ]  # fmt: skip
            rows.append(dict(model=model, step=step, layer=-1, metric="surface_auroc", value=0.51))
    text = probe_paragraph(pd.DataFrame(rows))
    assert "0.84" not in text  # raw AUROC no longer stands alone
    assert "best selectivity over the surface baseline" in text
    assert "to +0.20 [+0.15, +0.25] (layer 1) at step 160" in text
    assert "the surface baseline alone scores 0.51 AUROC" in text
    assert "procedure decodable in strong and not weak" in text


@pytest.mark.integration
def test_causal_controls_compare_the_probe_direction_with_random_ones(tmp_path, tiny_model_dir):
    from safetensors.torch import save_file

    from sftlens.probes import causal_controls, random_directions

    hook = "blocks.1.hook_resid_post"
    unit = torch.randn(32, generator=torch.Generator().manual_seed(3))
    unit = unit / unit.norm()
    save_file({hook: unit, f"{hook}.norm": torch.tensor([4.0])}, str(tmp_path / "d.safetensors"))
    kw = dict(alphas=(4.0,), n_random=2, n_problems=3, max_new_tokens=12, n_boot=50, seed=0)
    t = causal_controls(
        tiny_model_dir, tmp_path / "d.safetensors", 1, **kw, out=tmp_path / "c.parquet"
    )
    assert (tmp_path / "c.csv").is_file()
    names = {"none", "probe", "random0", "random1", "random_mean", "probe_minus_random"}
    assert set(t["direction"]) == names
    assert set(t["intervention"]) == {"none", "steer", "ablate"}
    assert t.loc[t["direction"] == "none", "delta"].isna().all()
    # The summary is the probe's change minus the random directions' mean change.
    always = t["metric"].isin(["accuracy", "n_tokens", "backtracks_per_trace"])  # never NaN
    for _, g in t[always & (t["direction"] != "none")].groupby(["intervention", "metric"]):
        d = g.set_index("direction")["delta"]
        assert d["probe_minus_random"] == pytest.approx(d["probe"] - d["random_mean"])
    # Random directions: unit norm, distinct, seeded; the table records the probe's norm.
    r = random_directions(32, 2, seed=0)
    assert all(abs(float(v.norm()) - 1) < 1e-6 for v in r) and not torch.equal(r[0], r[1])
    assert torch.equal(random_directions(32, 2, seed=0)[1], r[1])
    assert (t["direction_norm"] == 4.0).all()
    acc = t[(t["metric"] == "accuracy") & t["value"].notna()]
    assert ((acc["lo"] <= acc["value"]) & (acc["value"] <= acc["hi"])).all()


def test_weighted_auroc_equals_the_auroc_of_the_resampled_rows():
    from sklearn.metrics import roc_auc_score

    from sftlens.probes._matched import group_weights, weighted_auroc

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(size=300) + y, 1)  # rounded: ties count one half
    w = rng.integers(0, 3, (4, 300)).astype(float)
    got = weighted_auroc(y, s, np.vstack([np.ones(300), w]))
    assert got[0] == pytest.approx(roc_auc_score(y, s))
    for k in range(4):
        rows = np.repeat(np.arange(300), w[k].astype(int))
        assert got[k + 1] == pytest.approx(roc_auc_score(y[rows], s[rows]))
    # Group weights: row 0 is all ones; each resample draws as many groups as there are.
    groups = np.array(["a", "b", "b", "c"])
    gw = group_weights(groups, np.unique(groups), 20, seed=1)
    assert (gw[0] == 1).all() and (gw[1:, 1] == gw[1:, 2]).all()
    assert (gw[1:, [0, 1, 3]].sum(1) == 3).all()


def test_a_missing_surface_value_matches_only_another_missing_value():
    index = pd.DataFrame(
        {
            "group": ["a", "b", "c", "d", "e", "f"],
            "label": [1, 0, 1, 0, 0, 0],
            "gap": [np.nan, np.nan, 5.0, 5.1, 50.0, np.nan],
        }
    )
    m = match_states(index, "label", exact=(), near=("gap",), caliper=0.25, seed=0)
    pairs = {tuple(sorted(g["group"])) for _, g in m.groupby("pair")}
    assert ("c", "d") in pairs and len(pairs) == 2
    assert any(set(p) <= {"a", "b", "f"} for p in pairs)
