#!/usr/bin/env bash
# Install torch into the given python: a CUDA build where a GPU is present, else the CPU build.
# The package itself asks only for a range (torch>=2.2); this script picks the build.
set -euo pipefail
PY=${1:-python}
TORCH_CPU_VERSION=${TORCH_CPU_VERSION:-2.13.0}
if "$PY" -c "import torch" 2>/dev/null; then
  echo "torch $("$PY" -c 'import torch; print(torch.__version__)') already installed"
  exit 0
fi
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  exec "$PY" -m pip install "torch>=2.2"
fi
# CPU only: a local +cpu wheel offered by pip's find-links, else the PyTorch CPU index.
"$PY" -m pip install --no-index --no-deps "torch==${TORCH_CPU_VERSION}+cpu" 2>/dev/null ||
  "$PY" -m pip install --retries 1 --timeout 30 "torch==${TORCH_CPU_VERSION}+cpu" \
    --extra-index-url https://download.pytorch.org/whl/cpu
