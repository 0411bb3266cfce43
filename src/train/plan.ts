// The plan of a run, computed from its config alone (no data, no device): sizes, FLOPs, steps,
// the LR at every checkpoint, every checkpoint name, memory per GPU for a parallel layout and the
// wall time at an assumed MFU. `olmo plan` prints it; users read it before spending GPU hours.
import { checkpointName } from "../checkpoint/naming.ts";
import { type RunConfig, globalBatchTokens, totalSteps } from "../config/schema.ts";
import { UserError } from "../errors.ts";
import { activationArenaBytes, ceChunkRowsFor, resolveRecompute } from "../model/activations.ts";
import { headDim, paddedVocab } from "../model/config.ts";
import { paramSpecs, totalParams } from "../model/params.ts";
import { lrAt } from "../optim/schedule.ts";
import { type RecomputeMode, RecomputeModeSchema } from "../model/config.ts";

/** H100 SXM dense bf16 peak (989.4 TFLOP/s), the MFU denominator */
export const H100_PEAK_FLOPS = 989.4e12;
/** H100 SXM memory, for the "fits" verdict */
export const H100_MEMORY_BYTES = 80e9;

export interface Layout {
  gpus: number;
  /** tensor-parallel degree (Megatron: heads, FFN and vocabulary split) */
  tp: number;
  /** data-parallel degree (ZeRO-1: optimizer state split) */
  dp: number;
}

export interface PlanOptions {
  layout?: Partial<Layout>;
  /** model FLOPs utilization assumed for the wall-time estimate */
  mfu?: number;
  peakFlops?: number;
}

export interface CheckpointPlan {
  step: number;
  name: string;
  /** LR of the update made at this step */
  lr: number;
}

export interface MemoryPerGpu {
  weights: number;
  grads: number;
  optimizer: number;
  activations: number;
  total: number;
}

export interface Plan {
  name: string;
  stage: number;
  ingredient: number | null;
  params: number;
  params_no_embedding: number;
  flops_per_token: number;
  steps: number;
  global_batch_tokens: number;
  tokens: number;
  total_flops: number;
  /** the schedule at step 0: where it starts (stage 2: the stage-1 LR it continues from) */
  lr_start: number;
  /** the LR of the first update (step 1; OLMo counts updates from 1) */
  lr_first_step: number;
  /** the LR of the last update */
  lr_end: number;
  schedule: RunConfig["optim"]["schedule"] & { t_max_steps: number };
  init_from: string | null;
  final_checkpoint: string;
  checkpoints: CheckpointPlan[];
  /** checkpoints left on disk at the end (checkpoint.keep) */
  checkpoints_kept: number;
  layout: Layout & { grad_accum: number; micro_batch_tokens: number };
  memory_per_gpu_bytes: MemoryPerGpu;
  /** train.recompute as given (one mode, or one per layer) */
  recompute: RecomputeMode | RecomputeMode[];
  /** activations per GPU with every layer in each recompute mode (the choice the config makes is in memory_per_gpu_bytes) */
  activations_by_recompute_bytes: Record<RecomputeMode, number>;
  fits_h100_80gb: boolean;
  mfu: number;
  peak_flops_per_gpu: number;
  est_hours: number;
}

/** gpus = tp·dp; missing ones are derived (default: one GPU, tp 1). */
export function resolveLayout(cfg: RunConfig, l: Partial<Layout> = {}): Layout {
  const tp = l.tp ?? 1;
  for (const [k, v] of Object.entries(l)) {
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw new UserError(`plan: --${k} must be a positive integer, got ${v}`);
  }
  const gpus = l.gpus ?? (l.dp !== undefined ? l.dp * tp : tp);
  if (gpus % tp !== 0) throw new UserError(`plan: --tp ${tp} does not divide --gpus ${gpus}`);
  const dp = l.dp ?? gpus / tp;
  if (dp * tp !== gpus) throw new UserError(`plan: --gpus ${gpus} is not --tp ${tp} × --dp ${dp}`);
  const m = cfg.model;
  // Megatron TP splits attention by heads (GQA: by kv heads, their q groups follow), SwiGLU by hidden units, vocab by rows
  for (const [what, n] of [["model.nHeads", m.nHeads], ["model.nKvHeads", m.nKvHeads], ["model.ffnHidden", m.ffnHidden], ["the padded vocabulary", paddedVocab(m)]] as const) {
    if (n % tp !== 0) throw new UserError(`plan: --tp ${tp} does not divide ${what} (${n})`);
  }
  const perStep = cfg.train.microBatchInstances * dp;
  if (cfg.train.globalBatchInstances % perStep !== 0) {
    throw new UserError(`plan: train.globalBatchInstances ${cfg.train.globalBatchInstances} is not divisible by microBatchInstances × dp = ${cfg.train.microBatchInstances} × ${dp}`);
  }
  return { gpus, tp, dp };
}

/** PaLM convention: 6·N_matmul (forward + backward of every weight matrix but the embedding lookup) + 12·L·d·T (attention scores and values). */
export function flopsPerToken(cfg: RunConfig): number {
  const m = cfg.model;
  const matmul = paramSpecs(m).filter((s) => s.shape.length === 2 && s.name !== "model.embed_tokens.weight").reduce((a, s) => a + s.numel, 0);
  return 6 * matmul + 12 * m.nLayers * m.nHeads * headDim(m) * cfg.train.seqLen;
}

/**
 * Bytes of activations and backward workspace one rank keeps for a micro-batch: the arenas
 * src/model/olmo2.ts allocates, summed from the same buffer list (src/model/activations.ts), for the
 * recompute mode of each layer (default: the config's train.recompute). Under TP the head/FFN/vocab
 * widths are split; the residual-width buffers are replicated (no sequence parallelism).
 */
