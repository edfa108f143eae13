#!/usr/bin/env bash
# One lent-GPU session: CUDA determinism tests, neural training on enwik6, the
# GPU <-> CPU cross-decode, and the mix model's online network on the GPU (pack --backend torch). Usage: bash benchmarks/gpu_session.sh DATA OUTDIR MINUTES
# Runs from the repo root with PYTHONPATH=. (no install needed on the GPU machine).
# VERIFY=0 skips `verify run` (it builds a clean venv: needs a package index); KEEP=0 keeps no run.
set -u
DATA=$1; OUT=$2; MINUTES=${3:-3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1  # keeps carried packages
W=$(mktemp -d)
log() { echo "[$(date +%T)] $*"; }
pipeline() { python -m pipeline.cli "$@"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__, torch.cuda.get_device_name())"

log "1. determinism tests (CUDA test included)"
python -m pytest -q -p no:cacheprovider tests/test_neural_determinism.py 2>&1 | tail -3

log "2. train the default neural model (d256 L4, default vocab) on the GPU for $MINUTES min"
pipeline train "$DATA" -o "$W/run" --model neural --max-minutes "$MINUTES" --streams 64 --device cuda -q
python - "$W/run" <<'PY'
import json, sys, torch
run = sys.argv[1]
r = json.load(open(f"{run}/train.json"))
ck = torch.load(f"{run}/model.pt", map_location="cpu", weights_only=True)
tokens = ck["step"] * ck["train"]["batch_size"] * ck["train"]["seq_len"]
tps = tokens / ck["elapsed_s"]
flops = 6 * r["model_parameters"] * tps
print(f"TRAIN steps {ck['step']} tokens {tokens:,} in {ck['elapsed_s']:.0f}s: {tps:,.0f} tok/s, "
      f"{flops/1e12:.1f} TFLOP/s (6ND) = {100*flops/989e12:.2f}% of bf16 dense peak, {100*flops/494e12:.2f}% of tf32 peak")
print("TRAIN float bits/byte", r["float_bits_per_byte"], "weights bytes", r["weights_bytes"], "params", r["model_parameters"])
PY

log "3. encode on the GPU (torch backend, cuda)"
time python -m pipeline.cli pack "$W/run" -o "$W/gpu.arc" -q --backend torch --device cuda

log "4. in parallel: verify the GPU archive in the clean environment (CPU, numpy) / encode on the CPU (numpy)"
( [ "${VERIFY:-1}" = 1 ] && python -m verify.cli run "$W/gpu.arc" --expect "$DATA" --report "$OUT/gpu_arc.verify.json" 2>&1 | tail -8 ) &
( time python -m pipeline.cli pack "$W/run" -o "$W/cpu.arc" -q --backend numpy \
  && cmp "$W/cpu.arc" "$W/gpu.arc" && echo "ARCHIVES from GPU and CPU encoders: BYTE-IDENTICAL" || echo "ARCHIVES DIFFER" ) &
wait

log "5. decode the CPU archive on the GPU"
time HUTTER_BACKEND=torch HUTTER_DEVICE=cuda python "$W/cpu.arc" -o "$W/out_gpu" -q \
  && cmp "$W/out_gpu" "$DATA" && echo "CROSS cpu-encode -> gpu-decode: IDENTICAL" || echo "CROSS cpu-encode -> gpu-decode: FAILED"

log "6. the online network of the mix and online models in torch on the GPU: the kernels' archive? (first ${ONLINE_HEAD:=200000} bytes)"
pipeline data "$DATA" --head "$ONLINE_HEAD" -o "$W/head" && pipeline train "$W/head" -o "$W/mix" -q \
  && python benchmarks/online_torch.py "$W/mix" --devices cpu,cuda --threads 1 --out "$OUT/online_torch.md" | tail -6
pipeline train "$W/head" -o "$W/online" --model online -q \
  && python benchmarks/online_torch.py "$W/online" --devices cpu,cuda --threads 1 --out "$OUT/online_torch_online.md" | tail -6

[ "${KEEP:-1}" = 1 ] && log "7. keep the run for later calls (no checkpoint: too big)" && mkdir -p "$OUT/run" && cp "$W/run"/{config.json,source.json,tokenizer.model,tokens.npy,train.json,model.json,model.bin} "$OUT/run/"
log done
