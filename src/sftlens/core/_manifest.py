"""Seeds, fingerprints and version records: what makes a result reproducible and skippable."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import random
from pathlib import Path
from typing import Any

TRACKED_PACKAGES = (
    "sftlens",
    "torch",
    "transformers",
    "accelerate",
    "tokenizers",
    "transformer-lens",
    "spacy",
    "scikit-learn",
    "numpy",
    "pandas",
)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) with one integer."""
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    import numpy as np
    import torch

    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def fingerprint(obj: Any) -> str:
    """A short, stable hash of any JSON-serialisable object (sorted keys)."""
    blob = json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    """Installed versions of the packages whose behaviour a result depends on."""
    out: dict[str, str | None] = {}
    for n in names:
        try:
            out[n] = importlib.metadata.version(n)
        except importlib.metadata.PackageNotFoundError:
            out[n] = None
    return out


def environment() -> dict[str, Any]:
    """Versions plus the interpreter and platform, for manifests."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
    }


def path_fingerprint(path: str | os.PathLike) -> str:
    """Fingerprint of a file (its bytes) or a directory (relative names, sizes and mtimes)."""
    p = Path(path)
    if p.is_file():
        return file_sha256(p)[:16]
    if p.is_dir():
        items = sorted(
            (str(q.relative_to(p)), q.stat().st_size, int(q.stat().st_mtime))
            for q in p.rglob("*")
            if q.is_file()
        )
        return fingerprint(items)
    return "missing"
