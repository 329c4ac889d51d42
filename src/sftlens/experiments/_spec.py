"""The experiment spec: one YAML file declaring models, data, SFT arms, eval sets and analyses.

A spec names every input of every stage; `--scale` picks one of its size presets, so the same
comparison runs in a minute on a laptop (``micro``/``tiny``) or for hours on a GPU (``full``).
Specs shipped with the package live in ``sftlens/configs/experiments/<name>.yaml``.
"""

from __future__ import annotations

import dataclasses
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from sftlens.core import (
    Config,
    ConfigError,
    check_input,
    option,
    parse_overrides,
    read_yaml,
)

SPEC_FILE = "spec.yaml"
SCALES = ("micro", "tiny", "small", "full")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclasses.dataclass
class Sizes(Config):
    """Sizes for one scale: how much data, how many steps, how many samples."""

    base_corpus: int = option(600, "records in the synthetic base corpus (toy models)")
    vocab_size: int = option(384, "toy tokenizer vocabulary size")
    pretrain_steps: int = option(60, "optimizer steps pretraining each toy base on the corpus")
    sft_examples: int = option(256, "SFT examples generated per data set")
    sft_steps: int = option(40, "optimizer steps of each SFT arm (the fixed step budget)")
    checkpoints: int = option(
        5, "checkpoints in each SFT arm's grid (step 0 and the last included)"
    )
    batch_size: int = option(16, "sequences per optimizer step")
    seq_len: int = option(256, "maximum tokens per SFT sequence (longer examples are cut)")
    pretrain_seq_len: int = option(512, "tokens per packed pretraining row")
    pretrain_schedule: Literal["constant", "cosine", "linear"] = option(
        "cosine",
        "learning-rate shape of pretraining after warmup; constant suits runs of a few hundred "
        "steps, where a decay stalls the loss before the toy bases learn the corpus",
    )
    eval_problems: int = option(16, "problems per eval set")
    samples: int = option(1, "completions sampled per eval problem")
    max_new_tokens: int = option(160, "generation budget per completion")
    probe_problems: int = option(24, "problems whose traces label the dead-end probe")
    probe_folds: int = option(
        3, "cross-validation folds of the dead-end probe (grouped by problem)"
    )
    causal_problems: int = option(
        0,
        "problems of the causal check at the last checkpoint (steering along the dead-end "
        "direction vs random directions; 0 = off)",
    )
    refusal_prompts: int = option(16, "harmful and harmless prompts each for the refusal analysis")
    traces_shown: int = option(2, "tagged traces shown per checkpoint in the report")
    toy_suffix: str = option("", "appended to toy model names, e.g. -small for the bigger zoo pair")

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, int) and v < (
                0 if f.name in ("pretrain_steps", "causal_problems") else 1
            ):
                raise ConfigError(f"sizes.{f.name}: must be positive, got {getattr(self, f.name)}.")
        if self.checkpoints < 2:
            raise ConfigError("sizes.checkpoints: need at least 2 (step 0 and the last step).")


@dataclasses.dataclass
class ModelSpec(Config):
    """A base model: a toy config trained from scratch on the base corpus, or a real model."""

    name: str = option(help="name used in paths and the report, e.g. toy-strong")
    base: str = option(help="toy-weak | toy-strong, or an HF model id / local path")
    pretrain: bool = option(True, "pretrain on the synthetic base corpus first (toy models)")
    pretrain_lr: float = option(3e-3, "peak learning rate of the pretraining run")
    dtype: str = option("auto", "weights dtype for real models: auto | float32 | bfloat16")

    @property
    def is_toy(self) -> bool:
        return self.base.startswith("toy-")

    def validate(self) -> None:
        _check_name("models", self.name)
        if self.pretrain and not self.is_toy:
            raise ConfigError(
                f"models.{self.name}.pretrain: only toy models (toy-weak, toy-strong, ...) are "
                f"pretrained on the base corpus; set pretrain: false for {self.base!r}."
            )


@dataclasses.dataclass
class DataSpec(Config):
    """An SFT data set: generated from a task in a style, or read from a local file."""

    name: str = option(help="name used by arms, e.g. cot")
    task: str = option("countdown", "task generating the data (ignored when path is set)")
    style: str = option("cot", "rendering style: cot | nocot | lowq | verbose")
    path: str | None = option(None, "a local JSONL/parquet SFT file instead of generated data")
    knobs: dict[str, Any] = option(help="task generation knobs", factory=dict)
    render: dict[str, Any] = option(
        help="rendering options of the task's style, e.g. max_expansions: 1 (Countdown cot)",
        factory=dict,
    )

    def validate(self) -> None:
        _check_name("data", self.name)
        if not self.path:
            _check_task(f"data.{self.name}.task", self.task)
        if self.render and not self.path:
            _check_render_options(self)


