# OLMo-core-shaped checkpoints with real PyTorch 2.6 (torch.distributed.checkpoint, gloo, FSDP2),
# for the interoperability tests (test/checkpoint/olmo-core/torch26.test.ts). Our own script: it
# builds the state dicts the way OLMo-core does and saves / loads them with torch's own DCP, so what
# olmo writes is checked by the code OLMo-core would run. OLMo-core itself is not needed.
#
# How OLMo-core builds what it saves (allenai/OLMo-core @ d7301e62):
#   - the model's parameters, in named_parameters order: embeddings.weight; per block attention.w_q,
#     w_k, w_v, w_out, q_norm, k_norm, attention_norm, feed_forward.w1, w2, w3, feed_forward_norm;
#     lm_head.norm, lm_head.w_out (src/olmo_core/nn/transformer/{model,block}.py; the order a real
#     OLMo-core checkpoint's param group lists)
#   - the optimizer: OptimConfig.build (src/olmo_core/optim/config.py): the group override
#     (embeddings.weight, weight_decay 0) first, the rest second; with compile=True each group's lr
#     becomes a 0-d tensor; initial_lr is set to the lr. SkipStepAdamW's param-group defaults are lr,
#     betas, eps, weight_decay, foreach, fused (src/olmo_core/optim/adamw.py); its state per
#     parameter is step (a 0-d fp32 tensor created at 0 and, at d7301e62, never incremented),
#     exp_avg, exp_avg_sq. "adamw" is torch.optim.AdamW (AdamWConfig.optimizer).
#   - the saved dict: {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model,
#     optim)} with StateDictOptions(full_state_dict=False, cpu_offload=True), saved with
#     DefaultSavePlanner(dedup_save_to_lowest_rank=True) (distributed/checkpoint/__init__.py
#     _prepare_state_dict, save_model_and_optim_state); loading is dcp.load of the same dict, then
#     set_model_state_dict / set_optimizer_state_dict with strict=True (load_model_and_optim_state)
#   - train/rank0.pt: Trainer.state_dict (train/trainer.py) with NumpyFSLDataLoader.state_dict
#     (data/data_loader.py); a resume checks it as NumpyFSLDataLoader.load_state_dict does.
#
#   python3 olmo_core_state.py save DIR --optim skipstep|adamw [--compile] [--world 2] [--bf16]
#   python3 olmo_core_state.py load DIR --optim skipstep|adamw [--compile] [--world 2] --report OUT.json
#   python3 olmo_core_state.py plain-check DIR --report OUT.json   (every non-tensor item unpickles with no class, call or persistent id)
#   python3 olmo_core_state.py resume-check DIR --seq L [--max-target M] --data FILE... --eos ID --pad ID --report OUT.json
# --world 2 runs two gloo ranks (spawned here; torchrun's own store needs libuv, which Debian's torch
# lacks) with the model wrapped by FSDP2's fully_shard: each rank saves its row block (uneven: 3/2).
# FSDP2's forward does not run on the CPU in torch 2.6 (its all-gather records a stream event), so
# the optimizer state is made by setting gradients directly and stepping.
import argparse, hashlib, json, os, sys

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.distributed.checkpoint.state_dict as dsd
import torch.nn as nn
from torch.distributed.checkpoint.default_planner import DefaultSavePlanner

D, LAYERS, HEADS, KV_HEADS, FFN, VOCAB = 32, 2, 4, 2, 64, 256


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        hd = D // HEADS
        self.attention = nn.Module()
        a = self.attention
        a.w_q = nn.Linear(D, HEADS * hd, bias=False)
        a.w_k = nn.Linear(D, KV_HEADS * hd, bias=False)
        a.w_v = nn.Linear(D, KV_HEADS * hd, bias=False)
        a.w_out = nn.Linear(HEADS * hd, D, bias=False)
        a.q_norm = nn.RMSNorm(HEADS * hd)
        a.k_norm = nn.RMSNorm(KV_HEADS * hd)
        self.attention_norm = nn.RMSNorm(D)
        self.feed_forward = nn.Module()
        f = self.feed_forward
        f.w1 = nn.Linear(D, FFN, bias=False)
        f.w2 = nn.Linear(FFN, D, bias=False)
        f.w3 = nn.Linear(D, FFN, bias=False)
        self.feed_forward_norm = nn.RMSNorm(D)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = nn.Embedding(VOCAB, D)
        self.blocks = nn.ModuleList([Block() for _ in range(LAYERS)])
        self.lm_head = nn.Module()
        self.lm_head.norm = nn.RMSNorm(D)
        self.lm_head.w_out = nn.Linear(D, VOCAB, bias=False)


