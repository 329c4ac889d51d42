"""One resolver for checkpoint references: every layout researchers' tools write, in step order.

A reference names one checkpoint or a series; `resolve_series` turns it into a `Series` (a model
name and its `Checkpoint`s, ordered by step). Accepted, checked in this order:

- ``name=path@step`` or ``path@step``: a local model dir with a step given by hand;
- a PEFT/LoRA adapter dir (``adapter_config.json``): merged onto ``base_model_name_or_path``;
- a model dir (``config.json``): one checkpoint; when it also holds a series below it (an HF
  Trainer output folder with its final model at the root), the series plus the root as the
  last point, named ``final``;
- an sftlens run (``checkpoints/step-NNNNNN/`` or ``step-NNNNNN/``);
- an HF Trainer / TRL / LLaMA-Factory output folder (``checkpoint-N/``, HF's
  ``trainer_state.json`` with ``global_step`` and ``log_history``);
- a verl folder (``global_step_N/actor/huggingface/``; a step holding only FSDP shards is an
  error that names verl's merger);
- any folder of model dirs (steps from their ``trainer_state.json`` or names);
- a hub id: ``org/model``, ``org/model@rev``, ``org/model:subfolder``, ``org/model@rev:sub``,
  and patterns ``org/model@step*`` (branches) or ``org/model:step*`` (folders). Offline
  (``HF_HUB_OFFLINE=1``) patterns expand over the local cache, and the series says so.

A step comes from the trainer state, else from the name (``checkpoint-50``, ``step1000``,
``global_step_7``); when a series has checkpoints without either, it is ordered by the natural
order of the names, each step is its position (``step_source="order"``), and the series' notes
say so once.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sftlens.core._checkpoints import CHECKPOINTS_DIR, TRAINER_STATE, Checkpoint
from sftlens.core._errors import DataError
from sftlens.core._io import atomic_dir, read_json, write_json

__all__ = [
    "Series",
    "is_model_dir",
    "materialize",
    "resolve_one",
    "resolve_series",
    "step_from_name",
]

ADAPTER_CONFIG = "adapter_config.json"
_SAID: set[str] = set()
_SKIP_FILES = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.onnx", "*.msgpack", "*.h5", "*.gguf")
VERL_MERGER = "python -m verl.model_merger merge --backend fsdp"
_STEP_NAME = re.compile(
    r"(?:^|[^a-z0-9])(?:checkpoint|global_step|step|iter|ckpt)[-_]?(\d+)(?![0-9])", re.I
)
_EXPLICIT = re.compile(r"^(?:(?P<name>[\w.+-]+)=)?(?P<path>.+?)(?:@(?P<step>\d+))?$")
_HUB = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<rev>[^:@\s]+))?(?::(?P<sub>[^@\s]+))?$")


@dataclasses.dataclass(frozen=True)
class Series:
    """A model's checkpoints in step order, with the notes a user should read once."""

    name: str
    checkpoints: list[Checkpoint]
    notes: list[str] = dataclasses.field(default_factory=list)


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def step_from_name(name: str) -> int | None:
    """The step a checkpoint's name carries: ``checkpoint-50`` -> 50, ``step1000`` -> 1000,
    ``global_step_7`` -> 7, ``stage1-step1000-tokens4B`` -> 1000; None when it carries none."""
    m = _STEP_NAME.search(name)
    return int(m.group(1)) if m else None


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def is_model_dir(path: str | os.PathLike) -> bool:
    """A dir an HF loader (or PEFT) can open: ``config.json`` or ``adapter_config.json``."""
    p = Path(path)
    return (p / "config.json").is_file() or (p / ADAPTER_CONFIG).is_file()


