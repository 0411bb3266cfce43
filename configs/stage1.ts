// OLMo-2 32B stage 1 (pretraining), as trained (olmo2-spec.md §2.1): 6.5T-token cosine schedule,
// stopped early at step 721,901 (6.056T tokens) — the checkpoint stage 2 starts from.
//   bun run olmo plan configs/stage1.ts          # what it will do, before spending GPU hours
//   OLMO_DATA_ROOT=/my/data OLMO_CKPT_ROOT=/my/ckpts bun run train configs/stage1.ts
import type { RunConfigInput } from "../src/config/schema.ts";
import { olmo2_32b } from "./models.ts";
import { DATA_ROOT, mixFile, runDirOf } from "./paths.ts";

const SEQ_LEN = 4096;
const BATCH_INSTANCES = 2048; // 2048 × 4096 = 8,388,608 tokens per step
/** OLMo-core Duration.tokens(6.5e12) → max_steps = ceil(6.5e12 / 8388608); the cosine spans this */
export const STAGE1_T_MAX_STEPS = Math.ceil(6.5e12 / (BATCH_INSTANCES * SEQ_LEN)); // 774861
/** where the run was actually stopped; the schedule still assumes T_MAX, so the LR never reaches α·peak */
export const STAGE1_STOP_STEP = 721_901;

export default {
  name: "stage1",
  runDir: runDirOf("stage1"),
  stage: 1,
  model: olmo2_32b,
  data: {
    mixFile: mixFile("OLMoE-mix-0824"),
    baseDir: DATA_ROOT,
    tokenizer: "allenai/dolma2-tokenizer",
    dtype: "uint32",
    seed: 34521,
    // instances are drawn in pairs of consecutive 4096-token windows (OLMo-core chunking)
    maxTargetSeqLen: 8192,
    // 6.06T tokens over a ~3.9T-token mix: the run crosses into a second epoch (spec §4.3)
    allowRepetition: true,
  },
  train: {
    seqLen: SEQ_LEN,
    globalBatchInstances: BATCH_INSTANCES,
    // 2 × 4096 tokens per rank and micro-batch, as trained on 1024 GPUs (no accumulation there)
    microBatchInstances: 2,
    steps: STAGE1_STOP_STEP,
    initSeed: 0,
    logEvery: 1,
  },
  optim: {
    lr: 6e-4,
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weightDecay: 0.1, // all but the input embedding
    maxGradNorm: 1.0,
    zLossMult: 1e-5,
    schedule: { kind: "cosine", warmupSteps: 2000, alpha: 0.1, tMaxSteps: STAGE1_T_MAX_STEPS },
    // The 32B trained with OLMo-core's SkipStepAdamW before PR #309/#317: its step counter was never
    // incremented, so bias correction stays at step 1 (≈2.24× effective LR). Spec §2.3. Set false
    // for the corrected optimizer (what OLMo-core's official scripts at HEAD train with).
    stepIncrementBug: true,
  },
  checkpoint: { saveInterval: 1000, keep: 3, loadTrainerState: true },
  backend: "auto",
} satisfies RunConfigInput;
