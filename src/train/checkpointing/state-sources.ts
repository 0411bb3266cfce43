// The checkpoints a run can start from with their optimizer state, behind one interface: our native
// checkpoints and OLMo-core's (a step folder written by torch.distributed.checkpoint; the OLMo-2
// release's "OLMo format"). The checkpointer reads weights, moments, step counters, the trainer
// state and the data position through it, so both load the same way — ranged reads under TP and
// ZeRO-1 included.
import type { Group } from "../../checkpoint/native/format.ts";
import { NativeReader, stepCountersOf } from "../../checkpoint/native/read.ts";
import { OlmoCoreReader } from "../../checkpoint/olmo-core/read.ts";
import { olmoCoreCursor } from "../../checkpoint/olmo-core/train-state.ts";
import type { OlmoCoreOrigin } from "../../checkpoint/olmo-core/import.ts";
import { originOf } from "../../checkpoint/olmo-core/export-state.ts";
import { type SavedSettings, settingsOf } from "../../config/resume.ts";
import { PyFloat, PyTuple, type PyValue } from "../../checkpoint/torch/pickle-read.ts";
import { UserError } from "../../errors.ts";
import type { ModelConfig } from "../../model/config.ts";
import type { SkipHistory } from "../../optim/skip-step.ts";

export interface StateSource {
  readonly path: string;
  /** "native" | "OLMo-core", for messages */
  readonly kind: string;
  readonly model: ModelConfig;
  has(group: Group, name: string): boolean;
  /** elements [start, start + out.length) of a whole tensor (HF name) */
  readRange(group: Group, name: string, start: number, out: Float32Array): void;
  /** the Adam step counter of each of `names` (a one-line error when one is missing) */
  counters(names: string[]): Record<string, number>;
  trainState(): { step: number; tokensProcessed: number };
  /** the data loader's position, in a form DataStateful.restore accepts; null when not stored */
  dataCursor(): unknown;
  skipHistory(): SkipHistory | undefined;
  /**
   * The form of the OLMo-core optimizer the state came from (its param-group items: AdamW or
   * SkipStepAdamW, lr a tensor under compile=True), carried in the run's checkpoints so that an
   * export gives OLMo-core the optimizer it had; undefined when the state did not come from OLMo-core.
   */
  olmoCoreForm(): OlmoCoreOrigin | undefined;

  /** what the checkpoint says about the settings of the run that wrote it (the resume check), or null */
  savedSettings(): SavedSettings | null;
  close(): void;
}

/** What a run carries on of an origin: the optimizer's form, not the imported trainer state or config (the run's replace them). */
const formOf = (o: OlmoCoreOrigin | undefined): OlmoCoreOrigin | undefined =>
  o && Array.isArray(o.items) ? { config: null, trainer: null, items: o.items, paramGroupFormat: o.paramGroupFormat ?? null } : undefined;

/** A native checkpoint, its whole index validated first (src/checkpoint/native/validate.ts). */
export function openNativeState(path: string): StateSource {
  // validated against its own model config and for what it claims to hold; the checkpointer then names
  // any difference from the run's model first, and what is missing for what it loads
  const r = new NativeReader(path); // (the validation has checked every slice against its file's size)
  const ts = (r.meta.trainState ?? {}) as { step?: number; tokensProcessed?: number };
  return {
    path, kind: "native", model: r.meta.model,
    has: (g, n) => r.has(g, n),
    readRange: (g, n, start, out) => r.readRange(g, n, start, out),
    counters: (names) => stepCountersOf(r.meta, path, names),
    trainState: () => ({ step: ts.step ?? 0, tokensProcessed: ts.tokensProcessed ?? 0 }),
    dataCursor: () => r.meta.dataCursor ?? null,
    skipHistory: () => r.meta.optim?.skipHistory,
    olmoCoreForm: () => formOf(originOf(r.meta)),
    savedSettings: () => (r.meta.runConfig !== null && typeof r.meta.runConfig === "object" ? settingsOf(r.meta.runConfig as Record<string, unknown>) : null),
    close: () => r.close(),
  };
}

const pyNumber = (v: PyValue): number | undefined => (v instanceof PyFloat ? v.value : typeof v === "number" ? v : undefined);

/**
 * The settings an OLMo-core checkpoint carries (allenai/OLMo-core @ d7301e62): the trainer state's
 * max_steps, the schedule's length unless the scheduler has its own t_max
 * (src/olmo_core/train/callbacks/scheduler.py passes trainer.max_steps to Scheduler.get_lr;
 * src/olmo_core/optim/scheduler.py), and torch AdamW's param groups: initial_lr (the peak LR the
 * scheduler callback keeps in each group), betas, eps, weight_decay (the largest: the embeddings'
 * group has none). Its schedule kind and warmup live only in its experiment config, not compared.
 */
function olmoCoreSettings(r: OlmoCoreReader): SavedSettings {
  const out: SavedSettings = {};
  if (r.trainState?.maxSteps != null) out["train.steps"] = r.trainState.maxSteps;
  if (r.trainState?.dataLoader?.sequenceLength != null) out["train.seqLen"] = r.trainState.dataLoader.sequenceLength;
  if (r.paramGroupFormat() !== "unflattened") return out;
  const groups: ((f: string) => PyValue)[] = [];
  for (let i = 0; r.byteItem(`optim.param_groups.${i}.params`) !== undefined; i++) groups.push((f) => r.byteItem(`optim.param_groups.${i}.${f}`));
  if (!groups.length) return out;
  const lr = pyNumber(groups[0]("initial_lr")), eps = pyNumber(groups[0]("eps")), betas = groups[0]("betas");
  if (lr !== undefined) out["optim.lr"] = lr;
  if (eps !== undefined) out["optim.eps"] = eps;
  if (betas instanceof PyTuple && betas.items.length === 2) {
    const [b1, b2] = betas.items.map(pyNumber);
    if (b1 !== undefined && b2 !== undefined) [out["optim.beta1"], out["optim.beta2"]] = [b1, b2];
  }
  const wd = groups.map((g) => pyNumber(g("weight_decay"))).filter((w): w is number => w !== undefined);
  if (wd.length) out["optim.weightDecay"] = Math.max(...wd);
  return out;
}

/** OLMo-core's `train/rank0.pt` position: per epoch (its loader resets at each epoch), with its fingerprint. */
export function openOlmoCoreState(path: string): StateSource {
  const r = new OlmoCoreReader(path);
  return {
    path, kind: "OLMo-core", model: r.model,
    has: (g, n) => r.has(g, n),
    readRange: (g, n, start, out) => r.readRange(g, n, start, out),
    counters: (names) => r.stepCounters(names),
    trainState: () => {
      if (!r.trainState) throw new UserError(`${path}: no trainer state (train/rank0.pt) to continue from; set checkpoint.loadTrainerState false to start fresh from its weights and optimizer state`);
      return { step: r.trainState.step, tokensProcessed: r.trainState.tokensSeen };
    },
    dataCursor: () => (r.trainState?.dataLoader ? olmoCoreCursor(r.trainState.dataLoader) : null),
    // OLMo-core kept the skip rule's history in memory only
    skipHistory: () => undefined,
    olmoCoreForm: () => formOf({ config: null, trainer: null, items: r.keptItems(), paramGroupFormat: r.paramGroupFormat() }),
    savedSettings: () => olmoCoreSettings(r),
    close: () => r.close(),
  };
}