export function activationBytes(cfg: RunConfig, tp = 1, actBytes = 2, ceBudgetBytes = 1 << 30,
  recompute: RecomputeMode | readonly RecomputeMode[] = cfg.train.recompute): number {
  const m = cfg.model, B = cfg.train.microBatchInstances, T = cfg.train.seqLen, vloc = paddedVocab(m) / tp;
  const dims = { B, T, C: m.dModel, D: headDim(m), h: m.nHeads / tp, k: m.nKvHeads / tp, F: m.ffnHidden / tp, vloc,
    ceChunkRows: ceChunkRowsFor(ceBudgetBytes, vloc, actBytes, B * T), actBytes, tp: tp > 1 };
  return activationArenaBytes(dims, resolveRecompute(recompute, m.nLayers), true);
}

/** activationBytes for every recompute mode applied to all layers (what `olmo plan` lists) */
export function activationBytesByRecompute(cfg: RunConfig, tp = 1): Record<RecomputeMode, number> {
  const out = {} as Record<RecomputeMode, number>;
  for (const mode of RecomputeModeSchema.options) out[mode] = activationBytes(cfg, tp, 2, 1 << 30, mode);
  return out;
}

/**
 * Weights: a compute copy (bf16 on GPUs, `actBytes`; split by TP) + the fp32 master, which ZeRO-1
 * keeps with the optimizer slice (split by TP and DP). Gradients: fp32, accumulated over micro-batches before
 * the reduce-scatter, so whole (split by TP only). Optimizer: Adam m and v in fp32 (TP and DP).
 */
export function memoryPerGpu(cfg: RunConfig, layout: Layout, actBytes = 2): MemoryPerGpu {
  const { tp, dp } = layout;
  // replicated tensors (the per-layer output norms, the final norm) are whole on every TP rank
  const perTp = paramSpecs(cfg.model).reduce((a, s) => a + (s.tp === "replicated" ? s.numel : s.numel / tp), 0);
  // actBytes 4 (the CPU library) without ZeRO-1: the fp32 master is the compute copy (param-store.ts)
  const weights = actBytes === 4 && dp === 1 ? 4 * perTp : actBytes * perTp + (4 * perTp) / dp;
  const grads = 4 * perTp;
  const optimizer = (8 * perTp) / dp;
  const activations = activationBytes(cfg, tp, actBytes);
  return { weights, grads, optimizer, activations, total: weights + grads + optimizer + activations };
}

/** Steps at which the run saves: every saveInterval, every ephemeralInterval, and the last one (what RunCheckpointer.maybeSave does). */
export function checkpointSteps(cfg: RunConfig): number[] {
  const steps = totalSteps(cfg), { saveInterval: every, ephemeralInterval: eph } = cfg.checkpoint;
  const at = new Set<number>([steps]);
  for (const n of [every, eph ?? 0]) if (n > 0) for (let s = n; s < steps; s += n) at.add(s);
  return [...at].sort((a, b) => a - b);
}

export function planRun(cfg: RunConfig, opts: PlanOptions = {}): Plan {
  const layout = resolveLayout(cfg, opts.layout);
  const mfu = opts.mfu ?? 0.4;
  if (!(mfu > 0 && mfu <= 1)) throw new UserError(`plan: --mfu must be in (0, 1], got ${mfu}`);
  const peak = opts.peakFlops ?? H100_PEAK_FLOPS;
  const specs = paramSpecs(cfg.model);
  const params = totalParams(specs);
  const embedding = specs.find((s) => s.name === "model.embed_tokens.weight")!.numel;
  const steps = totalSteps(cfg), batch = globalBatchTokens(cfg);
  const lr = (step: number) => lrAt(cfg.optim.schedule, step, cfg.optim.lr, steps);
  const name = (step: number) => checkpointName({ stage: cfg.stage, ingredient: cfg.ingredient, step, globalBatchTokens: batch });
  const checkpoints = checkpointSteps(cfg).map((step) => ({ step, name: name(step), lr: lr(step) }));
  const fpt = flopsPerToken(cfg);
  const tokens = steps * batch;
  const memory = memoryPerGpu(cfg, layout);
  const sched = cfg.optim.schedule;
  return {
    name: cfg.name,
    stage: cfg.stage,
    ingredient: cfg.ingredient ?? null,
    params,
    params_no_embedding: params - embedding,
    flops_per_token: fpt,
    steps,
    global_batch_tokens: batch,
    tokens,
    total_flops: fpt * tokens,
    // the first update is step 1 (OLMo: lr(1) = peak/warmup); the last is step `steps`
    lr_start: lr(0),
    lr_first_step: lr(1),
    lr_end: lr(steps),
    schedule: { ...sched, t_max_steps: sched.kind === "constant" ? steps : (sched.tMaxSteps ?? steps) },
    init_from: cfg.checkpoint.loadPath ?? null,
    final_checkpoint: name(steps),
    checkpoints,
    checkpoints_kept: Math.min(cfg.checkpoint.keep, checkpoints.length),
    layout: {
      ...layout,
      grad_accum: cfg.train.globalBatchInstances / (cfg.train.microBatchInstances * layout.dp),
      micro_batch_tokens: cfg.train.microBatchInstances * cfg.train.seqLen,
    },
    memory_per_gpu_bytes: memory,
    recompute: cfg.train.recompute,
    activations_by_recompute_bytes: activationBytesByRecompute(cfg, layout.tp),
    fits_h100_80gb: memory.total <= H100_MEMORY_BYTES,
    mfu,
    peak_flops_per_gpu: peak,
    est_hours: (fpt * tokens) / (layout.gpus * peak * mfu) / 3600,
  };
}
