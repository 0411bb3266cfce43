#!/usr/bin/env bash
# bench/gpu-check.sh — one-shot check of the CUDA library on a GPU machine (run from the repo root,
# no arguments). Keeps going when a step fails; each step logs to its own file; a summary table last.
# Output: $OUT when set (the device runner's folder), else bench/results/<date>-<device>/.
# Each step is one function step_<name> below, run by run_step with a timeout; to add a step, write
# its function and add one run_step line to the list at the end (the order is the priority: the
# budget skips what comes last).
#   build        : nvidia-smi, the nvidia wheels (cuBLASLt, NCCL), libolmo_cuda.so (sm_90a),
#                  libolmo_cpu.so (system oneDNN, else system OpenBLAS, else numpy's OpenBLAS via
#                  bench/gpu/blas_shim), and the
#                  one-GPU NCCL stand-in (build/nccl-standin/libnccl.so.2, a test tool)
#   vendor       : bench/gpu/vendor_check.cpp static_asserts cuda/gpu/vendor.h against the real headers
#   profile      : bench:step --profile on the ~1.5B model: device time per kernel class (CUDA events)
#                  with its share of the step and TFLOP/s or GB/s against the peaks — first, so that
#                  even a short lease brings it back
#   tests        : OLMO_BACKEND=cuda bun test test/native test/model (CUDA vs CPU op suite, recompute
#                  bitwise on CUDA, two identical runs bitwise with OLMO_DETERMINISTIC=1)
#   determinism  : the attention op tests with OLMO_DETERMINISTIC=1 (atomic-free dQ) and the cost of the
#                  deterministic path: bench:step of the ~1.5B with OLMO_DETERMINISTIC=0 and =1
#   standin      : multi-rank CUDA training (DP=2, TP=2, TP=2 x DP=2) on this one GPU through the NCCL
#                  stand-in, against CUDA one process and the CPU library's runs (test/parallel/standin.test.ts)
#   parallel     : the TP model path on CUDA at tp = 1 and NcclComm's binding at world 1 on the real
#                  NCCL, bench:comm --nccl
#   binary       : bun run compile; the compiled dist/olmo trains 50 steps on its embedded CUDA library
#   hf-parity    : bench/hf_parity.py (loss + grad norm vs transformers, cuda and cpu backends)
#   olmo-core    : bench/gpu/olmo_core_dcp.py: dcp.save (the real torch.distributed.checkpoint) ->
#                  olmo import-olmo-core -> olmo export-olmo-core -> dcp.load, tensors compared
#   matmul       : bun run bench:matmul (ours vs torch.matmul)
#   step         : bun run bench:step, ~1.5B OLMo-2 at 4x4096 tokens (tokens/s, MFU, vs PyTorch)
#   recompute    : bench:step with train.recompute = attention and block (time and activation memory)
# The whole script stops starting steps after OLMO_CHECK_BUDGET seconds (default 540);
# OLMO_CHECK_SKIP="hf-parity step" skips the named steps.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DEVICE_SLUG=$( (nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo unknown) | head -1 | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '-' | sed 's/^-//; s/-$//')
OUT=${OUT:-$ROOT/bench/results/$(date -u +%F)-${DEVICE_SLUG:-gpu}}
mkdir -p "$OUT"
export OUT
BUDGET=${OLMO_CHECK_BUDGET:-540}
T0=$(date +%s)
declare -a S_NAME S_STATUS S_SECS S_NOTE
N_STEP=0

remaining() { echo $(( BUDGET - ($(date +%s) - T0) )); }

# run_step NAME TIMEOUT NOTE_CMD
#   runs step_NAME (an exported function) in a child bash under a timeout, logging to
#   $OUT/<n>-NAME.log; NOTE_CMD: a shell snippet run on the log for the summary's one-line note
run_step() {
  local name=$1 tmo=$2 note_cmd=$3
  N_STEP=$((N_STEP + 1))
  local log=$OUT/$N_STEP-$name.log
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
  : >"$log"
  echo "=== [$name] step_$name (timeout ${tmo}s)" | tee -a "$log"
  local t=$(date +%s)
  timeout --kill-after=10 "$tmo" bash -c "step_${name//-/_}" >>"$log" 2>&1
  local rc=$?
  local dt=$(( $(date +%s) - t ))
  local st=PASS
  if (( rc == 124 || rc == 137 )); then st=TIMEOUT; elif (( rc != 0 )); then st="FAIL($rc)"; fi
  local note; note=$(bash -c "$note_cmd" <"$log" 2>/dev/null | tail -c 200 | tr '\n' ' ')
  echo "=== [$name] $st in ${dt}s" | tee -a "$log"
  tail -n 5 "$log"
  S_NAME+=("$name"); S_STATUS+=("$st"); S_SECS+=("$dt"); S_NOTE+=("$note")
}

