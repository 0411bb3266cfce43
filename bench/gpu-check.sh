#!/usr/bin/env bash
# bench/gpu-check.sh — one-shot check of the CUDA library on the GPU machine (run from the repo root,
# no arguments). Keeps going when a step fails; each step's log goes to $OUT; a summary table last.
#   1 setup+build : nvidia-smi -L, locate the nvidia wheels (cuBLASLt, NCCL), build libolmo_cuda.so
#                   (sm_90a) and libolmo_cpu.so (system OpenBLAS, else numpy's bundled OpenBLAS via
#                   bench/gpu/blas_shim)
#   2 vendor      : bench/gpu/vendor_check.cpp static_asserts cuda/gpu/vendor.h against the real headers
#   3 tests       : OLMO_BACKEND=cuda bun test test/native test/model (CUDA vs CPU op suite)
#   3b parallel   : the TP model path on CUDA at tp = 1 (split QK-norm, vocab-parallel CE, embedding
#                   ranges vs the fused kernels) and NcclComm's binding at world 1 (one GPU: NCCL
#                   cannot put two ranks on one device, so multi-rank NCCL needs a multi-GPU machine),
#                   bench:comm --nccl (every GPU of the machine; at world 1 it shows the path works)
#   3c binary     : bun run compile, then the compiled dist/olmo trains 50 steps of the default run on
#                   its embedded CUDA library from an empty folder
#   4 hf_parity   : bench/hf_parity.py (loss + grad norm vs transformers, cuda and cpu backends)
#   4b olmo-core  : bench/gpu/olmo_core_dcp.py: dcp.save (the real torch.distributed.checkpoint) ->
#                   olmo import-olmo-core -> olmo export-olmo-core -> dcp.load, tensors compared
#   5 matmul      : bun run bench:matmul (ours vs torch.matmul)
#   6 step        : bun run bench:step, ~1B OLMo-2 at 4x4096 tokens (tokens/s, MFU, vs PyTorch)
# The whole script stops starting work after OLMO_CHECK_BUDGET seconds (default 500);
# OLMO_CHECK_SKIP="hf-parity step" skips the named steps.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${OUT:-/tmp/olmo-gpu-check}
mkdir -p "$OUT"
BUDGET=${OLMO_CHECK_BUDGET:-500}
T0=$(date +%s)
declare -a S_NAME S_STATUS S_SECS S_NOTE

remaining() { echo $(( BUDGET - ($(date +%s) - T0) )); }

# run_step NAME LOGFILE TIMEOUT NOTE_CMD -- command...
#   NOTE_CMD: a shell snippet run on the log to produce the one-line note for the summary
run_step() {
  local name=$1 log=$2 tmo=$3 note_cmd=$4; shift 5
  local left; left=$(remaining)
  if [[ " ${OLMO_CHECK_SKIP:-} " == *" $name "* ]]; then
    S_NAME+=("$name"); S_STATUS+=("SKIP"); S_SECS+=("0"); S_NOTE+=("skipped by OLMO_CHECK_SKIP")
    return
  fi
  if (( left < 15 )); then
    S_NAME+=("$name"); S_STATUS+=("SKIP"); S_SECS+=("0"); S_NOTE+=("out of time budget")
    return
  fi
  (( tmo > left )) && tmo=$left
  echo "=== [$name] $* (timeout ${tmo}s)" | tee -a "$log"
  local t=$(date +%s)
  timeout --kill-after=10 "$tmo" "$@" >>"$log" 2>&1
  local rc=$?
  local dt=$(( $(date +%s) - t ))
  local st=PASS
  if (( rc == 124 || rc == 137 )); then st=TIMEOUT; elif (( rc != 0 )); then st="FAIL($rc)"; fi
  local note; note=$(bash -c "$note_cmd" <"$log" 2>/dev/null | tail -c 160 | tr '\n' ' ')
  echo "=== [$name] $st in ${dt}s" | tee -a "$log"
  tail -n 5 "$log"
  S_NAME+=("$name"); S_STATUS+=("$st"); S_SECS+=("$dt"); S_NOTE+=("$note")
}

# ---------------------------------------------------------------- 1. setup + build
LOG1=$OUT/1-build.log
: >"$LOG1"
{
  echo "date: $(date -u +%FT%TZ)  host: $(hostname)"
  nvidia-smi -L || echo "nvidia-smi failed"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
  nvcc --version | tail -2 || echo "nvcc missing"
} >>"$LOG1" 2>&1

if [[ -f .gpu/bun.xz ]]; then
  xz -dc .gpu/bun.xz > .gpu/bun && chmod +x .gpu/bun && export PATH=$PWD/.gpu:$PATH
fi
echo "bun: $(command -v bun) $(bun --version 2>/dev/null)" >>"$LOG1"
[[ -d node_modules ]] && echo "node_modules: present" >>"$LOG1" || echo "node_modules: ABSENT (tests needing packages will fail)" >>"$LOG1"

