// Before a run allocates anything large: the checkpoint it starts from exists, and its memory plan
// (olmo plan's accounting, src/train/plan.ts) fits the device it runs on — else one line saying how
// much is needed, how much there is, and a layout that would fit. (The data is opened before this,
// so a missing data root is reported first.)
import { existsSync } from "node:fs";
import type { Backend } from "../backend/backend.ts";
import { resolveCheckpointArg } from "../checkpoint/locate.ts";
import { findLatestCheckpoint } from "../checkpoint/naming.ts";
import type { RunConfig } from "../config/schema.ts";
import { UserError } from "../errors.ts";
import { H100_MEMORY_BYTES, type Layout, memoryPerGpu, resolveLayout } from "./plan.ts";

const GiB = 2 ** 30;
const gib = (b: number) => `${(b / GiB).toFixed(1)} GiB`;

/** checkpoint.loadPath must exist when the run starts from it (no checkpoint of its own to resume); a run folder must hold a complete checkpoint. */
export function checkLoadPath(cfg: RunConfig, runDir: string): void {
  const from = cfg.checkpoint.loadPath;
  if (!from || findLatestCheckpoint(runDir)) return;
  if (!existsSync(from)) throw new UserError(`checkpoint.loadPath ${from} does not exist (the checkpoint this run starts from)`);
  resolveCheckpointArg(from); // a run folder must hold a complete checkpoint
}

/**
 * The smallest layout on 80 GB GPUs (TP 1, 2, 4 or 8 inside a node, DP a power of two) whose plan
 * leaves 10% of the memory free, or null.
 */
export function layoutThatFits(cfg: RunConfig, bytesPerGpu = H100_MEMORY_BYTES): Layout | null {
  let best: Layout | null = null;
  for (const tp of [1, 2, 4, 8]) {
    for (let dp = 1; dp <= 65536; dp *= 2) {
      let layout: Layout;
      try {
        layout = resolveLayout(cfg, { tp, dp });
      } catch {
        continue; // tp does not divide the model, or dp the batch
      }
      if (memoryPerGpu(cfg, layout).total <= 0.9 * bytesPerGpu) {
        if (!best || layout.gpus < best.gpus) best = layout;
        break;
      }
    }
  }
  return best;
}

/**
 * Refuse a run whose plan does not fit: per rank on a GPU, all ranks of this host on the CPU library
 * (they share the host's memory).
 */
export function checkMemoryFits(cfg: RunConfig, be: Backend, tp: number, dp: number, ranksOnThisHost: number,
  freeBytes = be.deviceMemory().freeBytes): void {
  const need = memoryPerGpu(cfg, { gpus: tp * dp, tp, dp }, be.actBytes);
  const shared = be.name === "cpu" ? ranksOnThisHost : 1;
  if (need.total * shared <= freeBytes) return;
  const fits = layoutThatFits(cfg);
  const where = be.name === "cpu" ? `this host has ${gib(freeBytes)} available${shared > 1 ? ` for its ${shared} ranks` : ""}` : `${be.deviceName} has ${gib(freeBytes)} free`;
  throw new UserError(`the run needs ${gib(need.total)} per rank at tp=${tp} dp=${dp} (weights ${gib(need.weights)}, gradients ${gib(need.grads)}, ` +
    `optimizer ${gib(need.optimizer)}, activations ${gib(need.activations)}: olmo plan's accounting) but ${where}; ` +
    (fits ? `it fits on 80 GB GPUs as olmo plan CONFIG --gpus ${fits.gpus} --tp ${fits.tp}` : "no layout of 80 GB GPUs up to 65,536 of them fits (try train.recompute or a smaller micro-batch)"));
}
