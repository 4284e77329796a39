#!/usr/bin/env bash
# GPU check for one NVIDIA GPU, typically 6-8 minutes (10.5 at most, every limit reached): TrainStep's real-CUDA tests, the seed MNIST
# benchmark on the GPU with plain and recorded (hw.data.TrainStep) steps, packing runs with 2 and 4
# trials per GPU, then NativeGP's torch backend on the GPU against its numpy backend.
# Prints the card and the numbers; JSON goes to the output folder. A step that runs out of time is
# named and the next one still runs (the H100 machine of 2026-11-27 ran the same work 2x slower in
# one lease than in the one before, so the limits leave room).
#
#   bash benchmarks/gpu_check.sh [MNIST root holding MNIST/raw] [output folder]
#
# Needs torch + torchvision (the venv that ./dev test sets up, or PY=python3 where torch is installed).
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
DATA="${1:-../shared/data}"
OUT="${2:-benchmarks/gpu-results}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1  # this checkout's hpwidgets

"$PY" - <<'PYEOF' || exit 1
import torch
assert torch.cuda.is_available(), "no CUDA GPU visible: this check needs one"
free, total = torch.cuda.mem_get_info(0)
print(f"GPU: {torch.cuda.get_device_name(0)}, {total / 2**30:.1f} GiB ({free / 2**30:.1f} free); "
      f"torch {torch.__version__}, CUDA {torch.version.cuda}")
PYEOF
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
date -u +"date: %Y-%m-%dT%H:%M:%SZ"

# 0. TrainStep against real CUDA graphs (the CPU suite stands a recorder in for them).
timeout 90 "$PY" -m pytest -q -p no:cacheprovider tests/test_train_step.py || echo "step 0 failed or stopped (exit $?)"

# 1. The seed's experiment: the seed loop (DataLoader + transforms, on the GPU) on the first 3 of the
#    10 configurations, hpwidgets on the same 3 and on all 10, one trial per GPU, plain steps and
#    TrainStep. The ratios printed are like for like (the same 3 configurations, one process).
timeout 300 "$PY" benchmarks/seed_mnist.py --data "$DATA" --gpus auto --per-gpu 1 --seed-trials 3 \
    --steps plain graphed --json "$OUT/seed_mnist_gpu.json" || echo "step 1 stopped (exit $?)"

# 2. Packing: the same with 2, then 4 trials per GPU and no seed loop; "overlap per device" must
#    say 2 (then 4) for cuda:0.
timeout 100 "$PY" benchmarks/seed_mnist.py --data "$DATA" --gpus auto --per-gpu 2 --seed-trials 3 --no-seed-loop \
    --steps plain graphed --json "$OUT/seed_mnist_gpu_packed.json" || echo "step 2 stopped (exit $?)"
timeout 40 "$PY" benchmarks/seed_mnist.py --data "$DATA" --gpus auto --per-gpu 4 --seed-trials 3 --no-seed-loop \
    --steps graphed --json "$OUT/seed_mnist_gpu_packed4.json" || echo "step 3 stopped (exit $?)"

# 4. NativeGP: ask+tell ms and regret at 50 trials, torch backend (on the GPU) against numpy.
timeout 100 "$PY" benchmarks/gp_device.py --budget 70 --json "$OUT/gp_device.json" || echo "step 4 stopped (exit $?)"

echo "JSON in $OUT; copy the numbers, the card and the date into benchmarks/RESULTS.md"