PY=${OLMO_PYTHON:-}
for cand in python3 /opt/torch/.venv/bin/python3 /usr/bin/python3; do
  [[ -n "$PY" ]] && break
  if "$cand" -c 'import torch' >/dev/null 2>&1; then PY=$(command -v "$cand"); fi
done
PY=${PY:-python3}
export OLMO_PYTHON=$PY
echo "python: $PY" >>"$LOG1"

# nvidia wheel folders (lib/ for dlopen, include/ for vendor_check)
eval "$("$PY" - <<'PYEOF' 2>>"$LOG1"
import glob, os, site
roots = []
try:
    import nvidia
    roots += list(nvidia.__path__)
except Exception:
    pass
for s in site.getsitepackages() + [site.getusersitepackages()]:
    p = os.path.join(s, "nvidia")
    if os.path.isdir(p) and p not in roots:
        roots.append(p)
libs = sorted({d for r in roots for d in glob.glob(os.path.join(r, "*", "lib"))})
incs = sorted({d for r in roots for d in glob.glob(os.path.join(r, "*", "include"))})
sites = sorted({os.path.dirname(r) for r in roots})
print("NV_LIBS='%s'" % ":".join(libs))
print("NV_INCS='%s'" % ":".join(incs))
print("NV_SITES='%s'" % ":".join(sites))
PYEOF
)"
export OLMO_CUDA_LIB_PATH="${NV_LIBS:-}${OLMO_CUDA_LIB_PATH:+:$OLMO_CUDA_LIB_PATH}"
export OLMO_PY_SITE="${NV_SITES:-}"
export LD_LIBRARY_PATH="${NV_LIBS:-}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
{
  echo "OLMO_CUDA_LIB_PATH=$OLMO_CUDA_LIB_PATH"
  echo "nvidia include dirs: ${NV_INCS:-none}"
  for d in ${NV_LIBS//:/ }; do ls "$d" | grep -E 'cublasLt|nccl' | sed "s|^|  $d/|"; done
} >>"$LOG1" 2>&1

rm -f build/libolmo_cuda.so build/libolmo_cpu.so
run_step build-cuda "$LOG1" 300 'grep -E "error|warning" | head -3' -- bun cuda/build.ts cuda --arch=sm_90a

build_cpu() {
  local hdr=0
  for d in /usr/include /usr/include/x86_64-linux-gnu /usr/include/openblas /usr/include/x86_64-linux-gnu/openblas-pthread; do
    [[ -f $d/cblas.h ]] && hdr=1
  done
  if (( hdr )) && ldconfig -p | grep -q libopenblas; then
    echo "system OpenBLAS found"
    bun cuda/build.ts cpu
    return
  fi
  if [[ -z "${OLMO_BLAS_LIB:-}" ]]; then
    OLMO_BLAS_LIB=$("$PY" - <<'PYEOF'
import glob, os
cands = []
for mod in ("numpy", "scipy"):
    try:
        m = __import__(mod)
    except Exception:
        continue
    base = os.path.dirname(os.path.dirname(m.__file__))
    for pat in (mod + ".libs/libscipy_openblas*.so*", mod + ".libs/libopenblas*.so*", mod + "/.libs/libopenblas*.so*"):
        cands += glob.glob(os.path.join(base, pat))
print(cands[0] if cands else "")
PYEOF
)
  fi
  export OLMO_BLAS_LIB
  echo "no system OpenBLAS (cblas.h=$hdr); using blas_shim with OLMO_BLAS_LIB=$OLMO_BLAS_LIB"
  [[ -n "$OLMO_BLAS_LIB" ]] || { echo "no BLAS library found (numpy.libs/scipy.libs)"; return 3; }
  mkdir -p build
  cc -std=c11 -O3 -march=x86-64-v3 -fopenmp -fPIC -shared -Wall -Wextra -Wno-unused-parameter \
    -Icuda/include -Ibench/gpu/blas_shim -o build/libolmo_cpu.so cuda/cpu/*.c bench/gpu/blas_shim/blas_shim.c -ldl -lm
}
export -f build_cpu
export PY
run_step build-cpu "$LOG1" 120 'grep -E "OpenBLAS|blas_shim|error" | tail -2' -- bash -c build_cpu
# build_cpu ran in a child shell: recompute OLMO_BLAS_LIB here for the later steps
if [[ -z "${OLMO_BLAS_LIB:-}" ]]; then
  OLMO_BLAS_LIB=$(grep -o 'OLMO_BLAS_LIB=[^ ]*' "$LOG1" | tail -1 | cut -d= -f2)
  export OLMO_BLAS_LIB
fi
ls -la build/ >>"$LOG1" 2>&1

# ---------------------------------------------------------------- 2. vendor.h vs the real headers
LOG2=$OUT/2-vendor-check.log
: >"$LOG2"
vendor_check() {
  local cu_inc lt_inc nc_inc
  cu_inc=$(dirname "$(command -v nvcc)")/../include
  lt_inc=""; nc_inc=""
  for d in ${NV_INCS//:/ } /usr/local/cuda/include /usr/include; do
    [[ -z $lt_inc && -f $d/cublasLt.h ]] && lt_inc=$d
    [[ -z $nc_inc && -f $d/nccl.h ]] && nc_inc=$d
  done
  echo "cuda include: $cu_inc  cublasLt.h: ${lt_inc:-NOT FOUND}  nccl.h: ${nc_inc:-NOT FOUND}"
  [[ -n $lt_inc && -n $nc_inc ]] || return 3
  g++ -std=c++17 -Wall -Icuda/gpu -I"$cu_inc" -I"$lt_inc" -I"$nc_inc" bench/gpu/vendor_check.cpp -o /tmp/olmo_vendor_check && /tmp/olmo_vendor_check
}
export -f vendor_check
export NV_INCS
run_step vendor-check "$LOG2" 60 'grep -E "OK|error" | head -3' -- bash -c vendor_check

# ---------------------------------------------------------------- 3. op suite (CUDA vs CPU)
LOG3=$OUT/3-tests.log
: >"$LOG3"
run_step tests "$LOG3" 180 'grep -E "^ *[0-9]+ (pass|fail)|error:" | tail -3' -- env OLMO_BACKEND=cuda bun test --timeout=120000 test/native test/model

# ---------------------------------------------------------------- 3b. TP model path + NCCL binding
LOG3B=$OUT/3b-parallel.log
: >"$LOG3B"
run_step parallel "$LOG3B" 120 'grep -E "^ *[0-9]+ (pass|fail)|\"ok\"" | tail -2' -- bash -c \
  'bun test --timeout=120000 test/parallel/tp.test.ts -t "TP communicator" && bun test/parallel/fixtures/nccl-check.ts && bun run bench:comm --nccl'

# ---------------------------------------------------------------- 3c. compiled binary on CUDA
LOG3C=$OUT/3c-binary.log
: >"$LOG3C"
run_step binary "$LOG3C" 150 'grep -E "backend|loss:|error" | cut -c1-120 | tail -2' -- bash -c \
  'bun run compile && rm -rf /tmp/olmo-bin && mkdir -p /tmp/olmo-bin && cp dist/olmo /tmp/olmo-bin/ && cd /tmp/olmo-bin && env -u OLMO_CUDA_LIB_PATH PATH=/usr/bin:/bin LD_LIBRARY_PATH="$LD_LIBRARY_PATH" OLMO_BACKEND=cuda ./olmo train --run-dir run --train.steps=50 --quiet'

# ---------------------------------------------------------------- 4. HF parity
LOG4=$OUT/4-hf-parity.log
: >"$LOG4"
run_step hf-parity "$LOG4" 150 'grep -E "^(cuda|cpu) " | cut -c1-75' -- "$PY" bench/hf_parity.py --timeout 100

# ---------------------------------------------------------------- 4b. OLMo-core checkpoints vs real DCP
LOG4B=$OUT/4b-olmo-core.log
: >"$LOG4B"
run_step olmo-core "$LOG4B" 120 'grep -E "dcp.load|dcp_to_torch_save|rank0|FAILED" | cut -c1-60 | tail -3' -- "$PY" bench/gpu/olmo_core_dcp.py

# ---------------------------------------------------------------- 5. GEMM vs torch
LOG5=$OUT/5-matmul.log
: >"$LOG5"
run_step matmul "$LOG5" 120 'grep -o "\"geomean_ratio\":[^,]*"' -- env OLMO_BACKEND=cuda OLMO_MATMUL_ROUNDS=2 OLMO_MATMUL_REPS=5 bun run bench:matmul

# ---------------------------------------------------------------- 6. training step vs PyTorch
LOG6=$OUT/6-step.log
: >"$LOG6"
run_step step "$LOG6" 200 'tail -1 | grep -oE "\"(tokens_per_s|mfu|ratio)\":[^,}]*" | tr "\n" " "' -- env OLMO_BACKEND=cuda bun run bench:step --d-model 2048 --layers 16 --heads 16 --kv-heads 16 --ffn 8192 --vocab 100352 --seq-len 4096 --batch 4 --steps 10

# ---------------------------------------------------------------- summary
{
  echo
  echo "gpu-check summary ($(nvidia-smi -L 2>/dev/null | head -1 | cut -c1-60)), total $(( $(date +%s) - T0 ))s, logs in $OUT"
  printf '%-13s %-10s %6s  %s\n' step status secs note
  for i in "${!S_NAME[@]}"; do
    printf '%-13s %-10s %6s  %s\n' "${S_NAME[$i]}" "${S_STATUS[$i]}" "${S_SECS[$i]}" "${S_NOTE[$i]}"
  done
} | tee "$OUT/0-summary.txt"
