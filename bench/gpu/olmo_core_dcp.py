# OLMo-core checkpoint interop against the REAL torch.distributed.checkpoint (PyTorch 2.x; the CPU
# dev machines only have Debian's torch 1.13, whose DCP is unusable). Run from the repo root:
#   python3 bench/gpu/olmo_core_dcp.py [--bun bun]
# 1. builds a small OLMo-core-named state dict (OLMo-2: d_model 64, 2 layers, 4 heads / 2 kv heads,
#    ffn 128, vocab 256) the way OLMo-core's _prepare_state_dict nests it ({"model": ..., "optim":
#    {"state": {name: {exp_avg, exp_avg_sq, step}}, "param_groups": [...]}}) and saves it with
#    dcp.save into step5/model_and_optim (plus config.json and train/rank0.pt as OLMo-core writes them)
# 2. olmo import-olmo-core step5 --out native;  olmo export-olmo-core native --out back
# 3. dcp.load of back/model_and_optim into a zeroed state dict of the same structure (DefaultLoadPlanner:
#    every requested key must be in the metadata), every tensor compared with torch.equal, the param
#    groups compared; then format_utils.dcp_to_torch_save (_EmptyStateDictLoadPlanner, which rebuilds
#    the nesting from planner_data) and torch.load of the trainer state.
# Sources: pytorch/pytorch torch/distributed/checkpoint/{metadata.py, filesystem.py, default_planner.py,
# format_utils.py}; allenai/OLMo-core src/olmo_core/distributed/checkpoint/__init__.py (d7301e62).
import argparse, json, os, subprocess, sys, tempfile

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp

D, L, H, KV, F, V = 64, 2, 4, 2, 128, 256
HD = D // H
LAYER = [("attention.w_q.weight", (H * HD, D)), ("attention.w_k.weight", (KV * HD, D)), ("attention.w_v.weight", (KV * HD, D)),
         ("attention.w_out.weight", (D, H * HD)), ("attention.q_norm.weight", (H * HD,)), ("attention.k_norm.weight", (KV * HD,)),
         ("attention_norm.weight", (D,)), ("feed_forward.w1.weight", (F, D)), ("feed_forward.w3.weight", (F, D)),
         ("feed_forward.w2.weight", (D, F)), ("feed_forward_norm.weight", (D,))]
PARAMS = [("embeddings.weight", (V, D))] + [(f"blocks.{i}.{n}", s) for i in range(L) for n, s in LAYER] + [("lm_head.norm.weight", (D,)), ("lm_head.w_out.weight", (V, D))]


def state_dict(fill):
    g = torch.Generator().manual_seed(5)
    t = (lambda s: torch.randn(s, generator=g)) if fill else (lambda s: torch.zeros(s))
    groups = [
        {"weight_decay": 0.0, "lr": 3e-4, "betas": (0.9, 0.95), "eps": 1e-8, "foreach": None, "fused": None, "initial_lr": 6e-4, "params": ["embeddings.weight"]},
        {"weight_decay": 0.1, "lr": 3e-4, "betas": (0.9, 0.95), "eps": 1e-8, "foreach": None, "fused": None, "initial_lr": 6e-4, "params": [n for n, _ in PARAMS[1:]]},
    ]
    if not fill:
        for gr in groups:
            gr.update(lr=0.0, initial_lr=0.0, weight_decay=-1.0)
    return {
        "model": {n: t(s) for n, s in PARAMS},
        "optim": {"state": {n: {"exp_avg": t(s), "exp_avg_sq": t(s).abs(), "step": torch.tensor(float(i % 3 + 5) if fill else 0.0)} for i, (n, s) in enumerate(PARAMS)},
                  "param_groups": groups},
    }