# ---------------------------------------------------------------- setup (environment for every step)
LOG1=$OUT/0-setup.log
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


# ---------------------------------------------------------------- the steps
# The ~1.5B OLMo-2 of bench/results/2026-11-26-h100.md (d 2048, 16 layers, ffn 8192, seq 4096)
STEP_MODEL="--d-model 2048 --layers 16 --heads 16 --kv-heads 16 --ffn 8192 --vocab 100352 --seq-len 4096"
export STEP_MODEL NV_INCS PY

build_cpu() {
  local hdr=0
  for d in /usr/include /usr/include/x86_64-linux-gnu /usr/include/openblas /usr/include/x86_64-linux-gnu/openblas-pthread; do
    [[ -f $d/cblas.h ]] && hdr=1
  done
  if [[ -f /usr/include/oneapi/dnnl/dnnl.h ]] && ldconfig -p | grep -q 'libdnnl\.so '; then
    echo "system oneDNN found"
    bun cuda/build.ts cpu
    return
  fi
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
  [[ -n "$OLMO_BLAS_LIB" ]] || {
    echo "no GEMM library found: no oneDNN (oneapi/dnnl/dnnl.h + libdnnl.so), no system OpenBLAS (cblas.h=$hdr + libopenblas), no OpenBLAS in numpy.libs/scipy.libs"
    return 3
  }
  mkdir -p build
  # the OpenBLAS backend (cuda/cpu/gemm_openblas.c) against the shim; the stamp tells cuda/build.ts
  # which GEMM this library has, so the test runs' build check keeps it
  cc -std=c11 -O3 -march=x86-64-v3 -fopenmp -fPIC -shared -Wall -Wextra -Wno-unused-parameter \
    -Icuda/include -Ibench/gpu/blas_shim -o build/libolmo_cpu.so cuda/cpu/*.c bench/gpu/blas_shim/blas_shim.c -ldl -lm &&
    echo OpenBLAS > build/libolmo_cpu.gemm
}

step_build() {
  rm -f build/libolmo_cuda.so build/libolmo_cpu.so
  bun cuda/build.ts cuda --arch=sm_90a || return 1
  build_cpu || return 2
  bun cuda/build.ts nccl-standin || return 3
  ls -la build/ build/nccl-standin/
}

step_vendor() {
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

step_profile() {
  OLMO_BACKEND=cuda bun run bench:step $STEP_MODEL --batch 4 --steps 3 --warmup 2 --profile 3 --no-torch
}

step_tests() {
  OLMO_BACKEND=cuda bun test --timeout=120000 test/native test/model
}

step_determinism() {
  OLMO_DETERMINISTIC=1 OLMO_BACKEND=cuda bun test --timeout=120000 test/native/ops.test.ts -t attention || return 1
  local det
  for det in 0 1; do
    echo "--- OLMO_DETERMINISTIC=$det"
    OLMO_DETERMINISTIC=$det OLMO_BACKEND=cuda bun run bench:step $STEP_MODEL --batch 4 --steps 5 --warmup 2 --no-torch | tee "$OUT/det-$det.txt"
  done
  "$PY" - "$OUT/det-0.txt" "$OUT/det-1.txt" <<'PYEOF'
import json, sys
ms = [json.loads(open(f).read().strip().splitlines()[-1])["ms_per_step"] for f in sys.argv[1:]]
print(json.dumps({"determinism_cost": ms[1] / ms[0] - 1, "ms_atomics": ms[0], "ms_deterministic": ms[1],
                  "rule": "OLMO_DETERMINISTIC on by default if the cost is < 2%"}))
PYEOF
}

step_standin() {
  bun test --timeout=180000 test/parallel/standin.test.ts
}

step_parallel() {
  bun test --timeout=120000 test/parallel/tp.test.ts -t "TP communicator" && bun test/parallel/fixtures/nccl-check.ts && bun run bench:comm --nccl
}

step_binary() {
  bun run compile && rm -rf /tmp/olmo-bin && mkdir -p /tmp/olmo-bin && cp dist/olmo /tmp/olmo-bin/ && cd /tmp/olmo-bin &&
    env -u OLMO_CUDA_LIB_PATH PATH=/usr/bin:/bin LD_LIBRARY_PATH="$LD_LIBRARY_PATH" OLMO_BACKEND=cuda ./olmo train --run-dir run --train.steps=50 --quiet
}

step_hf_parity() {
  "$PY" bench/hf_parity.py --timeout 100
}

step_olmo_core() {
  "$PY" bench/gpu/olmo_core_dcp.py
}

step_matmul() {
  OLMO_BACKEND=cuda OLMO_MATMUL_ROUNDS=2 OLMO_MATMUL_REPS=5 bun run bench:matmul
}

step_step() {
  OLMO_BACKEND=cuda bun run bench:step $STEP_MODEL --batch 4 --steps 10
}

step_recompute() {
  local mode
  for mode in attention block; do
    OLMO_BACKEND=cuda bun run bench:step $STEP_MODEL --batch 4 --steps 3 --warmup 1 --no-torch --recompute $mode
  done
}

export -f build_cpu step_build step_vendor step_profile step_tests step_determinism step_standin step_parallel step_binary \
  step_hf_parity step_olmo_core step_matmul step_step step_recompute

# ---------------------------------------------------------------- the list (order = priority)
run_step build 420 'grep -E "error|oneDNN|OpenBLAS|blas_shim|stand-in" | tail -3'
# build_cpu may pick numpy's OpenBLAS: the later steps need the same OLMO_BLAS_LIB
if [[ -z "${OLMO_BLAS_LIB:-}" ]]; then
  OLMO_BLAS_LIB=$(grep -o 'OLMO_BLAS_LIB=[^ ]*' "$OUT"/*-build.log | tail -1 | cut -d= -f2)
  export OLMO_BLAS_LIB
fi
run_step vendor 60 'grep -E "OK|error" | head -3'
run_step profile 150 'grep -E "^profile:|^gemm|^attention" | head -4 | cut -c1-60'
run_step tests 240 'grep -E "^ *[0-9]+ (pass|fail)|error:|deterministic_identical" | tail -4 | cut -c1-90'
run_step determinism 180 'grep -oE "\"determinism_cost\":[^,]*"'
run_step standin 240 'grep -E "^ *[0-9]+ (pass|fail|skip)" | tr "\n" " "'
run_step parallel 120 'grep -E "^ *[0-9]+ (pass|fail)|\"ok\"" | tail -2'
run_step binary 150 'grep -E "backend|loss:|error" | cut -c1-120 | tail -2'
run_step hf-parity 150 'grep -E "^(cuda|cpu) " | cut -c1-75'
run_step olmo-core 120 'grep -E "dcp.load|dcp_to_torch_save|rank0|FAILED" | cut -c1-60 | tail -3'
run_step matmul 120 'grep -o "\"geomean_ratio\":[^,]*"'
run_step step 200 'tail -1 | grep -oE "\"(tokens_per_s|mfu|ratio)\":[^,}]*" | tr "\n" " "'
run_step recompute 150 'grep -E "^olmo-bun" | cut -c1-110'

# ---------------------------------------------------------------- summary
{
  echo
  echo "gpu-check summary ($(nvidia-smi -L 2>/dev/null | head -1 | cut -c1-60)), total $(( $(date +%s) - T0 ))s, logs in $OUT"
  printf '%-13s %-10s %6s  %s\n' step status secs note
  for i in "${!S_NAME[@]}"; do
    printf '%-13s %-10s %6s  %s\n' "${S_NAME[$i]}" "${S_STATUS[$i]}" "${S_SECS[$i]}" "${S_NOTE[$i]}"
  done
} | tee "$OUT/0-summary.txt"
