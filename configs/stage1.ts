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
    // What ran (allenai/OLMo-core; the optimizer is chosen in src/scripts/train/OLMo2-32B.py), on the
    // `32B` branch: torch's AdamW from 2024-12-09 (784377d0, "It's now a 32B."), then SkipStepAdamW
    // from 2024-12-22 (25ede331) to the end (still so at d7301e62). The switch back to AdamW on
    // 2024-12-29 (2ce06ae2) and to SkipStepAdamW on 2025-01-03 (f751c773) exist only on the
    // experiment branches dirkg/32BHybrid and shanea/32BHybrid — and from 2024-12-22 on, AdamWConfig
    // built OLMo-core's own AdamW (optim/adamw.py at 25ede331), which never counts either. torch's
    // AdamW counts its `state["step"]`; OLMo-core's AdamW and SkipStepAdamW of that time create it at 0
    // only when the state is empty, read it for the bias correction and never increment it (fixed by
    // PR #309/#317 in mid-2025). Each switch resumed with the optimizer state. So on either branch the
    // counter froze at the number of torch-AdamW steps the run had taken before 2024-12-22 — if the
    // run that continued had taken any (the run was past step 205,000 by 2025-01-13: commit 0723199b
    // on dirkg/32BHybrid loads peteish32/step205000, so thousands at that speed).
    // Past ~340 steps, 1 − 0.95^(t+1) and 1 − 0.9^(t+1) round to exactly 1 in fp32, so a frozen
    // large counter and a counting one give the same update: plain AdamW without bias correction.
    // Hence: the counter counts here (stepIncrementBug false), which equals the as-trained optimizer
    // everywhere past the first few hundred steps. Only the released checkpoint can settle it: its
    // `optim.state.<name>.step` (`olmo ckpt info` on the step folder). A counter of 0 there would mean
    // SkipStepAdamW ran from step 1, every step 2.24× the schedule's (the bias correction of step 1).
    stepIncrementBug: false,
    // SkipStepAdamW's rule (window 128, 6σ; skip_step_optimizer.py @ d7301e62) ran from 2024-12-22
    // (the first ~13 days ran torch's AdamW, without it); here it runs from the start.
    skipSteps: true,
    // the 32B trained with fused_loss=True (OLMo2-32B.py @ d7301e62), whose triton loss returns CE + z-loss
    // as "CE": the rule saw CE + z (src/optim/skip-step.ts)
    skipStepLoss: "ce+z",
  },
  // OLMo2-32B.py saved every 1000 steps; on the 32B branch also ephemerally every 250 until 2025-01-07
  // ("No more ephemeral checkpoints", 5e4d04f1); at d7301e62 without. Add ephemeralInterval: 250 for a
  // preemptible cluster (only the newest ephemeral checkpoint is kept).
  checkpoint: { saveInterval: 1000, keep: 3, loadTrainerState: true },
  // the run's in-loop perplexity evaluation: OLMo-core's v3-small validation sets every 1000 steps
  // (src/scripts/train/OLMo2-32B.py builds on internal/experiment.py's common callbacks). Its
  // downstream tasks (MMLU, ARC, HellaSwag, … in OLMo2-32B.py) cannot be shipped: add task files
  // to eval.tasks (see README, "Evaluation").
  eval: { everySteps: 1000, atEnd: true, sets: [V3_SMALL_PPL_VALIDATION] },
  backend: "auto",
} satisfies RunConfigInput;
