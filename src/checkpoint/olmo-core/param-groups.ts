// The param groups an export writes for a checkpoint olmo trained, so that OLMo-core continues it
// with either optimizer it may build (allenai/OLMo-core @ d7301e62):
//   - SkipStepAdamW: lr, betas, eps, weight_decay, foreach, fused (optim/adamw.py), plus
//     initial_lr (OptimConfig.build, optim/config.py);
//   - torch.optim.AdamW (AdamWConfig.optimizer): those and amsgrad, maximize, capturable,
//     differentiable (PyTorch 2.6's AdamW param_groups, checked against real torch 2.6 in the tests).
// torch.distributed.checkpoint loads exactly the keys the loading optimizer has and fails on a
// missing one, and ignores extra keys, so every group carries the union. OLMo-2's two groups: the
// embedding without weight decay first, then every other parameter (OptimGroupOverride in
// src/scripts/train/OLMo2-32B.py; OptimConfig.build_groups puts overrides first).
// The run's hyperparameters (lr at the step, initial_lr = the peak, betas, eps, weight decay) are
// written; the form of the optimizer the checkpoint came from, when it came from OLMo-core, is kept:
// a group's lr stays a tensor of its dtype and shape if it was one (compile=True; a float lr would load
// into a compiled optimizer as a float, which OLMo-core warns recompiles badly), and its other fields
// (foreach, fused, and any field olmo does not set) keep their values.
import { UserError } from "../../errors.ts";
import { PyFloat, PyTuple, type PyValue } from "../torch/pickle-read.ts";
import { type KeptItem, type KeptTensor, isKeptTensor, keptValue, scalarBytes } from "./items.ts";
import { plainPickle } from "../torch/plain-data.ts";

/** The AdamW settings of the run that wrote a checkpoint, at its step. */
export interface ParamGroupValues {
  /** the learning rate at the checkpoint's step */
  lr: number;
  /** the schedule's peak (OLMo-core's initial_lr) */
  initialLr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

/** Fields either optimizer needs beyond the hyperparameters, with the values both build by default. */
const DEFAULTS: [string, PyValue][] = [
  ["foreach", null], ["fused", null], ["amsgrad", false], ["maximize", false], ["capturable", false], ["differentiable", false],
];

/**
 * The param-group items for a trained checkpoint. `names`: OLMo-core parameter names, the embedding
 * first; `origin`: the items kept from the OLMo-core checkpoint the run started from (or none).
 */
export function paramGroupItems(names: string[], v: ParamGroupValues, origin: KeptItem[], where: string): KeptItem[] {
  if (names[0] !== "embeddings.weight") throw new Error(`paramGroupItems: the embedding must come first, got ${names[0]}`);
  const kept = new Map(origin.map((it) => [it.fqn, it]));
  const groups = [{ weightDecay: 0, params: names.slice(0, 1) }, { weightDecay: v.weightDecay, params: names.slice(1) }];
  const out: KeptItem[] = [];
  groups.forEach((grp, i) => {
    const key = (f: string) => `optim.param_groups.${i}.${f}`, path = (f: string): (string | number)[] => ["optim", "param_groups", i, f];
    const value = (f: string, x: PyValue) => out.push(keptValue(key(f), path(f), x));
    const was = kept.get(key("lr"));
    if (was && isKeptTensor(was)) out.push(lrTensor(was, v.lr, where));
    else value("lr", new PyFloat(v.lr));
    value("betas", new PyTuple(v.betas.map((b) => new PyFloat(b))));
    value("eps", new PyFloat(v.eps));
    value("weight_decay", new PyFloat(grp.weightDecay));
    value("initial_lr", new PyFloat(v.initialLr));
    value("params", grp.params);
    const set = new Set(["lr", "betas", "eps", "weight_decay", "initial_lr", "params"]);
    for (const [f, d] of DEFAULTS) {
      const o = kept.get(key(f));
      value(f, o && !isKeptTensor(o) ? plainPickle(Buffer.from(o.pickle, "base64"), `${where}: item ${o.fqn}`).value : d);
      set.add(f);
    }
    // fields of the origin's optimizer that olmo does not set: as they were
    for (const it of origin) {
      const m = /^optim\.param_groups\.(\d+)\.([^.]+)$/.exec(it.fqn);
      if (m && Number(m[1]) === i && !set.has(m[2])) out.push(it);
    }
  });
  return out;
}

/** The lr of a compiled optimizer's group: a tensor as the origin stored it, holding the run's lr. */
function lrTensor(was: KeptTensor, lr: number, where: string): KeptTensor {
  if (was.shape.reduce((a, b) => a * b, 1) !== 1) throw new UserError(`${where}: ${was.fqn} is a tensor of shape [${was.shape}], not one learning rate`);
  return { ...was, data: Buffer.from(scalarBytes(lr, was.dtype, where)).toString("base64") };
}
