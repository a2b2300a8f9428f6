#!/usr/bin/env bash
# The GPU checks, in one pass, for a lent CUDA machine with PyTorch but no network: the CUDA
# tests, `noa train` on the GPU (single process, then torchrun with NCCL), and the benchmark
# suite on the GPU. Missing Python packages travel as wheels in .whl/ (git-ignored).
#
#   OUT=/some/dir bash benchmarks/gpu_check.sh
#
# Each step has its own time limit so that one slow step cannot eat the others; the log says
# how long each took.
set -uo pipefail
OUT=${OUT:-/tmp/noa-gpu}
WORK=$(mktemp -d)
mkdir -p "$OUT"
start=$(date +%s)
step() { echo "=== [$(( $(date +%s) - start )) s] $*"; }

step "install"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . \
    -e domains/reaction_diffusion -e domains/fluids -e domains/waves || exit 1
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"

step "CUDA tests"
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_models.py \
    domains/reaction_diffusion/tests/test_rd_solver.py -k "cuda or gpu" -rs 2>&1 | tail -n 5

step "noa train reaction-diffusion --preset quick --device cuda"
timeout 170 noa train reaction-diffusion --preset quick --device cuda --quiet \
    --run-dir "$WORK/rd" --registry "$WORK/registry" 2>&1 | tail -n 8
cp "$WORK/rd/report.json" "$OUT/gpu-train-report.json" 2>/dev/null
cp "$WORK/rd/train.log" "$OUT/gpu-train.log" 2>/dev/null

step "torchrun --nproc-per-node 1 (NCCL) on the same dataset, 2 epochs"
timeout 90 torchrun --standalone --nproc-per-node 1 -m noa_platform train reaction-diffusion \
    --preset quick --device cuda --quiet --dataset "$WORK/rd/dataset.h5" --stage mno \
    --epochs 2 --run-dir "$WORK/ddp" --no-register 2>&1 | tail -n 6

step "benchmarks/run.py --quick --device cuda"
timeout 220 python3 benchmarks/run.py --quick --device cuda --out "$OUT/bench-gpu.json" \
    2>&1 | tail -n 30

step "done"
