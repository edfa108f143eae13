#!/usr/bin/env bash
# Lent-GPU measurements on a trained run: coding throughput per stream count
# (torch backend on CUDA, frequencies kept on the GPU) and training throughput.
# Usage: bash benchmarks/gpu_throughput.sh RUN OUTDIR
set -u
RUN=$1; OUT=$2
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
log() { echo "[$(date +%T)] $*"; }

log "1. determinism tests, CUDA included, and the device-side frequency path"
python -m pytest -q -p no:cacheprovider tests/test_neural_determinism.py tests/test_torch_freqs.py 2>&1 | tail -3

log "2. pack enwik6 on the GPU with frequencies on the device"
time python -m pipeline.cli pack "$RUN" -o "$OUT/gpu.arc" -q --backend torch --device cuda --data .devdata/enwik6

log "3. coding throughput, torch on CUDA"
python benchmarks/neural_throughput.py "$RUN" --backend torch --device cuda --streams 64 256 1024 4096 --out "$OUT/neural_throughput_cuda.md"

log "4. training throughput (1 minute each)"
python benchmarks/train_throughput.py "$RUN/tokens.npy" --batch 32 256 --seconds 60
python benchmarks/train_throughput.py "$RUN/tokens.npy" --batch 256 --seconds 60 --compile
log done
