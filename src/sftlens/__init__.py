"""sftlens: see what reasoning SFT taught a model.

Stages (each an importable subpackage with a CLI verb): `sftlens.tasks` (toy world and data
loaders), `sftlens.train` (accelerate SFT loop and checkpoint grid), `sftlens.rollout`
(generation and scoring per checkpoint), `sftlens.trace_tagger` (spaCy rules for reasoning
behaviours), `sftlens.probes` (TransformerLens probes, refusal directions) and
`sftlens.experiments` (specs, runner, report). `sftlens.core` holds what they share.
"""

__version__ = "0.1.0"
