"""A fitted layer over the rules: one logistic model per label, stored as plain JSON.

The file (written by ``sftlens tag-fit``) holds, besides the weights: the rule-set id it was
fitted over (a tagger with other rules refuses it), the label map, the training files' hashes,
the feature spec, and the held-out figures measured with exactly these weights. Its id is a
hash of what decides predictions (rules, labels, features, weights, thresholds), recomputed on
load, so the ``ruleset`` of a Tags record (``<rule-set id>+fit:<id>``) names the fit that
produced it even if the file was edited.

At tagging time the layer labels each sentence it covers: a sentence it predicts keeps its rule
spans of that label, or gets a whole-sentence span (rule ``fit``) when no rule fired there; a
sentence it does not predict loses that label's spans. Labels the file does not cover stay
with the rules.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sftlens.core import ConfigError, DataError, read_json, write_json
from sftlens.trace_tagger._features import unit_features

FORMAT = "sftlens-tagger-calibration"
FORMAT_VERSION = 1
FEATURE_SPEC = "sftlens-features-v1"
FIT_RULE = "fit"
DEFAULT_CALIBRATION = Path(__file__).with_name("data") / "default_calibration.json"


def _model_id(model: dict) -> str:
    keys = ("ruleset", "feature_spec", "labels", "intercept", "threshold", "weights")
    blob = json.dumps({k: model[k] for k in keys}, sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


class Calibration:
    """A loaded fitted layer.

    Args:
        model: the file's JSON object (see `fit_calibration` for how one is made).
        source: where it came from, for error messages.
    """

    def __init__(self, model: dict, source: str = "<calibration>"):
        if model.get("format") != FORMAT or model.get("version") != FORMAT_VERSION:
            raise ConfigError(
                f"{source}: not a tagger calibration (format {model.get('format')!r} version "
                f"{model.get('version')!r}); make one with `sftlens tag-fit`."
            )
        if model.get("feature_spec") != FEATURE_SPEC:
            raise ConfigError(
                f"{source}: fitted on features {model.get('feature_spec')!r}, this tagger "
                f"computes {FEATURE_SPEC!r}; fit it again with `sftlens tag-fit`."
            )
        self.model = model
        self.source = source
        self.ruleset: str = model["ruleset"]
        self.labels: tuple[str, ...] = tuple(model["labels"])
        self.id = _model_id(model)
        vocab = sorted({f for lab in self.labels for f in model["weights"][lab]})
        self.index = {f: i for i, f in enumerate(vocab)}
        self.weights = np.zeros((len(vocab), len(self.labels)))
        for j, lab in enumerate(self.labels):
            for f, w in model["weights"][lab].items():
                self.weights[self.index[f], j] = w
        self.intercept = np.array([model["intercept"][lab] for lab in self.labels])
        self.threshold = np.array([model["threshold"][lab] for lab in self.labels])

    @classmethod
    def load(cls, path: str | os.PathLike) -> Calibration:
        """Read a calibration file (a `DataError`/`ConfigError` names the file on failure)."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: calibration file not found; make one with `sftlens tag-fit`.")
        model = read_json(path)
        if not isinstance(model, dict):
            raise DataError(f"{path}: not a JSON object; make one with `sftlens tag-fit`.")
        try:
            return cls(model, str(path))
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{path}: malformed calibration ({e!r}); fit it again.") from None

    @staticmethod
    def resolve(spec: str | os.PathLike | Calibration | None) -> Calibration | None:
        """A path, ``"default"`` (the one shipped in the package), a `Calibration` or None."""
        return resolve_calibration(spec)

    def save(self, path: str | os.PathLike) -> None:
        """Write the file atomically (one line of JSON, weights rounded as fitted)."""
        write_json(path, {**self.model, "id": self.id}, indent=None)

    def check_rules(self, ruleset: str) -> None:
        """Refuse use with rules other than those the layer was fitted over."""
        if ruleset != self.ruleset:
            raise ConfigError(
                f"{self.source}: fitted over rules {self.ruleset}, but the tagger's rules are "
                f"{ruleset}; fit it again with `sftlens tag-fit` on the current rules."
            )

    @property
    def tag_id(self) -> str:
        """The ``ruleset`` value of Tags records this layer produced."""
        return f"{self.ruleset}+fit:{self.id}"

    def scores(self, features: Sequence[set[str]]) -> np.ndarray:
        """``(n_units, n_labels)`` probabilities for units' feature sets."""
        from scipy.sparse import csr_matrix

        index = self.index
        cols = [[index[x] for x in f if x in index] for f in features]
        indptr = np.cumsum([0, *map(len, cols)])
        flat = np.fromiter((c for row in cols for c in row), np.int64, count=int(indptr[-1]))
        X = csr_matrix((np.ones(len(flat)), flat, indptr), shape=(len(features), len(index)))
        z = X @ self.weights + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def predict(
        self, text: str, units: Sequence[tuple[int, int]], unit_rules: Sequence[set[str]]
    ) -> np.ndarray:
        """``(n_units, n_labels)`` booleans: which labels each unit of `text` carries."""
        if not len(units):
            return np.zeros((0, len(self.labels)), bool)
        return self.scores(unit_features(text, units, unit_rules)) >= self.threshold


_LOADED: dict[str, Calibration] = {}


def resolve_calibration(spec: str | os.PathLike | Calibration | None) -> Calibration | None:
    """A `Calibration` from a path, ``"default"`` (the one shipped in the package), or None."""
    if spec is None or isinstance(spec, Calibration):
        return spec
    path = DEFAULT_CALIBRATION if str(spec) == "default" else Path(spec)
    if not path.is_file():
        return Calibration.load(path)  # the one-line "not found" error
    st = path.stat()
    # A file rewritten in place (a refit) is read again.
    key = f"{path.resolve()}|{st.st_mtime_ns}|{st.st_size}"
    if key not in _LOADED:
        _LOADED[key] = Calibration.load(path)
    return _LOADED[key]
