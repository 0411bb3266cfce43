"""The PyTorch anchor of bench/matmul.ts, as a server so that its timings interleave with ours.

Usage: matmul_torch.py DEVICE THREADS; then one JSON request per line on stdin, one JSON reply per line:
  {"op": "prep", "shape": {M, N, K, tA, tB, f32?, acc?}} -> {"anchor": op name}  (inputs made, 3 warm-up calls)
  {"op": "time", "reps": n}                              -> {"s": seconds per call, mean of n calls}
DEVICE cpu: fp32 throughout, torch.set_num_threads(THREADS); cuda: bf16 inputs.
"""
import json, sys, time

import torch

dev, threads = sys.argv[1], int(sys.argv[2])
if dev == "cuda":
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
    sync, dt = torch.cuda.synchronize, torch.bfloat16
else:
    torch.set_num_threads(threads)
    sync, dt = (lambda: None), torch.float32


def prepare(s):
    """the op to time for shape s, and its name"""
    M, N, K = s["M"], s["N"], s["K"]
    a = torch.randn(K, M, device=dev, dtype=dt) if s["tA"] else torch.randn(M, K, device=dev, dtype=dt)
    b = torch.randn(N, K, device=dev, dtype=dt) if s["tB"] else torch.randn(K, N, device=dev, dtype=dt)
    A = a.t() if s["tA"] else a
    B = b.t() if s["tB"] else b
    if s.get("f32") and dev == "cpu":
        # fp32 throughout on the CPU: the output is already fp32; accumulate in place like beta = 1
        c = torch.full((M, N), 0.5, device=dev, dtype=torch.float32)
        if s.get("acc"):
            return "addmm_", lambda: c.addmm_(A, B)
        return "matmul(out=)", lambda: torch.matmul(A, B, out=c)
    if s.get("f32"):
        c = torch.full((M, N), 0.5, device=dev, dtype=torch.float32)
        # the closest torch op: fp32 output from bf16 inputs (torch.mm out_dtype); accumulated in
        # place with addmm out_dtype when this torch has it, else mm + add_ (two kernels)
        cands = [("addmm(out_dtype, out=C)", lambda: torch.addmm(c, A, B, out_dtype=torch.float32, out=c)),
                 ("addmm(out_dtype)", lambda: torch.addmm(c, A, B, out_dtype=torch.float32)),
                 ("mm(out_dtype) + add_", lambda: c.add_(torch.mm(A, B, out_dtype=torch.float32))),
                 ("bf16 matmul + add_", lambda: c.add_(torch.matmul(A, B)))] if s.get("acc") else \
                [("mm(out_dtype)", lambda: torch.mm(A, B, out_dtype=torch.float32)),
                 ("bf16 matmul", lambda: torch.matmul(A, B))]
        for name, f in cands:
            try:
                f(); sync()
                return name, f
            except Exception:
                continue
        raise RuntimeError("no torch op for an fp32-output GEMM")
    c = torch.empty(M, N, device=dev, dtype=dt)
    return "matmul", lambda: torch.matmul(A, B, out=c)


f = None
for line in sys.stdin:
    req = json.loads(line)
    if req["op"] == "prep":
        f = None  # drop the previous shape's tensors first
        name, f = prepare(req["shape"])
        for _ in range(3):
            f()
        sync()
        reply = {"anchor": name}
    elif req["op"] == "time":
        sync()
        t0 = time.perf_counter()
        for _ in range(req["reps"]):
            f()
        sync()
        reply = {"s": (time.perf_counter() - t0) / req["reps"]}
    else:
        reply = {"error": f"unknown op {req['op']}"}
    print(json.dumps(reply), flush=True)