def _read_state(d: Path) -> dict[str, Any]:
    """Step, epoch, tokens, lr and loss from a dir's ``trainer_state.json`` (ours or HF's)."""
    f = d / TRAINER_STATE
    if not f.is_file():
        return {}
    st = read_json(f)
    if not isinstance(st, dict):
        raise DataError(f"{f}: expected a JSON object; rewrite or delete the file.")
    if "global_step" not in st:  # sftlens' own state
        return {k: st.get(k) for k in ("step", "epoch", "tokens_seen", "lr", "loss")}
    out: dict[str, Any] = {"step": st.get("global_step"), "epoch": st.get("epoch")}
    # HF log_history: one entry per logging step (loss, learning_rate, step), plus eval and
    # summary entries; the checkpoint's loss is the last logged training loss up to its step.
    logs = [
        e
        for e in st.get("log_history") or []
        if isinstance(e, dict) and "loss" in e and (e.get("step") or 0) <= (out["step"] or 0)
    ]
    if logs:
        out["loss"] = logs[-1].get("loss")
        out["lr"] = logs[-1].get("learning_rate")
    if st.get("num_input_tokens_seen"):
        out["tokens_seen"] = st["num_input_tokens_seen"]
    return out


def _local(d: Path, name: str | None = None, step: int | None = None) -> Checkpoint:
    """A `Checkpoint` for one model dir: step given, else from its state, else from its name."""
    st = _read_state(d)
    label = name or d.name
    if step is not None:
        src = "given"
    elif st.get("step") is not None:
        step, src = int(st["step"]), "trainer_state"
    else:
        step = step_from_name(label)
        src = "name" if step is not None else None
    return Checkpoint(
        path=str(d),
        step=step,
        epoch=st.get("epoch"),
        tokens_seen=st.get("tokens_seen"),
        lr=st.get("lr"),
        loss=st.get("loss"),
        name=label,
        step_source=src,
    )


def _has_weights(d: Path) -> bool:
    return any(d.glob("*.safetensors")) or any(d.glob("pytorch_model*.bin"))


def _verl_step(d: Path) -> Checkpoint:
    """``global_step_N/`` -> its ``actor/huggingface/`` model, or the merger's one-line error."""
    actor = d / "actor"
    hf = actor / "huggingface"
    if hf.is_dir() and (hf / "config.json").is_file() and _has_weights(hf):
        ck = _local(hf, name=d.name, step=step_from_name(d.name))
        return dataclasses.replace(ck, step_source="name")
    shards = sorted(actor.glob("model_world_size_*_rank_*.pt")) if actor.is_dir() else []
    what = f"only FSDP shards ({shards[0].name}, ...)" if shards else "no HF weights"
    raise DataError(
        f"{d}: verl saved {what}; merge them into HF weights with verl's model merger: "
        f"{VERL_MERGER} --local_dir {actor} --target_dir {hf}"
    )


def _children(root: Path) -> list[Checkpoint]:
    """The checkpoints directly below `root` (hidden and temporary dirs ignored)."""
    found = []
    for d in root.iterdir():
        if not d.is_dir() or d.name.startswith("."):
            continue
        if re.fullmatch(r"global_steps?_\d+", d.name) and (d / "actor").is_dir():
            found.append(_verl_step(d))
        elif is_model_dir(d):
            found.append(_local(d))
    return found


def _order(cks: list[Checkpoint], where: str, notes: list[str]) -> list[Checkpoint]:
    """By step when every checkpoint has one; else natural name order, steps = positions."""
    if all(c.step is not None for c in cks):
        steps = [c.step for c in cks]
        if len(set(steps)) == len(steps):
            return sorted(cks, key=lambda c: (c.step, _natural_key(c.name or c.path)))
    cks = sorted(cks, key=lambda c: _natural_key(c.name or c.path))
    if len(cks) == 1 and cks[0].step is None:
        notes.append(f"{where}: no step in its trainer state or name; it is step 0 here.")
        return [dataclasses.replace(cks[0], step=0, step_source="order")]
    if len(cks) > 1:
        notes.append(
            f"{where}: no step in the trainer state or names of "
            f"{', '.join(c.name or c.path for c in cks if c.step is None) or 'every checkpoint'}"
            " (or steps repeat); ordered by the natural order of the names, steps are positions "
            f"0..{len(cks) - 1}."
        )
        cks = [dataclasses.replace(c, step=i, step_source="order") for i, c in enumerate(cks)]
    return cks


