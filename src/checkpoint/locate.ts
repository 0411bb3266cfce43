// What a path given as a checkpoint means. A checkpoint (native, OLMo-core step folder, HF folder)
// is itself; a run folder means its newest complete checkpoint (what `olmo train` would resume
// from), and an OLMo-core save folder its newest complete `stepN/`; a run folder without a
// complete checkpoint is refused. Every command that takes a checkpoint, and checkpoint.loadPath,
// resolve their argument here, so `olmo generate runs/tiny` and `olmo export-hf runs/tiny` agree.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.ts";
import { METADATA_FILE, listCheckpoints } from "./naming.ts";
import { isOlmoCoreCheckpoint } from "./olmo-core/read.ts";

export interface ResolvedCheckpoint {
  path: string;
  /** when `given` was a run (or save) folder: which of its checkpoints is used, to print */
  note: string | null;
}

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

/**
 * OLMo-core's save folder: `stepN/` folders; one is complete once torch.distributed.checkpoint wrote
 * its `.metadata`, which the writer renames into place after every data file
 * (pytorch/pytorch torch/distributed/checkpoint/filesystem.py, `finish`).
 */
function newestOlmoCoreStep(dir: string): string | null {
  const steps = readdirSync(dir)
    .map((name) => ({ name, step: /^step(\d+)$/.exec(name)?.[1] }))
    .filter((s) => s.step !== undefined && isOlmoCoreCheckpoint(join(dir, s.name)))
    .sort((a, b) => Number(a.step) - Number(b.step));
  return steps.length ? join(dir, steps[steps.length - 1].name) : null;
}

/** A run folder of ours: what `olmo train` writes beside its checkpoints (its config.json is a run config, not an HF one). */
function looksLikeRunFolder(dir: string): boolean {
  if (existsSync(join(dir, "metrics.jsonl")) || existsSync(join(dir, "train.lock"))) return true;
  try {
    const c = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    return typeof c === "object" && c !== null && "train" in c && "optim" in c && !("model_type" in c);
  } catch {
    return false;
  }
}

/** The checkpoint `given` names: itself, or the newest complete one of the run folder it is. */
export function resolveCheckpointArg(given: string): ResolvedCheckpoint {
  const as = { path: given, note: null };
  if (!isDir(given) || existsSync(join(given, METADATA_FILE)) || isOlmoCoreCheckpoint(given)) return as;
  const ours = listCheckpoints(given);
  if (ours.length) {
    const path = ours[ours.length - 1].path;
    return { path, note: `using ${path}, the newest complete checkpoint of ${given}` };
  }
  const step = newestOlmoCoreStep(given);
  if (step) return { path: step, note: `using ${step}, the newest complete OLMo-core checkpoint of ${given}` };
  if (looksLikeRunFolder(given)) {
    throw new UserError(`"${given}" is a run folder without a complete checkpoint (no stage…-step…-tokens…B folder with ${METADATA_FILE}); ` +
      "train until its first save, or give a checkpoint");
  }
  return as;
}
