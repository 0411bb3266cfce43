// OLMo-core step folder → native checkpoint: weights, both Adam moments and the per-tensor AdamW
// step counters (our `optim.step`), the trainer state (global step, tokens seen, the data loader's
// position and seed) and, kept for export, the experiment config and every item beyond the model
// and the Adam state (the param groups; items.ts). One tensor in memory at a time.
// AdamW's counter: OLMo-core's SkipStepAdamW keeps state["step"] per parameter, a 0-d fp32 tensor
// holding the number of updates applied (the bias corrections of the next update use step + 1;
// at d7301e62, the OLMo-2 32B's code, it was never incremented, so it stays 0: see
// src/olmo_core/optim/adamw.py there); torch.optim.AdamW's counter means the same. Ours, too.
import { resolve } from "node:path";
import { UserError } from "../../errors.ts";
import type { ModelConfig } from "../../model/config.ts";
import type { ParamSpec } from "../../model/params.ts";
import { Scratch } from "../io.ts";
import { NativeWriter } from "../native/write.ts";
import { type OlmoCoreOpenOptions, OlmoCoreReader } from "./read.ts";
import { olmoCoreCursor } from "./train-state.ts";
import type { OnProgress, TensorSource } from "../source.ts";
import type { OptimMeta } from "../native/format.ts";
import type { KeptItem } from "./items.ts";

/** An OLMo-core checkpoint's model weights as a streaming TensorSource (export-hf, soup, info). */
export class OlmoCoreSource implements TensorSource {
  readonly kind = "olmo-core" as const;
  readonly config: ModelConfig;
  readonly specs: ParamSpec[];
  readonly trainState: Record<string, unknown>;
  readonly reader: OlmoCoreReader;

  constructor(readonly path: string, opts: OlmoCoreOpenOptions = {}) {
    this.reader = new OlmoCoreReader(path, opts);
    this.config = this.reader.model;
    this.specs = this.reader.specs;
    const ts = this.reader.trainState;
    this.trainState = ts ? { step: ts.step, tokensProcessed: ts.tokensSeen } : {};
  }

  read(name: string, out: Float32Array): void {
    this.reader.read("model", name, out);
  }

  close(): void {
    this.reader.close();
  }
}

/** What import keeps of the OLMo-core checkpoint in the native trainState (for export and info). */
export interface OlmoCoreOrigin {
  config: Record<string, unknown> | null;
  trainer: OlmoCoreReader["trainState"];
  /** every DCP item outside model.* and optim.state.* (the param groups), as it was (items.ts) */
  items: KeptItem[];
  paramGroupFormat: "unflattened" | "flattened" | null;
}

export interface ImportResult {
  path: string;
  tensors: number;
  optimizer: boolean;
  step: number | null;
}

/** Write `out` (a native checkpoint directory, atomically) from the OLMo-core checkpoint at `dir`. */
export function importOlmoCore(dir: string, out: string, opts: OlmoCoreOpenOptions & { compress?: boolean; onProgress?: OnProgress } = {}): ImportResult {
  const r = new OlmoCoreReader(dir, opts);
  let w: NativeWriter | null = null;
  try {
    const withOptim = r.hasOptimizerState();
    const partial = r.specs.some((s) => r.has("adam_m", s.name) || r.has("adam_v", s.name));
    if (!withOptim && partial) throw new UserError(`${r.mcDir}: Adam moments are stored for some parameters but not all`);
    const steps = withOptim ? r.stepCounters(r.specs.map((s) => s.name)) : {};
    const counters = Object.values(steps);
    const ts = r.trainState;
    const origin: OlmoCoreOrigin = { config: r.config, trainer: ts, items: r.keptItems(), paramGroupFormat: r.paramGroupFormat() };
    const dl = ts?.dataLoader;
    const optim: OptimMeta | undefined = withOptim ? { step: steps } : undefined;
    const total = r.specs.reduce((a, s) => a + s.numel, 0) * 4 * (withOptim ? 3 : 1);
    w = new NativeWriter(out, r.model, {
      compress: opts.compress, totalBytes: total, onProgress: opts.onProgress,
      meta: {
        trainState: {
          step: ts?.step ?? 0, tokensProcessed: ts?.tokensSeen ?? 0,
          // the one counter older native checkpoints carry: the largest (they are all equal in practice)
          adamStep: counters.length ? Math.max(...counters) : 0,
          importedFrom: resolve(dir), olmoCore: origin,
        },
        dataCursor: dl ? olmoCoreCursor(dl) : null,
        ...(optim ? { optim } : {}),
      },
    });
    const scratch = new Scratch();
    const groups = withOptim ? (["model", "adam_m", "adam_v"] as const) : (["model"] as const);
    for (const g of groups) {
      for (const s of r.specs) {
        const buf = scratch.f32(s.numel);
        r.read(g, s.name, buf);
        w.add(g, s.name, buf);
      }
    }
    w.finish();
    return { path: out, tensors: r.specs.length, optimizer: withOptim, step: ts?.step ?? null };
  } catch (e) {
    w?.abort();
    throw e;
  } finally {
    r.close();
  }
}