def _series_dir(p: Path, notes: list[str]) -> list[Checkpoint]:
    """Every checkpoint of a local folder, in order (see the module's list of layouts)."""
    if (p / "actor").is_dir() and re.fullmatch(r"global_steps?_\d+", p.name):
        return [_verl_step(p)]
    if p.name == "actor" and re.fullmatch(r"global_steps?_\d+", p.parent.name):
        return [_verl_step(p.parent)]
    root = p / CHECKPOINTS_DIR if (p / CHECKPOINTS_DIR).is_dir() else p
    below = _children(root)
    if is_model_dir(p):
        me = _local(p)
        if not below:
            return _order([me], str(p), notes)
        # An HF Trainer output folder: the checkpoints, then the final model at the root.
        series = _order(below, str(p), notes)
        last = series[-1].step
        step = me.step if me.step is not None and me.step >= last else last
        src = me.step_source if step == me.step else f"final (after {series[-1].name})"
        final = dataclasses.replace(me, name="final", final=True, step=step, step_source=src)
        return [*series, final]
    if not below:
        raise DataError(
            f"{p}: no checkpoints found (expected a model dir with config.json, "
            f"{CHECKPOINTS_DIR}/step-NNNNNN/, checkpoint-N/ or global_step_N/actor/huggingface/)."
        )
    return _order(below, str(p), notes)


def _default_name(p: Path, cks: list[Checkpoint]) -> str:
    """The run's name: the folder above ``checkpoints/`` or above a lone checkpoint dir."""
    if len(cks) == 1 and not cks[0].final and step_from_name(p.name) is not None:
        up = p.parent.parent if p.parent.name == CHECKPOINTS_DIR else p.parent
        if up.name == "actor":  # verl: .../global_step_N/actor
            up = up.parent.parent
        return up.name or p.name
    if p.name == CHECKPOINTS_DIR:
        return p.parent.name
    return p.name


# --------------------------------------------------------------------------------- hub ids


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "") in ("1", "ON")


