"""The PyTorch anchor for bench/step.ts: one full OLMo-2 training step (forward, backward, AdamW).

CPU: a plain-PyTorch OLMo-2 (fp32, same shapes, same thread count), written from the spec.
GPU: HF transformers' Olmo2ForCausalLM (SDPA attention, bf16 autocast, fused AdamW) when available,
else the same plain model under bf16 autocast. Prints one JSON line.
--serve: after the warm-up, prints a JSON line {impl, torch, threads}, then times one step per line
{"op": "step"} read from stdin and answers {"ms": ...} (bench/step.ts interleaves them with its own).
"""
import argparse, json, math, sys, time

import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
for name in ["d-model", "layers", "heads", "kv-heads", "ffn", "vocab", "seq-len", "batch", "steps", "threads", "warmup"]:
    p.add_argument("--" + name, type=int, required=True)
p.add_argument("--device", default="cpu")
p.add_argument("--serve", action="store_true")
args = p.parse_args()
torch.manual_seed(0)
dev = torch.device(args.device)
if dev.type == "cpu":
    torch.set_num_threads(args.threads)

C, L, H, K, FF, V, T, B = args.d_model, args.layers, args.heads, args.kv_heads, args.ffn, args.vocab, args.seq_len, args.batch
D = C // H


class RMSNorm(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(n))

    def forward(self, x):
        x32 = x.float()
        y = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + 1e-6)
        return (self.weight.float() * y).to(x.dtype)


def rope_tables(T, D, device):
    inv = 1.0 / (500000.0 ** (torch.arange(0, D, 2, device=device).float() / D))
    f = torch.outer(torch.arange(T, device=device).float(), inv)
    emb = torch.cat([f, f], -1)
    return emb.cos(), emb.sin()


def rot(x, cos, sin):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return (x.float() * cos + torch.cat([-x2, x1], -1).float() * sin).to(x.dtype)


def sdpa(q, k, v):
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    # torch < 2.0 (Debian bookworm ships 1.13): explicit causal attention
    t = q.shape[-2]
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    s = s.masked_fill(torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    return torch.softmax(s.float(), -1).to(q.dtype) @ v


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        lin = lambda i, o: torch.nn.Linear(i, o, bias=False)
        self.q, self.k, self.v, self.o = lin(C, H * D), lin(C, K * D), lin(C, K * D), lin(H * D, C)
        self.qn, self.kn, self.an, self.fn = RMSNorm(H * D), RMSNorm(K * D), RMSNorm(C), RMSNorm(C)
        self.gate, self.up, self.down = lin(C, FF), lin(C, FF), lin(FF, C)

    def forward(self, x, cos, sin):
        b, t, _ = x.shape
        q = self.qn(self.q(x)).view(b, t, H, D).transpose(1, 2)
        k = self.kn(self.k(x)).view(b, t, K, D).transpose(1, 2)
        v = self.v(x).view(b, t, K, D).transpose(1, 2)
        q, k = rot(q, cos, sin), rot(k, cos, sin)
        if K != H:
            k, v = k.repeat_interleave(H // K, 1), v.repeat_interleave(H // K, 1)
        a = sdpa(q, k, v).transpose(1, 2).reshape(b, t, H * D)
        h = x + self.an(self.o(a))
        return h + self.fn(self.down(F.silu(self.gate(h)) * self.up(h)))


class Olmo2(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(V, C)
        self.blocks = torch.nn.ModuleList([Block() for _ in range(L)])
        self.norm = RMSNorm(C)
        self.head = torch.nn.Linear(C, V, bias=False)

    def forward(self, ids):
        cos, sin = rope_tables(ids.shape[1], D, ids.device)
        x = self.emb(ids)
        for blk in self.blocks:
            x = blk(x, cos, sin)
        return self.head(self.norm(x))


def loss_fn(logits, ids):
    lg = logits[:, :-1].float().reshape(-1, V)
    tgt = ids[:, 1:].reshape(-1)
    lse = torch.logsumexp(lg, -1)
    ce = F.cross_entropy(lg, tgt, reduction="sum")
    return (ce + 1e-5 * (lse * lse).sum()) / tgt.numel()


impl = "plain-pytorch"
model = None
if dev.type == "cuda":
    try:
        from transformers import Olmo2Config, Olmo2ForCausalLM

        hf_cfg = Olmo2Config(vocab_size=V, hidden_size=C, intermediate_size=FF, num_hidden_layers=L, num_attention_heads=H,
                             num_key_value_heads=K, max_position_embeddings=T, rope_theta=500000.0, rms_norm_eps=1e-6,
                             tie_word_embeddings=False, attn_implementation="sdpa")
        model = Olmo2ForCausalLM(hf_cfg).to(dev)
        impl = "hf-transformers-olmo2-sdpa"
    except Exception as e:  # transformers missing: fall back to the plain model
        print(f"transformers unavailable ({e}); using plain PyTorch", file=sys.stderr)
if model is None:
    model = Olmo2().to(dev)
opt_kwargs = dict(lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
if dev.type == "cuda":
    opt_kwargs["fused"] = True
opt = torch.optim.AdamW(model.parameters(), **opt_kwargs)
ids = torch.randint(0, V, (B, T), device=dev)


def step():
    opt.zero_grad(set_to_none=True)
    if dev.type == "cuda":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(ids)
            logits = out.logits if hasattr(out, "logits") else out
        loss = loss_fn(logits, ids)
    else:
        loss = loss_fn(model(ids), ids)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


for _ in range(args.warmup):
    step()
sync()


def timed_step():
    t0 = time.perf_counter()
    step()
    sync()
    return time.perf_counter() - t0


if args.serve:
    print(json.dumps({"impl": impl, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        if json.loads(line).get("op") != "step":
            print(json.dumps({"error": f"unknown request {line.strip()}"}), flush=True)
            continue
        print(json.dumps({"ms": timed_step() * 1000}), flush=True)
    sys.exit(0)
times = []
for _ in range(args.steps):
    times.append(timed_step())
times.sort()
med = times[len(times) // 2]
print(json.dumps({"impl": impl, "ms_per_step": med * 1000, "tokens_per_s": B * T / med, "torch": torch.__version__,
                  "threads": torch.get_num_threads()}))