def _check_task(where: str, task: str) -> None:
    """An unknown task name fails when the spec loads (a dry run included), not after training."""
    from sftlens.tasks import TASKS

    if task not in TASKS:
        raise ConfigError(f"{where}: unknown task {task!r}; known: {', '.join(TASKS.names())}.")


def _check_render_options(d: DataSpec) -> None:
    """Reject a render option the task's `render` does not take, naming it and the known ones."""
    import inspect

    from sftlens.tasks import TASKS, get_task

    if d.task not in TASKS:
        return  # an unknown task is reported when the data is made, with the known names
    params = inspect.signature(get_task(d.task).render).parameters
    known = [k for k, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY]
    for key in d.render:
        if key not in known:
            raise ConfigError(
                f"data.{d.name}.render: {key!r} is not a render option of task {d.task!r}; "
                f"known: {', '.join(known) or 'none'}."
            )


@dataclasses.dataclass
class ArmSpec(Config):
    """One SFT run: a base model trained on a data set with an optimizer schedule."""

    name: str = option(help="name of the fine-tuned model in paths and the report")
    model: str = option("", "a models[].name (unused with `checkpoints`)")
    data: str = option("", "a data[].name (unused with `checkpoints`)")
    checkpoints: str = option(
        "",
        "an existing checkpoint series to analyse instead of training: any reference "
        "`sftlens checkpoints` reads (an HF Trainer/TRL/verl output folder, org/model@step*, ...)",
    )
    lr: float = option(1e-3, "peak learning rate")
    schedule: Literal["constant", "cosine", "linear"] = option("cosine", "learning-rate schedule")
    warmup_fraction: float = option(0.1, "fraction of steps spent warming up")
    unique_fraction: float = option(
        1.0,
        "fraction of the data set's examples used; below 1 the same examples repeat to fill the "
        "step budget (repeated exposure vs one pass)",
    )
    steps_factor: float = option(1.0, "multiplies the scale's sft_steps (e.g. 2 to overtrain)")
    grid: Literal["log", "linear"] = option("log", "checkpoint spacing")

    @property
    def external(self) -> bool:
        """True for an arm that analyses an existing checkpoint series (no training)."""
        return bool(self.checkpoints)

    def validate(self) -> None:
        _check_name("arms", self.name)
        if not self.external and not (self.model and self.data):
            raise ConfigError(
                f"arms.{self.name}: give `model` and `data` (an SFT run), or `checkpoints` "
                "(an existing series to analyse)."
            )
        if not 0 < self.unique_fraction <= 1:
            raise ConfigError(f"arms.{self.name}.unique_fraction: must be in (0, 1].")
        if self.lr <= 0 or self.steps_factor <= 0:
            raise ConfigError(f"arms.{self.name}: lr and steps_factor must be positive.")


@dataclasses.dataclass
class EvalSpec(Config):
    """An eval set: problems from a task (with knobs) or a local file, scored per checkpoint."""

    name: str = option(help="name in tables and the report, e.g. in_domain")
    task: str = option("countdown", "task: countdown | route | harmful | math | ...")
    split: str = option("eval", "split of generated problems (held out from training)")
    path: str | None = option(
        None, "a local problems file (JSONL, JSON, CSV, parquet) in its published shape"
    )
    fields: dict[str, str] = option(
        help="the file's columns by role, e.g. {prompt: Question, answer: Final}", factory=dict
    )
    size: int = option(0, "problems drawn from the file (seeded); 0 = the scale's eval_problems")
    knobs: dict[str, Any] = option(help="task generation knobs, e.g. n_numbers: 5", factory=dict)
    max_problems: int = option(
        0,
        "at most this many problems, whatever the scale asks (a finite pool such as the "
        "toy world's 192 held-out harmful prompts); 0 = no cap",
    )
    label: str = option("", "plain-words name for the report (default: name)")

    def n_problems(self, scale_n: int) -> int:
        """Problems this set is sampled on at a scale asking for `scale_n`."""
        return min(scale_n, self.max_problems) if self.max_problems else scale_n

    def validate(self) -> None:
        _check_name("evals", self.name)
        if not self.path:
            _check_task(f"evals.{self.name}.task", self.task)
        if self.size < 0 or self.max_problems < 0:
            key = "size" if self.size < 0 else "max_problems"
            raise ConfigError(f"evals.{self.name}.{key}: must be >= 0 (0 = the scale's).")
        if (self.fields or self.size) and not self.path:
            raise ConfigError(f"evals.{self.name}: fields and size apply to a `path`; add one.")


