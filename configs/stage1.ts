// OLMo-2 32B stage 1 (pretraining), as trained: 6.5T-token cosine schedule, stopped early at step
// 721,901 (6.056T tokens) — the checkpoint stage 2 starts from. Sources (allenai/OLMo-core):
// src/scripts/official/OLMo2/OLMo-2-0325-32B-train.py @ fa6c5014 (the official script) and
// src/scripts/train/OLMo2-32B.py @ d7301e62 (the internal script the run used); the stop step and the
// checkpoint list: src/scripts/official/OLMo2/README.md and OLMo-2-0325-32B.csv @ fa6c5014.
//   bun run olmo plan configs/stage1.ts          # what it will do, before spending GPU hours
//   OLMO_DATA_ROOT=/my/data OLMO_CKPT_ROOT=/my/ckpts bun run train configs/stage1.ts
import type { RunConfigInput } from "../src/config/schema.ts";
import { olmo2_32b } from "./models.ts";
import { DATA_ROOT, V3_SMALL_PPL_VALIDATION, mixFile, runDirOf } from "./paths.ts";

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
    // 6.06T tokens over a ~3.9T-token mix: the run crosses into a second epoch, whose order is
    // PCG64(seed + 2) (OLMo-core src/olmo_core/data/data_loader.py @ d7301e62, reshuffle)
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
    // What ran (allenai/OLMo-core; the optimizer is chosen in src/scripts/train/OLMo2-32B.py):
    // torch's AdamW from 2024-12-09 (784377d0, "It's now a 32B."); SkipStepAdamW from 2024-12-22
    // (25ede331 on the 32B branch); AdamW again on 2024-12-29 (2ce06ae2, "SkipAdam optimizer has
    // problems during startup?"); SkipStepAdamW from 2025-01-03 to the end (f751c773, "Put SkipStep
    // back"; still so at d7301e62). Each switch resumed the run from its checkpoint, optimizer state
    // included. torch's AdamW counts its `step` state; SkipStepAdamW at d7301e62
    // (src/olmo_core/optim/adamw.py) keeps the same `state["step"]`, creates it at 0 only when the
    // state is empty, reads it for the bias correction and never increments it (fixed by PR
    // #309/#317 in mid-2025). So the counter froze at the number of AdamW steps run before the last
    // switch — thousands at any plausible speed (the run was past step 205,000 by 2025-01-13:
    // commit 0723199b on dirkg/32BHybrid loads peteish32/step205000).
    // Past ~340 steps, 1 − 0.95^(t+1) and 1 − 0.9^(t+1) round to exactly 1 in fp32, so a frozen
    // large counter and a counting one give the same update: plain AdamW without bias correction.
    // Hence: the counter counts here (stepIncrementBug false), which equals the as-trained optimizer
    // everywhere except the first few hundred steps if SkipStepAdamW had taken over before them.
    // Unknown: the exact counter in the released checkpoint (its `optim.state.<name>.step`; `olmo ckpt
    // info` shows it once imported), and which early steps ran with which optimizer.
    stepIncrementBug: false,
    // SkipStepAdamW's rule (window 128, 6σ; skip_step_optimizer.py @ d7301e62) ran for all but the
    // first ~12 days and 2024-12-29…2025-01-03; here it runs from the start.
    skipSteps: true,
  },
  checkpoint: { saveInterval: 1000, keep: 3, loadTrainerState: true },
  // the run's in-loop perplexity evaluation: OLMo-core's v3-small validation sets every 1000 steps
  // (src/scripts/train/OLMo2-32B.py builds on internal/experiment.py's common callbacks). Its
  // downstream tasks (MMLU, ARC, HellaSwag, … in OLMo2-32B.py) cannot be shipped: add task files
  // to eval.tasks (see README, "Evaluation").
  eval: { everySteps: 1000, atEnd: true, sets: [V3_SMALL_PPL_VALIDATION] },
  backend: "auto",
} satisfies RunConfigInput;
