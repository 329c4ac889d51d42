#!/usr/bin/env bash
# GPU smoke test on a one-GPU machine: vLLM vs HF greedy outputs on a small locally built
# model, one bf16 training step (tokens/s, MFU) and activation caching on CUDA.
# Usage: benchmarks/gpu_smoke.sh [--require-gpu] [gpu_smoke.py options]
# Without CUDA it prints that it skipped and exits 0 (3 with --require-gpu).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
else
  echo "gpu_smoke: nvidia-smi not found"
fi
exec "$PY" benchmarks/gpu_smoke.py "$@"