@dataclasses.dataclass
class SamplingSpec(Config):
    """Sampling parameters for every rollout."""

    temperature: float = option(0.0, "0 = greedy")
    top_p: float = option(1.0, "nucleus sampling mass")
    batch_size: int = option(16, "prompts per generation batch")
    backend: str = option("hf", "hf | vllm")

    def validate(self) -> None:
        if self.temperature < 0:
            raise ConfigError(f"sampling.temperature = {self.temperature}: must be >= 0.")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"sampling.top_p = {self.top_p}: must be in (0, 1].")
        if self.batch_size < 1:
            raise ConfigError(f"sampling.batch_size = {self.batch_size}: must be at least 1.")


@dataclasses.dataclass
class TagSpec(Config):
    """How traces are tagged (``analysis.tag``; ``tag: true`` is ``{enabled: true}``)."""

    enabled: bool = option(True, "tag reasoning behaviours in every trace")
    calibration: str | None = option(
        None,
        "a fitted layer over the rules (sftlens tag-fit) file, or 'default' for the one shipped "
        "in the package; null tags with the deterministic rules alone",
    )


@dataclasses.dataclass
class AnalysisSpec(Config):
    """Which analyses run after sampling."""

    tag: bool | TagSpec = option(
        help="tag reasoning behaviours in every trace: true/false, or a mapping "
        "{enabled, calibration}",
        factory=TagSpec,
    )
    ruleset: str = option("default", "trace-tagger rule set")
    probe: bool = option(True, "dead-end probe by layer and checkpoint")
    refusal: bool = option(True, "refusal rate, refusal-direction drift and AUROC per checkpoint")
    refusal_harmful: str = option(
        "", "harmful prompts file (AdvBench, HarmBench, JailbreakBench, ...; '' = the toy world's)"
    )
    refusal_harmless: str = option(
        "", "harmless prompts file (Alpaca, XSTest's safe prompts, ...; '' = the toy world's)"
    )
    probe_task: str = option("countdown", "task whose ground-truth dead ends label the probe")

    def validate(self) -> None:
        _check_task("analysis.probe_task", self.probe_task)
        if bool(self.refusal_harmful) != bool(self.refusal_harmless):
            raise ConfigError(
                "analysis: give both refusal_harmful and refusal_harmless (or neither, for the "
                "toy world's prompts)."
            )
        if isinstance(self.tag, bool):
            self.tag = TagSpec(enabled=self.tag)


