#!/usr/bin/env bash
# GPU check for one NVIDIA GPU, in under 8 minutes: the seed MNIST benchmark on the GPU, then a
# packing run with two trials per GPU. Prints the card, the numbers, and where the JSON went.
#
#   bash benchmarks/gpu_check.sh [MNIST root holding MNIST/raw] [output folder]
#
# Needs the venv with torch + torchvision (./dev test sets it up; pip install -e '.[torch]').
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
DATA="${1:-../shared/data}"
OUT="${2:-benchmarks/gpu-results}"
mkdir -p "$OUT"

"$PY" - <<'EOF'
import torch
assert torch.cuda.is_available(), "no CUDA GPU visible: this check needs one"
free, total = torch.cuda.mem_get_info(0)
print(f"GPU: {torch.cuda.get_device_name(0)}, {total / 2**30:.1f} GiB ({free / 2**30:.1f} free); "
      f"torch {torch.__version__}, CUDA {torch.version.cuda}")
EOF
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
date -u +"date: %Y-%m-%dT%H:%M:%SZ"

# 1. The seed's experiment: the seed loop (DataLoader + transforms, on the GPU) on the first 3 of the
#    10 configurations (the full seed loop does not fit 8 minutes), hpwidgets on the same 3 and on all
#    10 with one trial per GPU slot. timeout keeps the whole script inside its budget.
timeout 330 "$PY" benchmarks/seed_mnist.py --data "$DATA" --gpus auto --per-gpu 1 --seed-trials 3 \
    --json "$OUT/seed_mnist_gpu.json"

# 2. Packing: 10 trials, two per GPU at a time; "overlap per device" must say 2 for cuda:0.
timeout 120 "$PY" benchmarks/seed_mnist.py --data "$DATA" --gpus auto --per-gpu 2 --seed-trials 0 \
    --json "$OUT/seed_mnist_gpu_packed.json"

echo "JSON in $OUT; copy the numbers, the card and the date into benchmarks/RESULTS.md"
