"""A model judge of reasoning behaviours, sentence by sentence, writing the Tags contract.

The rules (`sftlens.trace_tagger`) are fast and deterministic; a judge model is what most
papers label with. This backend lets a GPU user label the same sentences with a local HF causal
LM and compare the two with ``sftlens tag-eval --tags``. It lives outside `trace_tagger`, which
stays model-free.

Prompt. The behaviour classes are those of the labelling prompts published by Gandhi et al.,
"Cognitive Behaviors that Enable Self-Improving Reasoners, or, Four Habits of Highly Effective
STaRs" (arXiv 2503.01307, appendix: verification, backtracking, subgoal setting, backward
chaining), adapted to one sentence at a time (the previous sentence as context), with hedging
added and each definition worded as sftlens defines its label. The wording is ours, not a copy
of theirs; see `PROMPT`.

Decoding. No sampling: for each sentence the judge scores every answer (`ANSWERS`) by the
model's summed log-probability of its tokens after the prompt, and takes the best. So the same
model, text and prompt always give the same labels, and any causal LM (even a tiny random one
in the tests) yields a well-formed answer.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from sftlens.core import DataError, read_jsonl, write_jsonl

PROMPT = """You label the sentences of a model's reasoning trace with the behaviour each shows.

Behaviours:
- backtracking: the sentence abandons a path or a result and takes another ("That doesn't work, let me go back and try subtraction.").
- verification: the sentence checks an earlier step or result, including by computing it again ("Let me check: 4 * 6 = 24, which matches.").
- subgoal_setting: the sentence splits the problem into intermediate goals ("First, I need the area of the base.").
- backward_chaining: the sentence reasons backward from the goal ("To get 24, I would need 4 times 6.").
- hedging: the sentence states uncertainty without changing course ("I'm not sure this is right.").
- none: none of these.

Previous sentence: {previous}
Sentence: {sentence}
Behaviour:"""

ANSWERS = ("backtracking", "verification", "subgoal_setting", "backward_chaining", "hedging",
           "none")  # fmt: skip
JUDGE_RULE = "judge"


class Judge:
    """Label sentences with a local HF causal LM (see the module docstring).

    Args:
        model: a model directory or hub id (`sftlens.core.load_causal_lm`).
        device: torch device.
        batch_size: (sentence, answer) pairs scored per forward pass.
        trust_remote_code: off by default.

    Example:
        >>> judge = Judge("runs/x/models/m/checkpoints/step-000100")  # doctest: +SKIP
        >>> judge.tag("Wait, that is wrong. Let me check 4 * 6.")["counts"]  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | os.PathLike,
        device: str = "cpu",
        batch_size: int = 16,
        trust_remote_code: bool = False,
    ):
        from sftlens.core import load_causal_lm, load_tokenizer
        from sftlens.trace_tagger import Tagger

        self.name = Path(model).name if Path(model).exists() else str(model)
        self.model = load_causal_lm(model, device=device, trust_remote_code=trust_remote_code)
        self.tok = load_tokenizer(model)
        self.device = device
        self.batch_size = batch_size
        # The rules' own pipeline splits sentences and computes verbosity, so judge and rules
        # label the same sentences and the records have the same shape.
        self.splitter = Tagger()
        self.ruleset = f"judge:{self.name}"

    def _answer_ids(self) -> list[list[int]]:
        return [self.tok(" " + a, add_special_tokens=False)["input_ids"] for a in ANSWERS]

    def label_sentences(self, sentences: Sequence[str]) -> list[str]:
        """The best-scoring answer for each sentence (its predecessor as context)."""
        import torch

        answers = self._answer_ids()
        pairs = []
        for i, s in enumerate(sentences):
            prompt = PROMPT.format(previous=sentences[i - 1] if i else "(start of the trace)",
                                   sentence=s)  # fmt: skip
            p_ids = self.tok(prompt)["input_ids"]
            pairs += [(i, k, p_ids, a) for k, a in enumerate(answers)]
        scores = [[0.0] * len(ANSWERS) for _ in sentences]
        pad = self.tok.pad_token_id or 0
        for b in range(0, len(pairs), self.batch_size):
            batch = pairs[b : b + self.batch_size]
            seqs = [p + a for _, _, p, a in batch]
            width = max(len(s) for s in seqs)
            ids = torch.full((len(seqs), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, s in enumerate(seqs):
                ids[r, : len(s)] = torch.tensor(s)
                mask[r, : len(s)] = 1
            with torch.no_grad():
                logits = self.model(input_ids=ids.to(self.device),
                                    attention_mask=mask.to(self.device)).logits  # fmt: skip
            logp = torch.log_softmax(logits.float(), -1).cpu()
            for r, (i, k, p, a) in enumerate(batch):
                # Token t of the answer is predicted at position len(p) + t - 1.
                pos = torch.arange(len(p) - 1, len(p) - 1 + len(a))
                scores[i][k] = float(logp[r, pos, torch.tensor(a)].sum())
        return [ANSWERS[max(range(len(ANSWERS)), key=lambda k: row[k])] for row in scores]

    def tag(self, text: str | None) -> dict:
        """One Tags record body (``ruleset``, ``spans``, ``counts``, ``verbosity``) for `text`."""
        return next(iter(self.tag_many([text])))

    def tag_many(self, texts: Iterable[str | None]) -> Iterator[dict]:
        """Tag texts in order (see `tag`)."""
        from sftlens.trace_tagger import LABELS

        for text in texts:
            text = text or ""
            bounds = self.splitter.sentence_bounds(text)
            labels = self.label_sentences([text[s:e] for s, e in bounds]) if bounds else []
            spans = [{"start": s, "end": e, "label": lab, "rule": JUDGE_RULE,
                      "text": text[s:e], "sentence": k}
                     for k, ((s, e), lab) in enumerate(zip(bounds, labels, strict=True))
                     if lab != "none"]  # fmt: skip
            yield {
                "ruleset": self.ruleset,
                "spans": spans,
                "counts": {lab: sum(sp["label"] == lab for sp in spans) for lab in LABELS},
                "verbosity": self.splitter.tag(text)["verbosity"],
            }


def judge_file(
    in_path: str | os.PathLike,
    out_path: str | os.PathLike,
    model: str | os.PathLike,
    text_field: str = "completion",
    id_field: str = "id",
    limit: int | None = None,
    device: str = "cpu",
) -> int:
    """Label every record's text (or the first `limit`) and write Tags JSONL; returns records.

    Raises:
        DataError: a missing input, a bad line, or a record whose text field is not a string.
    """
    src = Path(in_path)
    if not src.is_file():
        raise DataError(f"{src}: file not found; check the path.")
    records = []
    for k, rec in enumerate(read_jsonl(src, required=(text_field,))):
        if limit is not None and k >= limit:
            break
        if rec[text_field] is not None and not isinstance(rec[text_field], str):
            raise DataError(f"{src}: record {k + 1}: field {text_field!r} is not a string.")
        records.append((rec.get(id_field, k), rec[text_field]))
    judge = Judge(model, device=device)
    tags = judge.tag_many(t for _, t in records)
    return write_jsonl(out_path, ({"id": i, **t} for (i, _), t in zip(records, tags, strict=True)))
