// The shared base of the three OLMo-2 32B stage-2 ("anneal") ingredients: weights and optimizer
// state from the final stage-1 checkpoint, fresh trainer state (steps restart at 1, new data
// order), LR linear from where stage 1 stopped to 0 over the budget. An ingredient file picks its
// number, token budget, data seed and mix. Sources (allenai/OLMo-core):
// src/scripts/train/anneal/OLMo2-32B-anneal.py @ d7301e62 (the script the anneals ran:
// `trainer.load_checkpoint(checkpoint, load_trainer_state=False)`, SkipStepAdamWConfig, the starting LR
// from the stage-1 schedule, LinearWithWarmup(warmup 0, alpha_f 0)) and
// src/scripts/official/OLMo2/OLMo-2-0325-32B-anneal.py @ fa6c5014.
import type { RunConfigInput } from "../src/config/schema.ts";
import { checkpointName } from "../src/checkpoint/naming.ts";
import { cosineWithWarmup } from "../src/optim/schedule.ts";
import { DATA_ROOT, STAGE1_CKPT_OVERRIDE, V3_SMALL_PPL_VALIDATION, mixFile, runDirOf } from "./paths.ts";
import stage1 from "./stage1.ts";

const s1 = stage1.optim.schedule;
/**
 * The stage-1 LR at the step it stopped, computed from its schedule — not copied — so changing
 * stage 1 moves stage 2 with it. OLMo-core's anneal script does the same
 * (CosWithWarmup.get_lr(6e-4, 721901, 774861)); = 6.6232e-5 for the shipped stage 1.
 */
export const STAGE2_START_LR = cosineWithWarmup(stage1.train.steps, stage1.optim.lr, s1.warmupSteps, s1.tMaxSteps, s1.alpha);

/** the final stage-1 checkpoint (stage1-step721901-tokens6056B) */
export const STAGE1_FINAL = `${stage1.runDir}/${checkpointName({
  stage: 1, step: stage1.train.steps, globalBatchTokens: stage1.train.globalBatchInstances * stage1.train.seqLen,
})}`;

export interface IngredientSpec {
  ingredient: number;
  budgetTokens: number;
  /** data-order seed (the loader's permutation is PCG64(seed + epoch)) */
  seed: number;
  mix: "dolmino100" | "dolmino300";
}

// stage 1 is stopped by `steps`; stage 2 runs by a token budget instead
const { steps: _stage1Steps, ...stage1Train } = stage1.train;

export function stage2Ingredient(k: IngredientSpec) {
  const name = `stage2-ingredient${k.ingredient}`;
  return {
    ...stage1,
    name,
    runDir: runDirOf(name),
    stage: 2,
    ingredient: k.ingredient,
    // no max_target_sequence_length in stage 2: single 4096-token instances
    data: { mixFile: mixFile(k.mix), baseDir: DATA_ROOT, tokenizer: "allenai/dolma2-tokenizer", dtype: "uint32", seed: k.seed, allowRepetition: false },
    // steps = ceil(budget / 8,388,608): 100e9 → 11,921; 300e9 → 35,763
    train: { ...stage1Train, budgetTokens: k.budgetTokens },
    optim: {
      ...stage1.optim,
      lr: STAGE2_START_LR,
      // lr(s) = lr0·(1 − s/T), T = the run's steps; the last step runs at 0
      schedule: { kind: "linear", warmupSteps: 0, alpha: 0 },
      // SkipStepAdamW before the step-counter fix (PR #309/#317): the counter loaded with stage 1's
      // optimizer state is used and never incremented. From the released stage-1 state that is a
      // large counter (see configs/stage1.ts), i.e. bias correction exactly 1; from a checkpoint
      // without optimizer state it would be 0 (an effective step 2.24× the schedule's; the run warns).
      stepIncrementBug: true,
      // its skip rule; OLMo-core's history starts empty in a new process, as it does here at stage 2's start
      skipSteps: true,
    },
    // load_trainer_state=False: model + Adam moments; step, tokens, data cursor and LR start fresh
    // OLMO_STAGE1_CKPT=/path/to/peteish32/step721901 starts from the released OLMo-core checkpoint
    // every 1000 steps, and ephemerally every 500 (only the newest kept), as the anneal script saved
    // (CheckpointerCallback(save_interval=1000, ephemeral_save_interval=500)): hence the released
    // step11500 / step35500 folders beside the final ones
    checkpoint: { saveInterval: 1000, ephemeralInterval: 500, keep: 3, loadPath: STAGE1_CKPT_OVERRIDE ?? STAGE1_FINAL, loadTrainerState: false },
    // stage 1's v3-small perplexity sets, every 1000 steps and at the end. OLMo-core's anneal script
    // ran only its downstream evaluator (OLMo2-32B-anneal.py @ d7301e62 has no LM evaluator); an
    // eval never changes training here (forward only), so the ingredients and the soup can be
    // compared on the sets stage 1 was watched with.
    eval: { everySteps: 1000, atEnd: true, sets: [V3_SMALL_PPL_VALIDATION] },
  } satisfies RunConfigInput;
}
