// Checkpoint names (the OLMo-2 release's revisions, e.g. stage2-ingredient3-step35763-tokens301B:
// tokens = ceil(step · 2048 · 4096 / 1e9) billions, allenai/OLMo-core @ fa6c5014
// src/examples/huggingface/upload_checkpoint_to_hf.py), finding the newest complete checkpoint in a run folder, and
// keep-last-K retention. A checkpoint directory is complete iff its metadata exists: the writer
// puts the metadata in last and publishes the directory with one rename, so anything else (a
// `*.tmp-<pid>` directory, a directory without metadata) is the debris of an interrupted save.
import { existsSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fsyncPath, isDeadStaging, stagingPath, stagingPid } from "../output-dir.ts";

export const METADATA_FILE = "metadata.msgpack";
/**
 * Bytes a run writes below its folder at most: a checkpoint retired for pruning with a file of a
 * parallel save inside, `stage999-ingredient999-step<16 digits>-tokens<16 digits>B.pruned.tmp-<pid>/
 * part.rank<6 digits>.msgpack.tmp-<pid>` (~125), or TensorBoard's `tensorboard/events.out.tfevents.
 * <seconds>.<host, up to 64>.<pid>.0` (~110); a run folder must leave this much of PATH_MAX.
 */
export const RUN_FOLDER_RESERVE_BYTES = 160;

export interface NameParts {
  stage: number;
  ingredient?: number;
  step: number;
  /** global batch size in tokens (instances × sequence length) */
  globalBatchTokens: number;
}

/** `stage{S}[-ingredient{K}]-step{N}-tokens{ceil(N·batch/1e9)}B`; ceil, as OLMo-core's uploader (101B, not 100B). */
export function checkpointName(p: NameParts): string {
  const tokens = BigInt(p.step) * BigInt(p.globalBatchTokens);
  const billions = (tokens + 999_999_999n) / 1_000_000_000n;
  const ing = p.ingredient !== undefined ? `-ingredient${p.ingredient}` : "";
  return `stage${p.stage}${ing}-step${p.step}-tokens${billions}B`;
}

const NAME_RE = /^stage(\d+)(?:-ingredient(\d+))?-step(\d+)-tokens(\d+)B$/;

export function parseCheckpointName(name: string): { stage: number; ingredient?: number; step: number; tokensB: number } | null {
  const m = NAME_RE.exec(name);
  if (!m) return null;
  return { stage: +m[1], ingredient: m[2] !== undefined ? +m[2] : undefined, step: +m[3], tokensB: +m[4] };
}

export function isCompleteCheckpoint(dir: string): boolean {
  return stagingPid(basename(dir)) === null && existsSync(join(dir, METADATA_FILE));
}

export interface CheckpointEntry {
  name: string;
  path: string;
  step: number;
  mtimeMs: number;
}

/** Complete, conventionally named checkpoints under runDir, oldest first (by step, then time). */
export function listCheckpoints(runDir: string): CheckpointEntry[] {
  if (!existsSync(runDir)) return [];
  const out: CheckpointEntry[] = [];
  for (const name of readdirSync(runDir)) {
    const parts = parseCheckpointName(name);
    const path = join(runDir, name);
    if (!parts || !isCompleteCheckpoint(path)) continue;
    out.push({ name, path, step: parts.step, mtimeMs: statSync(join(path, METADATA_FILE)).mtimeMs });
  }
  return out.sort((a, b) => a.step - b.step || a.mtimeMs - b.mtimeMs);
}

/** The newest complete checkpoint in runDir (what `olmo train` resumes from), or null. */
export function findLatestCheckpoint(runDir: string): string | null {
  const all = listCheckpoints(runDir);
  return all.length ? all[all.length - 1].path : null;
}

/**
 * Take a checkpoint out of sight before deleting it: one rename to a temporary name (which no
 * reader takes for a checkpoint), made durable, so a kill during the slow recursive delete leaves
 * debris that the next prune removes, never a folder with metadata but without its tensor files.
 * Returns the new name.
 */
export function retireCheckpoint(path: string, pid = process.pid): string {
  const aside = stagingPath(`${path}.pruned`, pid);
  renameSync(path, aside);
  fsyncPath(dirname(path));
  return aside;
}

/**
 * Keep the newest `keep` complete checkpoints, and of the ephemeral ones only the newest; delete
 * the others (retired first, see above) and
 * the temp directories of saves and deletes whose process is gone (a live pid may be another rank
 * or run still writing). Returns the deleted paths.
 */
export function pruneCheckpoints(runDir: string, keep: number, ephemeral?: EphemeralSaves): string[] {
  if (!existsSync(runDir)) return [];
  const removed: string[] = [];
  const drop = (c: CheckpointEntry) => {
    rmSync(retireCheckpoint(c.path), { recursive: true, force: true });
    removed.push(c.path);
  };
  let all = listCheckpoints(runDir);
  // OLMo-core's ephemeral checkpoints (CheckpointerCallback, train/callbacks/checkpointer.py at
  // d7301e62): only the newest one stays; the permanent ones are not touched by this
  if (ephemeral && ephemeral.every > 0) {
    const isEphemeral = (c: CheckpointEntry) => c.step % ephemeral.every === 0 && !(ephemeral.saveInterval > 0 && c.step % ephemeral.saveInterval === 0);
    const eph = all.filter(isEphemeral);
    for (const c of eph.slice(0, -1)) drop(c);
    all = all.filter((c) => !removed.includes(c.path));
  }
  for (const c of all.slice(0, Math.max(0, all.length - keep))) drop(c);
  for (const name of readdirSync(runDir)) {
    if (isDeadStaging(name)) {
      rmSync(join(runDir, name), { recursive: true, force: true });
      removed.push(join(runDir, name));
    }
  }
  return removed;
}

/** Checkpoints saved at `every` steps that are not at a multiple of `saveInterval` (0: none permanent by interval). */
export interface EphemeralSaves {
  every: number;
  saveInterval: number;
}