class SkipStepAdamWLike(torch.optim.Optimizer):
    """SkipStepAdamW's param groups and state layout (not its update rule, which these tests do not need)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, foreach=None, fused=None):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach, fused=fused))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if len(st) == 0:
                    st["step"] = torch.tensor(0.0, dtype=torch.float32)
                    st["exp_avg"] = torch.zeros_like(p)
                    st["exp_avg_sq"] = torch.zeros_like(p)
                st["exp_avg"].lerp_(p.grad, 1 - b1)
                st["exp_avg_sq"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                p.add_(st["exp_avg"] / (st["exp_avg_sq"].sqrt() + group["eps"]), alpha=-float(group["lr"]))


def build(optim_name, compile_lr, world):
    torch.manual_seed(1234)
    model = Model()
    if world > 1:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
        mesh = init_device_mesh("cpu", (world,))
        for b in model.blocks:
            fully_shard(b, mesh=mesh)
        fully_shard(model, mesh=mesh)
    named = dict(model.named_parameters())
    groups = [{"params": [named.pop("embeddings.weight")], "weight_decay": 0.0}, {"params": list(named.values())}]
    kw = dict(lr=6e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    optim = torch.optim.AdamW(groups, **kw) if optim_name == "adamw" else SkipStepAdamWLike(groups, **kw)
    for g in optim.param_groups:
        lr = g["lr"]
        g["lr"] = torch.tensor(lr) if compile_lr else lr
        g.setdefault("initial_lr", lr)
    return model, optim


def take_steps(model, optim, n):
    for i in range(n):
        for name, p in model.named_parameters():
            g = torch.sin(torch.arange(p.numel(), dtype=torch.float32) * (0.37 + 0.01 * i) + len(name)).reshape(p.shape) * 0.01
            if hasattr(p, "device_mesh"):  # an FSDP2 DTensor: the same whole gradient, sharded like the parameter
                from torch.distributed.tensor import distribute_tensor
                g = distribute_tensor(g, p.device_mesh, p.placements)
            p.grad = g
        optim.step()


def state_dict(model, optim):
    opts = dsd.StateDictOptions(full_state_dict=False, cpu_offload=True)
    return {"model": dsd.get_model_state_dict(model, options=opts), "optim": dsd.get_optimizer_state_dict(model, optim, options=opts)}


def whole(t):
    if hasattr(t, "full_tensor"):
        t = t.full_tensor()
    return t.detach().to(torch.float32).contiguous()


def digest(t):
    return hashlib.sha256(whole(t).numpy().tobytes()).hexdigest()[:16]


def py(v):
    if isinstance(v, torch.Tensor):
        return {"tensor": str(v.dtype).replace("torch.", ""), "shape": list(v.shape), "value": v.item() if v.numel() == 1 else None}
    if isinstance(v, tuple):
        return {"tuple": [py(x) for x in v]}
    if isinstance(v, float):
        return {"float": v}
    return v


def report(model, optim):
    out = {"model": {}, "exp_avg": {}, "exp_avg_sq": {}, "step": {}, "param_groups": []}
    names = {id(p): n for n, p in model.named_parameters()}
    for n, p in model.named_parameters():
        out["model"][n] = digest(p)
        st = optim.state.get(p, {})
        if st:
            out["exp_avg"][n] = digest(st["exp_avg"])
            out["exp_avg_sq"][n] = digest(st["exp_avg_sq"])
            out["step"][n] = whole(st["step"]).item()
    for g in optim.param_groups:
        out["param_groups"].append({k: ([names[id(p)] for p in v] if k == "params" else py(v)) for k, v in sorted(g.items())})
    return out


def trainer_state(step, tokens, seq, max_target, world):
    # Trainer.state_dict / NumpyFSLDataLoader.state_dict at d7301e62; the RNG states are left out
    # (a loader restores them only when world size and library versions match)
    return {
        "global_step": step, "global_train_tokens_seen": tokens, "max_steps": 100,
        "data_loader": {"dataset_fingerprint_version": "v1.1", "dataset_fingerprint": "0" * 64, "batches_processed": step,
                        "tokens_processed": tokens, "seed": 34521, "epoch": 1, "dataset_type": "fsl",
                        "sequence_length": seq, "max_target_sequence_length": max_target},
        "epoch": 1, "world_size": world,
        "rng": {k: {"version": (0, 0), "state": None} for k in ("python", "numpy", "torch")} | {"cuda": None},
    }


def config_json():
    norm = {"name": "rms", "eps": 1e-6, "bias": False}
    return {"model": {"d_model": D, "n_layers": LAYERS, "vocab_size": VOCAB, "block": {
        "name": "reordered_norm", "attention": {"n_heads": HEADS, "n_kv_heads": KV_HEADS, "bias": False, "rope": {"theta": 500000}, "qk_norm": norm},
        "feed_forward": {"hidden_size": FFN, "bias": False}, "layer_norm": norm}}, "data_loader": {"seed": 34521}}


def run(rank, a):
    if a.world > 1:
        os.environ.update(RANK=str(rank), WORLD_SIZE=str(a.world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(a.port), USE_LIBUV="0")
        dist.init_process_group("gloo")
    model, optim = build(a.optim, a.compile, a.world)
    mc = os.path.join(a.dir, "model_and_optim")
    if a.cmd == "save":
        if a.bf16:
            model.to(torch.bfloat16)
        take_steps(model, optim, 2)
        dcp.save(state_dict(model, optim), checkpoint_id=mc, planner=DefaultSavePlanner(dedup_save_to_lowest_rank=True))
        if rank == 0:
            os.makedirs(os.path.join(a.dir, "train"), exist_ok=True)
            torch.save(trainer_state(2, 2 * 64, 16, None, a.world), os.path.join(a.dir, "train", "rank0.pt"))
            with open(os.path.join(a.dir, "config.json"), "w") as f:
                json.dump(config_json(), f)
            with open(os.path.join(a.dir, ".metadata.json"), "w") as f:
                json.dump({"version": "1.8.0"}, f)
    else:
        take_steps(model, optim, 1)  # a fresh optimizer with state, as a loading run has (other values)
        sd = state_dict(model, optim)
        dcp.load(sd, checkpoint_id=mc)
        dsd.set_model_state_dict(model, sd["model"], options=dsd.StateDictOptions(strict=True))
        dsd.set_optimizer_state_dict(model, optim, sd["optim"], options=dsd.StateDictOptions(strict=True))
        rep = report(model, optim)
        if rank == 0:
            with open(a.report, "w") as f:
                json.dump(rep, f, indent=1, sort_keys=True)
    if a.world > 1:
        dist.destroy_process_group()


def olmo_core_fingerprint(paths, eos, pad, dtype):
    # NumpyDatasetBase.fingerprint (data/numpy_dataset.py @ d7301e62): the ids, str() of the numpy
    # dtype class, then each file's base name and size in bytes
    import numpy as np
    h = hashlib.sha256(f"pad_token_id={pad},eos_token_id={eos},dtype={getattr(np, dtype)}".encode())
    for p in paths:
        h.update(f"name={os.path.basename(p)},size={os.path.getsize(p)}".encode())
    return h.hexdigest()


def resume_check(a):
    """What a resuming OLMo-core reads of the trainer state and config.json, checked as it checks them."""
    problems = []
    fingerprint = olmo_core_fingerprint(a.data, a.eos, a.pad, a.dtype)
    ts = torch.load(os.path.join(a.dir, "train", "rank0.pt"), weights_only=True)  # plain data only
    dl = ts["data_loader"]
    for k in ("global_step", "global_train_tokens_seen", "max_steps", "epoch", "world_size"):
        if not isinstance(ts.get(k), int) or isinstance(ts.get(k), bool):
            problems.append(f"{k} is {ts.get(k)!r}, not an int")
    # NumpyDataLoaderBase / NumpyFSLDataLoader.load_state_dict (data/data_loader.py @ d7301e62)
    if dl["dataset_fingerprint_version"] != "v1.1":
        problems.append(f"fingerprint version {dl['dataset_fingerprint_version']!r}: OLMo-core would not check the data")
    elif dl["dataset_fingerprint"] != fingerprint:
        problems.append("fingerprint does not match the dataset")
    if dl["dataset_type"] != "fsl":
        problems.append(f"dataset_type {dl['dataset_type']!r}")
    if dl["max_target_sequence_length"] != a.max_target:
        problems.append(f"max_target_sequence_length {dl['max_target_sequence_length']!r}, the dataset's {a.max_target!r}")
    if dl["sequence_length"] != a.seq:
        problems.append(f"sequence_length {dl['sequence_length']!r}, the dataset's {a.seq}")
    for k in ("batches_processed", "tokens_processed", "seed", "epoch"):
        if not isinstance(dl.get(k), int):
            problems.append(f"data_loader.{k} is {dl.get(k)!r}, not an int")
    # what OLMo-core's anneal script reads (src/scripts/train/anneal/OLMo2-32B-anneal.py @ d7301e62)
    with open(os.path.join(a.dir, "config.json")) as f:
        cfg = json.load(f)
    sched = dict(cfg["trainer"]["callbacks"]["lr_scheduler"]["scheduler"])
    if sched.pop("_CLASS_") != "CosWithWarmup":
        problems.append("the scheduler is not CosWithWarmup")
    # CosWithWarmup's fields (optim/scheduler.py @ d7301e62): the anneal script calls CosWithWarmup(**sched)
    unknown = set(sched) - {"lr_field", "initial_lr_field", "warmup_steps", "alpha_f", "t_max", "warmup_min_lr"}
    if unknown:
        problems.append(f"scheduler fields {sorted(unknown)} are not CosWithWarmup's")
    if not isinstance(cfg["optim"]["lr"], (int, float)):
        problems.append("optim.lr is not a number")
    with open(a.report, "w") as f:
        json.dump({"problems": problems, "global_step": ts["global_step"], "max_steps": ts["max_steps"], "base_lr": cfg["optim"]["lr"],
                   "scheduler": sched, "data_loader": dl}, f, indent=1, sort_keys=True)


def plain_check(a):
    """Python's own unpickler, allowed nothing but plain data, over every non-tensor item of a step folder."""
    import io, pickle, zipfile
    from torch.distributed.checkpoint.metadata import BytesStorageMetadata

    class NoGlobals(pickle.Unpickler):
        def find_class(self, module, name):
            raise pickle.UnpicklingError(f"a reference to {module}.{name}")

        def persistent_load(self, pid):
            raise pickle.UnpicklingError("a persistent id")

    reader = dcp.FileSystemReader(os.path.join(a.dir, "model_and_optim"))
    md = reader.read_metadata()
    found, bad = 0, []
    for idx, info in md.storage_data.items():
        if not isinstance(md.state_dict_metadata[idx.fqn], BytesStorageMetadata):
            continue
        found += 1
        with open(os.path.join(a.dir, "model_and_optim", info.relative_path), "rb") as f:
            f.seek(info.offset)
            blob = f.read(info.length)
        with zipfile.ZipFile(io.BytesIO(blob)) as z:
            pkl = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
        try:
            NoGlobals(io.BytesIO(pkl)).load()
        except Exception as e:
            bad.append(f"{idx.fqn}: {e}")
    with open(a.report, "w") as f:
        json.dump({"items": found, "bad": bad}, f)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["save", "load", "resume-check", "plain-check"])
    p.add_argument("dir")
    p.add_argument("--optim", choices=["skipstep", "adamw"], default="skipstep")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--world", type=int, default=1)
    p.add_argument("--port", type=int, default=29531)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--report")
    p.add_argument("--seq", type=int)
    p.add_argument("--max-target", type=int, default=None)
    p.add_argument("--data", nargs="*", default=[])
    p.add_argument("--eos", type=int)
    p.add_argument("--pad", type=int)
    p.add_argument("--dtype", default="uint32")
    a = p.parse_args()
    if a.cmd == "resume-check":
        return resume_check(a)
    if a.cmd == "plain-check":
        return plain_check(a)
    if a.world > 1:
        import torch.multiprocessing as mp
        mp.spawn(run, args=(a,), nprocs=a.world)
    else:
        run(0, a)


if __name__ == "__main__":
    main()
