#!/usr/bin/env python3
"""HF parity: our loss and gradient norm vs transformers' Olmo2ForCausalLM on the same tokens.

Builds a tiny random OLMo-2 (transformers Olmo2Config + Olmo2ForCausalLM), saves it as safetensors
to a temp dir, writes random uint32 tokens, and computes the reference in fp32 (eager attention,
no TF32) on the GPU when there is one:
    loss = (sum CE + z * sum lse^2) / N   over shifted labels (last position of each row ignored),
    grad_norm = || d loss / d params ||_2 over every parameter (embedding included).
Then runs `bun run olmo eval --from-hf DIR --data FILE --seq-len T --grad` for each backend in
--backends (OLMO_BACKEND=cuda / cpu) and compares the printed JSON
{"ce_loss","z_loss","loss","n_tokens","grad_norm"}. Exit 0 when every backend is within tolerance.
Last line: one JSON object.
"""
import argparse, json, math, os, shutil, subprocess, sys, tempfile

TOL = {  # relative tolerances: the CPU library is fp32; CUDA computes in bf16 with fp32 accumulation
    "cpu": {"loss": 1e-4, "ce_loss": 1e-4, "z_loss": 1e-3, "grad_norm": 2e-3},
    "cuda": {"loss": 5e-3, "ce_loss": 5e-3, "z_loss": 2e-2, "grad_norm": 5e-2},
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=768)
    ap.add_argument("--vocab", type=int, default=100352)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--z-loss", type=float, default=1e-5)
    ap.add_argument("--backends", default="cuda,cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=int, default=240)
    args = ap.parse_args()

    import numpy as np
    import torch
    import torch.nn.functional as F
    from transformers import Olmo2Config, Olmo2ForCausalLM

    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = Olmo2Config(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.ffn,
                      num_hidden_layers=args.layers, num_attention_heads=args.heads,
                      num_key_value_heads=args.kv_heads, max_position_embeddings=max(4096, args.seq_len),
                      rope_theta=500000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
                      attention_bias=False, initializer_range=0.02)
    cfg._attn_implementation = "eager"
    model = Olmo2ForCausalLM(cfg).float()
    work = tempfile.mkdtemp(prefix="olmo_hf_parity_")
    mdir = os.path.join(work, "model")
    model.save_pretrained(mdir, safe_serialization=True)
    rng = np.random.default_rng(args.seed)
    toks = rng.integers(0, args.vocab, size=(args.batch, args.seq_len), dtype=np.uint32)
    data = os.path.join(work, "tokens.u32")
    toks.tofile(data)

    model = model.to(dev)
    ids = torch.from_numpy(toks.astype(np.int64)).to(dev)
    logits = model(input_ids=ids).logits.float()[:, :-1, :]
    labels = ids[:, 1:]
    n = labels.numel()
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="sum")
    lse = torch.logsumexp(logits, dim=-1)
    z = args.z_loss * (lse * lse).sum()
    loss = (ce + z) / n
    loss.backward()
    gn = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in model.parameters() if p.grad is not None))
    ref = {"ce_loss": float(ce) / n, "z_loss": float(z) / n, "loss": float(loss), "n_tokens": n, "grad_norm": gn}
    print(f"reference (transformers {__import__('transformers').__version__}, torch {torch.__version__}, {dev}, fp32): "
          + json.dumps(ref), flush=True)

    bun = shutil.which("bun")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    results, ok_all = {}, True
    for be in [b for b in args.backends.split(",") if b]:
        if not bun:
            results[be] = {"error": "bun not on PATH"}
            ok_all = False
            continue
        env = dict(os.environ, OLMO_BACKEND=be)
        cmd = [bun, "run", "olmo", "eval", "--from-hf", mdir, "--data", data, "--seq-len", str(args.seq_len),
               "--grad", "--z-loss", str(args.z_loss)]
        try:
            p = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            results[be] = {"error": f"timeout after {args.timeout}s"}
            ok_all = False
            continue
        line = next((l for l in reversed(p.stdout.strip().splitlines()) if l.startswith("{")), None)
        if p.returncode != 0 or line is None:
            tail = (p.stderr.strip() or p.stdout.strip()).splitlines()[-5:]
            results[be] = {"error": f"exit {p.returncode}: " + " | ".join(tail)}
            ok_all = False
            continue
        got = json.loads(line)
        row = {"got": got, "rel": {}, "ok": True}
        for k, tol in TOL.get(be, TOL["cuda"]).items():
            if k not in got or got[k] is None:
                row["rel"][k] = None
                row["ok"] = False
                continue
            r = abs(got[k] - ref[k]) / max(abs(ref[k]), 1e-12)
            row["rel"][k] = r
            if not (r <= tol):
                row["ok"] = False
        if got.get("n_tokens") not in (None, n):
            row["ok"] = False
            row["n_tokens_mismatch"] = [got.get("n_tokens"), n]
        ok_all &= row["ok"]
        results[be] = row
    for be, row in results.items():
        if "error" in row:
            print(f"{be:5s} ERROR {row['error']}")
        else:
            rel = " ".join(f"{k}={'-' if v is None else f'{v:.2e}'}" for k, v in row["rel"].items())
            print(f"{be:5s} {'PASS' if row['ok'] else 'FAIL'} loss={row['got'].get('loss')} "
                  f"grad_norm={row['got'].get('grad_norm')} rel: {rel}")
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"bench": "hf_parity", "ok": ok_all, "reference": ref, "results": results}))
    sys.exit(0 if ok_all else 1)


if __name__ == "__main__":
    main()