def _hub_cache() -> str | None:
    """The cache folder as the environment says now (the hub library reads it at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


def _cache_repo_dir(repo: str) -> Path:
    from huggingface_hub import constants

    root = Path(_hub_cache() or constants.HF_HUB_CACHE)
    return root / ("models--" + repo.replace("/", "--"))


def _hub_error(ref: str, e: Exception) -> DataError:
    from huggingface_hub import errors

    if isinstance(e, errors.LocalEntryNotFoundError) or _offline():
        return DataError(
            f"{ref}: not in the local hub cache and HF_HUB_OFFLINE=1; download it on a machine "
            f"with network (hf download {ref.split('@')[0].split(':')[0]}"
            f"{' --revision ' + ref.split('@')[1].split(':')[0] if '@' in ref else ''}) "
            "or unset HF_HUB_OFFLINE."
        )
    if isinstance(e, errors.RevisionNotFoundError):
        return DataError(
            f"{ref}: no such revision on the hub; list them with `sftlens checkpoints`."
        )
    if isinstance(e, errors.RepositoryNotFoundError):
        return DataError(
            f"{ref}: no such hub repo (or it is private: log in with `hf auth login`)."
        )
    return DataError(f"{ref}: the hub answered {type(e).__name__}: {e}")


def _expand_revisions(repo: str, pattern: str, notes: list[str]) -> list[str]:
    if _offline():
        refs = _cache_repo_dir(repo) / "refs"
        have = sorted(f.name for f in refs.iterdir() if f.is_file()) if refs.is_dir() else []
        notes.append(
            f"{repo}@{pattern}: HF_HUB_OFFLINE=1, so only the {len(have)} revision(s) in the "
            "local cache were matched; the hub may hold more."
        )
        return [r for r in have if fnmatch.fnmatchcase(r, pattern)]
    from huggingface_hub import HfApi

    try:
        branches = HfApi().list_repo_refs(repo).branches
    except Exception as e:  # hub errors are many; each becomes one line
        raise _hub_error(f"{repo}@{pattern}", e) from None
    return [b.name for b in branches if fnmatch.fnmatchcase(b.name, pattern)]


def _expand_folders(repo: str, rev: str | None, pattern: str, notes: list[str]) -> list[str]:
    if _offline():
        snap = _snapshot(repo, rev, None)
        notes.append(
            f"{repo}:{pattern}: HF_HUB_OFFLINE=1, so folders were matched in the cached "
            "snapshot only; folders never downloaded are not listed."
        )
        return sorted(
            d.name
            for d in Path(snap).iterdir()
            if d.is_dir() and fnmatch.fnmatchcase(d.name, pattern) and is_model_dir(d)
        )
    from huggingface_hub import HfApi

    try:
        tree = HfApi().list_repo_tree(repo, revision=rev)
        return sorted(
            t.path
            for t in tree
            if type(t).__name__ == "RepoFolder" and fnmatch.fnmatchcase(t.path, pattern)
        )
    except Exception as e:
        raise _hub_error(f"{repo}:{pattern}", e) from None


def _snapshot(repo: str, rev: str | None, sub: str | None) -> str:
    """The local snapshot dir (downloaded unless offline); one line on any hub error."""
    from huggingface_hub import snapshot_download

    ref = repo + (f"@{rev}" if rev else "") + (f":{sub}" if sub else "")
    try:
        return snapshot_download(
            repo,
            revision=rev,
            cache_dir=_hub_cache(),
            allow_patterns=[f"{sub}/*"] if sub else None,
            # Safetensors only: no pickled weights, no other formats' copies of the model.
            ignore_patterns=list(_SKIP_FILES),
        )
    except Exception as e:
        raise _hub_error(ref, e) from None


def _hub_series(ref: str, fetch: bool, notes: list[str]) -> list[Checkpoint]:
    m = _HUB.match(ref)
    if not m:
        raise DataError(
            f"{ref}: not a local path and not a hub id (org/model, org/model@rev, "
            "org/model:subfolder); check the path."
        )
    repo, rev, sub = m.group("repo"), m.group("rev"), m.group("sub")
    if rev and any(ch in rev for ch in "*?["):
        items = [(r, sub) for r in _expand_revisions(repo, rev, notes)]
    elif sub and any(ch in sub for ch in "*?["):
        items = [(rev, s) for s in _expand_folders(repo, rev, sub, notes)]
    else:
        items = [(rev, sub)]
    if not items:
        raise DataError(
            f"{ref}: the pattern matched nothing; list the repo's revisions or folders."
        )
    out = []
    for r, s in items:
        label = s or r or repo
        one = repo + (f"@{r}" if r else "") + (f":{s}" if s else "")
        path = one
        if fetch:
            snap = Path(_snapshot(repo, r, s))
            path = str(snap / s) if s else str(snap)
            if not is_model_dir(path):
                raise DataError(f"{one}: no config.json there; name a folder holding a model.")
        ck = _local(Path(path), name=label) if fetch else Checkpoint(path=path, name=label)
        if ck.step is None and step_from_name(label) is not None:
            ck = dataclasses.replace(ck, step=step_from_name(label), step_source="name")
        out.append(dataclasses.replace(ck, source=one))
    return _order(out, ref, notes)


# ----------------------------------------------------------------------------------- PEFT


def _cache_root() -> Path:
    return Path(os.environ.get("SFTLENS_CACHE") or Path.home() / ".cache" / "sftlens")


def materialize(ck: Checkpoint, log: Callable[[str], None] | None = None) -> Checkpoint:
    """A checkpoint loaders can open: a PEFT adapter is merged onto its base (once, cached).

    The merged model is written under ``$SFTLENS_CACHE/merged/`` (default
    ``~/.cache/sftlens``), keyed by the adapter's files, with the adapter's trainer state.
    """
    p = Path(ck.path)
    if not (p / ADAPTER_CONFIG).is_file() or (p / "config.json").is_file():
        return ck
    conf = read_json(p / ADAPTER_CONFIG)
    base = conf.get("base_model_name_or_path") if isinstance(conf, dict) else None
    if not base:
        raise DataError(
            f"{p / ADAPTER_CONFIG}: no base_model_name_or_path; set it to the base model's "
            "dir or hub id."
        )
    h = hashlib.sha256(str(base).encode())
    for f in sorted(p.iterdir()):
        if f.is_file() and f.name.startswith("adapter_"):
            h.update(f.name.encode() + f.read_bytes())
    dest = _cache_root() / "merged" / h.hexdigest()[:16]
    if not (dest / "config.json").is_file():
        _merge_adapter(p, str(base), dest, log)
    return dataclasses.replace(ck, path=str(dest), source=ck.source or str(p))


def _merge_adapter(adapter: Path, base: str, dest: Path, log: Callable[[str], None] | None) -> None:
    try:
        import peft
    except ImportError:
        raise DataError(
            f"{adapter}: a PEFT adapter; merging it needs peft: pip install 'sftlens[peft]'."
        ) from None
    from sftlens.core._checkpoints import load_causal_lm, load_tokenizer

    bases = resolve_series(base).checkpoints
    base_dir = bases[-1].path
    if log:
        log(f"{adapter}: merging the adapter onto {base} -> {dest}")
    model = load_causal_lm(base_dir, "cpu", "float32")
    merged = peft.PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    has_tok = any((adapter / f).is_file() for f in ("tokenizer.json", "tokenizer.model"))
    tok = load_tokenizer(adapter if has_tok else base_dir)
    with atomic_dir(dest) as tmp:
        merged.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if (adapter / TRAINER_STATE).is_file():
            write_json(tmp / TRAINER_STATE, read_json(adapter / TRAINER_STATE))


# ------------------------------------------------------------------------------ entry point


def resolve_series(
    refs: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    name: str | None = None,
    fetch: bool = True,
    log: Callable[[str], None] | None = None,
) -> Series:
    """Every checkpoint the reference(s) name, in step order, as one model's series.

    Args:
        refs: one reference or several (several are one series, e.g. ``checkpoint-50`` and
            ``checkpoint-100`` given one by one); see the module docstring for the forms.
        name: the model name (default: ``name=`` in the reference, else the run folder's name,
            else the hub repo id).
        fetch: download hub snapshots and merge PEFT adapters so every ``path`` is a local dir
            loaders open; False only lists (``sftlens checkpoints``).
        log: where notes go (each said once per process; default: stderr).

    Raises:
        DataError: a path that does not exist, a folder without checkpoints, a verl step
            without HF weights, a hub reference that cannot be found (one line each).
    """
    items = [refs] if isinstance(refs, (str, os.PathLike)) else list(refs)
    if not items:
        raise DataError("no checkpoint reference given; name a run dir, model dir or hub id.")
    notes: list[str] = []
    cks: list[Checkpoint] = []
    names: list[str] = []
    for raw in items:
        text = os.fspath(raw)
        m = _EXPLICIT.match(text)
        given_name = m.group("name") if m else None
        body = m.group("path") if m else text
        given_step = m.group("step") if m else None
        if given_step is not None and not Path(body).expanduser().exists():
            body, given_step = f"{body}@{given_step}", None  # org/model@1000 is a revision
        p = Path(body).expanduser()
        if p.exists():
            if given_step is not None:
                if not is_model_dir(p):
                    raise DataError(f"{text}: {p} is not a model dir (no config.json).")
                found = [_local(p, step=int(given_step))]
            else:
                found = _series_dir(p, notes)
            names.append(given_name or _default_name(p, found))
        elif body.startswith((".", "/", "~")) or re.split(r"[@:]", body)[0].count("/") != 1:
            raise DataError(f"{body}: no such run or model directory; check the path.")
        else:
            found = _hub_series(body, fetch, notes)
            names.append(given_name or _HUB.match(body).group("repo"))
        cks.extend(found)
    if len(items) > 1:
        cks = _order(cks, ", ".join(os.fspath(i) for i in items), notes)
    if fetch:
        cks = [materialize(c, log) for c in cks]
    for n in notes:
        if n not in _SAID:  # once per process, however many verbs resolve the same series
            _SAID.add(n)
            (log or _stderr)(f"note: {n}")
    return Series(name=name or names[0], checkpoints=cks, notes=notes)


def resolve_one(
    ref: str | os.PathLike,
    *,
    first: bool = False,
    log: Callable[[str], None] | None = None,
    fetch: bool = True,
) -> Checkpoint:
    """The one checkpoint `ref` names (fetched and merged, ready to load).

    Args:
        ref: any reference `resolve_series` reads.
        first: a series is fine and its first checkpoint is meant (a base model); otherwise a
            series is an error naming its checkpoints.
        fetch: False checks the reference without downloading or merging anything (the
            checkpoint's path may then not be loadable yet).
    """
    cks = resolve_series(ref, log=log, fetch=fetch).checkpoints
    if len(cks) > 1 and not first:
        names = ", ".join(c.name or c.path for c in cks[:4]) + (", ..." if len(cks) > 4 else "")
        raise DataError(
            f"{os.fspath(ref)}: names {len(cks)} checkpoints ({names}); pass one of them."
        )
    return cks[0]