def config_json():
    norm = {"name": "rms", "eps": 1e-6}
    return {"model": {"d_model": D, "n_layers": L, "vocab_size": V, "block": {"name": "reordered_norm", "attention": {"n_heads": H, "n_kv_heads": KV, "rope": {"theta": 500000}, "qk_norm": norm},
            "feed_forward": {"hidden_size": F, "bias": False}, "layer_norm": norm}}, "data_loader": {"seed": 34521}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bun", default="bun")
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="olmo-dcp-")
    dist.init_process_group("gloo", init_method=f"file://{root}/pg", rank=0, world_size=1)
    src = state_dict(True)
    step = os.path.join(root, "step5")
    dcp.save(src, checkpoint_id=os.path.join(step, "model_and_optim"))
    json.dump(config_json(), open(os.path.join(step, "config.json"), "w"))
    os.makedirs(os.path.join(step, "train"))
    trainer = {"global_step": 5, "global_train_tokens_seen": 5 * 2048, "max_steps": 10, "epoch": 1, "world_size": 1, "rng": {},
               "data_loader": {"dataset_fingerprint_version": "v1.1", "dataset_fingerprint": "ab" * 32, "batches_processed": 5, "tokens_processed": 5 * 2048,
                               "seed": 34521, "epoch": 1, "dataset_type": "fsl", "sequence_length": 512, "max_target_sequence_length": None}}
    torch.save(trainer, os.path.join(step, "train", "rank0.pt"))
    cli = [a.bun, "src/cli/main.ts"]
    for args in (["import-olmo-core", step, "--out", os.path.join(root, "native")], ["export-olmo-core", os.path.join(root, "native"), "--out", os.path.join(root, "back")]):
        r = subprocess.run(cli + args, capture_output=True, text=True)
        print("$ olmo", " ".join(args), "->", r.returncode, (r.stdout + r.stderr).strip()[-300:])
        if r.returncode != 0:
            sys.exit(1)
    back = os.path.join(root, "back")
    dst = state_dict(False)
    dcp.load(dst, checkpoint_id=os.path.join(back, "model_and_optim"))
    bad = [n for n in src["model"] if not torch.equal(src["model"][n], dst["model"][n])]
    for n, st in src["optim"]["state"].items():
        bad += [f"{n}.{k}" for k, v in st.items() if not torch.equal(v, dst["optim"]["state"][n][k])]
    for i, (gs, gd) in enumerate(zip(src["optim"]["param_groups"], dst["optim"]["param_groups"])):
        bad += [f"param_groups.{i}.{k}" for k in gs if gs[k] != gd[k]]
    n = len(src["model"]) + 3 * len(src["optim"]["state"])
    print(f"dcp.load: {n - len([b for b in bad if 'param_groups' not in b])}/{n} tensors equal; param groups {'equal' if not any('param_groups' in b for b in bad) else 'DIFFER'}")
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
    dcp_to_torch_save(os.path.join(back, "model_and_optim"), os.path.join(root, "flat.pt"))
    flat = torch.load(os.path.join(root, "flat.pt"), weights_only=False)
    nested_ok = torch.equal(flat["model"]["embeddings.weight"], src["model"]["embeddings.weight"]) and flat["optim"]["param_groups"][0]["params"] == ["embeddings.weight"]
    print(f"dcp_to_torch_save (planner_data nesting): {'ok' if nested_ok else 'WRONG'}")
    tr = torch.load(os.path.join(back, "train", "rank0.pt"), weights_only=False)
    tr_ok = tr["global_step"] == 5 and tr["data_loader"]["seed"] == 34521 and tr["data_loader"]["tokens_processed"] == 5 * 2048
    print(f"train/rank0.pt: {'ok' if tr_ok else 'WRONG'} {json.dumps({k: tr[k] for k in ('global_step', 'global_train_tokens_seen', 'world_size')})}")
    dist.destroy_process_group()
    if bad or not nested_ok or not tr_ok:
        print("FAILED:", bad[:10])
        sys.exit(1)
    print('{"ok": true}')


if __name__ == "__main__":
    main()
