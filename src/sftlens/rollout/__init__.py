"""Sample every checkpoint on every eval set, score the completions, tabulate the curves.

``generate_traces(cfg)`` writes ``<out>/traces.jsonl`` (one scored completion per line, the
Trace contract, resumable); ``checkpoint_table(traces)`` turns it into the per-checkpoint
long-format table with bootstrap CIs; ``detect_dip`` reads a dip and its recovery off a curve;
``plot_curves`` draws the curves.
"""

from sftlens.rollout._config import (
    DEFAULT_REFUSAL_PHRASES,
    EvalSetConfig,
    GenerateConfig,
    ModelSpec,
    RefusalConfig,
    SamplingConfig,
)
from sftlens.rollout._dip import Dip, detect_dip, detect_dips
from sftlens.rollout._engines import (
    Completion,
    HFEngine,
    Request,
    VLLMEngine,
    make_engine,
    sample_seed,
)
from sftlens.rollout._judge import RefusalJudge
from sftlens.rollout._plots import plot_curves
from sftlens.rollout._scoring import problem_of_trace, rescore_traces, score_trace
from sftlens.rollout._sweep import (
    CONFIG_FILE,
    PROBLEMS_FILE,
    TRACES_FILE,
    generate_traces,
    load_eval_set,
)
from sftlens.rollout._tables import checkpoint_table, pass_at_k, write_table

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_REFUSAL_PHRASES",
    "PROBLEMS_FILE",
    "TRACES_FILE",
    "Completion",
    "Dip",
    "EvalSetConfig",
    "GenerateConfig",
    "HFEngine",
    "ModelSpec",
    "RefusalConfig",
    "RefusalJudge",
    "Request",
    "SamplingConfig",
    "VLLMEngine",
    "checkpoint_table",
    "detect_dip",
    "detect_dips",
    "generate_traces",
    "load_eval_set",
    "make_engine",
    "pass_at_k",
    "plot_curves",
    "problem_of_trace",
    "rescore_traces",
    "sample_seed",
    "score_trace",
    "write_table",
]
