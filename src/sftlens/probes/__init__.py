"""Probes: what SFT put in the activations (procedure or surface), and refusal directions.

Checkpoints load into TransformerLens (`load_lens`); a streaming cache keeps chosen hooks at
chosen token positions (`cache_activations`, `ActivationCache`); probes are fitted per hook
with grouped cross-validation and controls (`fit_probes`); the analyses ask whether dead ends
are decodable before a backtrack (`dead_end_probe`), whether they still are once surface
features cannot answer (`matched_probe` on states paired by `match_states`; strong vs weak as
one number by `selectivity_difference`, in words by `procedure_verdict`), whether behaviours
are used appropriately (`appropriateness_table`), whether the probe direction is causal
(`causal_check`; against random directions of the same norm, `causal_controls`) and how far
representations drift from the base (`cka_drift`).
"""

from sftlens.probes._analyses import (
    COMPARISON_TABLE,
    MATCHED_SCORES,
    MATCHED_TABLE,
    ProbeConfig,
    appropriateness_table,
    best_layer,
    cka_drift,
    countdown_examples,
    dead_end_probe,
    linear_cka,
)
from sftlens.probes._cache import ActivationCache, CacheItem, cache_activations
from sftlens.probes._causal import causal_controls, random_directions
from sftlens.probes._datasets import dead_end_items, last_prompt_items
from sftlens.probes._fit import difference_in_means, fit_probes, group_folds, probe_directions
from sftlens.probes._lens import LensInfo, hook_names, load_lens
from sftlens.probes._matched import match_states, matched_probe
from sftlens.probes._plots import plot_appropriateness, plot_drift, plot_probe_auroc
from sftlens.probes._steer import causal_check, steer_generate, steering
from sftlens.probes._verdict import (
    VERDICTS,
    compare_steps,
    procedure_verdict,
    selectivity_difference,
)

__all__ = [
    "COMPARISON_TABLE",
    "MATCHED_SCORES",
    "MATCHED_TABLE",
    "ActivationCache",
    "CacheItem",
    "LensInfo",
    "ProbeConfig",
    "VERDICTS",
    "appropriateness_table",
    "best_layer",
    "cache_activations",
    "causal_check",
    "causal_controls",
    "cka_drift",
    "compare_steps",
    "countdown_examples",
    "dead_end_items",
    "dead_end_probe",
    "difference_in_means",
    "fit_probes",
    "group_folds",
    "hook_names",
    "last_prompt_items",
    "linear_cka",
    "load_lens",
    "match_states",
    "matched_probe",
    "plot_appropriateness",
    "plot_drift",
    "plot_probe_auroc",
    "probe_directions",
    "procedure_verdict",
    "random_directions",
    "selectivity_difference",
    "steer_generate",
    "steering",
]

# Refusal directions across checkpoints (Arditi et al. 2024 selection, drift, causal effects).
from sftlens.probes._refusal import (  # noqa: E402
    Directions,
    RefusalDirectionConfig,
    Selection,
    activation_addition,
    directional_ablation,
    prompt_format,
    refusal_directions,
    refusal_token_ids,
    select_direction,
)
from sftlens.probes._refusal_eval import (  # noqa: E402
    analyze_checkpoint,
    load_direction,
    load_prompt_sets,
    refusal_report,
    save_direction,
)
from sftlens.probes._refusal_plots import plot_refusal  # noqa: E402

__all__ += [
    "Directions",
    "RefusalDirectionConfig",
    "Selection",
    "activation_addition",
    "analyze_checkpoint",
    "directional_ablation",
    "load_direction",
    "load_prompt_sets",
    "plot_refusal",
    "prompt_format",
    "refusal_directions",
    "refusal_report",
    "refusal_token_ids",
    "save_direction",
    "select_direction",
]