@dataclasses.dataclass
class ExperimentSpec(Config):
    """A whole experiment: the inputs of every stage, and size presets per scale."""

    name: str = option(help="run name; the run folder is runs/<name>/")
    description: str = option("", "what the experiment compares, in one or two sentences")
    seed: int = option(0, "master seed; every stage derives its own from it")
    scale: str = option("tiny", "the chosen size preset (set by --scale)")
    device: str = option("cpu", "torch device for training, sampling and probing")
    shipped_bases: bool = option(
        True,
        "install a toy base shipped with sftlens instead of pretraining it, when its recipe "
        "(pretraining parameters, base corpus and tokenizer bytes) equals this run's; false "
        "always pretrains",
    )
    scales: dict[str, Sizes] = option(help="size presets by scale", factory=dict)
    models: list[ModelSpec] = option(help="base models", factory=list)
    data: list[DataSpec] = option(help="SFT data sets", factory=list)
    arms: list[ArmSpec] = option(help="SFT runs (model x data x schedule)", factory=list)
    evals: list[EvalSpec] = option(help="eval sets", factory=list)
    sampling: SamplingSpec = option(help="sampling parameters", factory=SamplingSpec)
    analysis: AnalysisSpec = option(help="analyses after sampling", factory=AnalysisSpec)

    def validate(self) -> None:
        _check_name("name", self.name)
        if self.seed < 0:
            raise ConfigError(f"seed = {self.seed}: use a seed of 0 or more.")
        if not self.scales:
            raise ConfigError(f"spec {self.name!r}: 'scales' is empty; give at least one preset.")
        if self.scale not in self.scales:
            raise ConfigError(
                f"scale {self.scale!r} is not defined in spec {self.name!r}; "
                f"defined: {', '.join(self.scales)}."
            )
        for section in ("models", "data", "arms", "evals"):
            names = [x.name for x in getattr(self, section)]
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ConfigError(
                    f"{section}: duplicate name {sorted(dup)[0]!r}; names must be unique."
                )
        if not self.arms:
            raise ConfigError(f"spec {self.name!r}: no arms; declare at least one SFT run.")
        models = {m.name for m in self.models}
        data = {d.name for d in self.data}
        for a in self.arms:
            if a.external:
                continue
            if a.model not in models:
                raise ConfigError(
                    f"arms.{a.name}.model: {a.model!r} is not a models[].name; known: {', '.join(sorted(models))}."
                )
            if a.data not in data:
                raise ConfigError(
                    f"arms.{a.name}.data: {a.data!r} is not a data[].name; known: {', '.join(sorted(data))}."
                )
        if {a.name for a in self.arms} & models:
            raise ConfigError("arms and models share a name; rename one so run folders differ.")

    @property
    def sizes(self) -> Sizes:
        """The size preset of the chosen scale."""
        return self.scales[self.scale]

    @property
    def toy(self) -> bool:
        """True when any model is a toy model (the toy tokenizer and base corpus are needed)."""
        return any(m.is_toy for m in self.models)

    def model(self, name: str) -> ModelSpec:
        return next(m for m in self.models if m.name == name)

    def dataset(self, name: str) -> DataSpec:
        return next(d for d in self.data if d.name == name)

    def eval_label(self, name: str) -> str:
        e = next((e for e in self.evals if e.name == name), None)
        return (e.label or e.name) if e else name


def _check_name(section: str, name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"{section}: name {name!r} must be letters, digits, '-', '_' or '.' (it names folders)."
        )


def shipped_specs() -> list[str]:
    """Names of the specs shipped with the package."""
    root = resources.files("sftlens") / "configs" / "experiments"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def spec_path(name_or_path: str | Path) -> Path:
    """Resolve a spec argument: a YAML path, or the name of a shipped spec."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        check_input(p, "spec file")
        return p
    root = resources.files("sftlens") / "configs" / "experiments"
    cand = root / f"{name_or_path}.yaml"
    if not cand.is_file():
        raise ConfigError(
            f"unknown spec {str(name_or_path)!r}: not a file and not a shipped spec; "
            f"shipped: {', '.join(shipped_specs())}."
        )
    return Path(str(cand))


def load_spec(
    name_or_path: str | Path,
    scale: str | None = None,
    overrides: list[str] | None = None,
) -> ExperimentSpec:
    """Load and validate a spec (file path or shipped name), picking `scale` if given.

    Args:
        name_or_path: a YAML file, or a shipped spec name such as ``countdown_lab``.
        scale: one of the spec's ``scales`` (``micro``, ``tiny``, ``small``, ``full``).
        overrides: ``key=value`` strings applied on top (e.g. ``seed=3``, ``device=cuda``).

    Raises:
        ConfigError: unknown key, undefined scale, dangling arm reference (message names it).
    """
    path = spec_path(name_or_path)
    raw = _resolve_extends(path, seen=())
    ov = parse_overrides(overrides)
    if scale is not None:
        ov["scale"] = scale
    try:
        return ExperimentSpec.from_dict(_merge(raw, ov))
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def _merge(base: dict, upd: dict) -> dict:
    """Deep-merge mappings; lists and scalars in `upd` replace those in `base`."""
    out = dict(base)
    for k, v in upd.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _resolve_extends(path: Path, seen: tuple) -> dict:
    """The spec's mapping with ``extends: <spec>`` resolved (the named spec, then this one)."""
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of spec keys at the top level.")
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: extends must name one spec (a path or a shipped name).")
    ppath = spec_path(parent if not Path(parent).suffix else path.parent / parent)
    if ppath.resolve() in seen:
        raise ConfigError(f"{path}: extends forms a cycle through {ppath}.")
    base = _resolve_extends(ppath, (*seen, path.resolve()))
    return _merge(base, raw)
