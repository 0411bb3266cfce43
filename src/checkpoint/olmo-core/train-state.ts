// OLMo-core's trainer state, `stepN/train/rank{r}.pt`: torch.save of Trainer.state_dict()
// (allenai/OLMo-core src/olmo_core/train/trainer.py at d7301e62):
//   {global_step, global_train_tokens_seen, max_steps, epoch, world_size, rng,
//    data_loader: NumpyFSLDataLoader.state_dict() = {dataset_fingerprint_version, dataset_fingerprint,
//      batches_processed, tokens_processed, seed, epoch, dataset_type, sequence_length,
//      max_target_sequence_length}}   (src/olmo_core/data/data_loader.py at d7301e62)
// Trainer.load_state_dict restores the RNG states only when world_size equals the loading run's and
// each library's version matches (EnvRngStates.restore, src/olmo_core/train/utils.py); we have no
// Python/numpy/torch RNG states to give, so export writes versions (0, 0) that never match, and
// OLMo-core keeps its own RNG with a warning. NumpyDataLoaderBase.load_state_dict compares the
// dataset fingerprint only when the fingerprint versions are equal and otherwise warns; a
// checkpoint that did not come from OLMo-core is exported with version "olmo-bun" for that reason
// (its data order is OLMo-core's, but we do not compute OLMo-core's fingerprint of the files).
import { closeSync, openSync } from "node:fs";
import { UserError } from "../../errors.ts";
import { fileSize } from "../io.ts";
import { PyDict, PyFloat, PyTuple, type PyValue, typeName } from "../torch/pickle-read.ts";
import { pyDict, readTorchArchive, writeObjectArchive } from "../torch/torch-save.ts";
import type { OlmoCoreCursor } from "../../data/cursor.ts";
import { fsyncPath } from "../../output-dir.ts";

export interface OlmoCoreDataLoaderState {
  seed: number;
  epoch: number | null;
  batchesProcessed: number;
  tokensProcessed: number;
  fingerprint: string;
  fingerprintVersion: string;
  datasetType: string;
  sequenceLength: number | null;
  maxTargetSequenceLength: number | null;
}

export interface OlmoCoreTrainState {
  /** global_step: optimizer steps taken */
  step: number;
  /** global_train_tokens_seen */
  tokensSeen: number;
  maxSteps: number | null;
  epoch: number | null;
  /** the global world size that saved it */
  worldSize: number | null;
  dataLoader: OlmoCoreDataLoaderState | null;
}

/** A value as Python would print it, cut short (a crafted file must not make a long line). */
function pyShown(v: unknown): string {
  if (v instanceof PyFloat) return Number.isNaN(v.value) ? "nan" : !Number.isFinite(v.value) ? (v.value > 0 ? "inf" : "-inf") : Number.isInteger(v.value) ? `${v.value}.0` : String(v.value);
  if (v === null) return "None";
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v);
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
  return v === undefined ? "missing" : `a ${typeName(v as PyValue)}`;
}

/**
 * The one check of an OLMo-core trainer state, as strict as a native checkpoint's train state
 * (../native/validate.ts): counters are whole numbers (Python ints, not floats, not NaN or inf, not
 * negative), lengths positive, the fingerprint a string. It runs on the file as read and on the copy a
 * native checkpoint keeps for export, before anything is written from either. `get` reads a field
 * of the state (key path), `where` names the file.
 */
function checkedTrainState(get: (...keys: string[]) => unknown, where: string): OlmoCoreTrainState {
  const bad = (name: string, v: unknown, want: string): never => {
    throw new UserError(`${where}: the trainer state's ${name} is ${pyShown(v)}, expected ${want}`);
  };
  const int = (name: string, v: unknown, min: number, nullable = false): number | null => {
    if (v == null && nullable) return null;
    if (typeof v === "number" && Number.isSafeInteger(v) && v >= min) return v;
    return bad(name, v, `an integer >= ${min}${nullable ? " or None" : ""}`);
  };
  const str = (name: string, v: unknown): string => (typeof v === "string" ? v : bad(name, v, "a string"));
  const step = int("global_step", get("global_step"), 0)!;
  const tokensSeen = int("global_train_tokens_seen", get("global_train_tokens_seen"), 0)!;
  const dl = get("data_loader");
  let dataLoader: OlmoCoreDataLoaderState | null = null;
  if (dl != null) {
    const f = (k: string) => get("data_loader", k);
    const sequenceLength = int("data_loader.sequence_length", f("sequence_length"), 1, true);
    const maxTarget = int("data_loader.max_target_sequence_length", f("max_target_sequence_length"), 1, true);
    if (maxTarget !== null && (sequenceLength === null || maxTarget % sequenceLength !== 0)) {
      bad("data_loader.max_target_sequence_length", maxTarget, `a multiple of sequence_length ${sequenceLength ?? "None"}`);
    }
    dataLoader = {
      seed: int("data_loader.seed", f("seed"), 0)!, epoch: int("data_loader.epoch", f("epoch"), 1, true),
      batchesProcessed: int("data_loader.batches_processed", f("batches_processed"), 0)!,
      tokensProcessed: int("data_loader.tokens_processed", f("tokens_processed"), 0)!,
      fingerprint: str("data_loader.dataset_fingerprint", f("dataset_fingerprint")),
      fingerprintVersion: str("data_loader.dataset_fingerprint_version", f("dataset_fingerprint_version")),
      datasetType: f("dataset_type") === undefined ? "fsl" : str("data_loader.dataset_type", f("dataset_type")),
      sequenceLength, maxTargetSequenceLength: maxTarget,
    };
  }
  return { step, tokensSeen, maxSteps: int("max_steps", get("max_steps"), 1, true), epoch: int("epoch", get("epoch"), 1, true),
    worldSize: int("world_size", get("world_size"), 1, true), dataLoader };
}

/** Parse `train/rank0.pt` and check it (checkedTrainState). Only the fields above are read; the RNG states are left alone. */
export function readOlmoCoreTrainState(path: string): OlmoCoreTrainState {
  const fd = openSync(path, "r");
  let root: PyValue;
  try {
    root = readTorchArchive(fd, 0, fileSize(path), path, { keepFloats: true }).root;
  } finally {
    closeSync(fd);
  }
  if (!(root instanceof PyDict)) throw new UserError(`${path}: the trainer state is a ${typeName(root)}, not a dict`);
  if (!root.has("global_step") || !root.has("global_train_tokens_seen")) throw new UserError(`${path}: not an OLMo-core trainer state: no global_step / global_train_tokens_seen`);
  const get = (...keys: string[]): unknown => {
    let v: PyValue = root;
    for (const k of keys) v = v instanceof PyDict ? v.get(k) : undefined;
    return v;
  };
  const dl = get("data_loader");
  if (dl != null && !(dl instanceof PyDict)) throw new UserError(`${path}: the trainer state's data_loader is ${pyShown(dl)}, expected a dict`);
  return checkedTrainState(get, path);
}

/** A trainer state kept in a native checkpoint (an import's), checked again before it is written. */
export function checkKeptTrainState(s: unknown, where: string): OlmoCoreTrainState {
  const o = s as Record<string, any>;
  if (typeof o !== "object" || o === null) throw new UserError(`${where}: the kept OLMo-core trainer state is ${pyShown(o)}, expected a map`);
  const dl = o.dataLoader;
  const fields: Record<string, unknown> = { global_step: o.step, global_train_tokens_seen: o.tokensSeen, max_steps: o.maxSteps, epoch: o.epoch, world_size: o.worldSize,
    data_loader: dl == null ? null : { seed: dl.seed, epoch: dl.epoch, batches_processed: dl.batchesProcessed, tokens_processed: dl.tokensProcessed,
      dataset_fingerprint: dl.fingerprint, dataset_fingerprint_version: dl.fingerprintVersion, dataset_type: dl.datasetType,
      sequence_length: dl.sequenceLength, max_target_sequence_length: dl.maxTargetSequenceLength } };
  return checkedTrainState((...keys) => keys.reduce<any>((v, k) => (v == null ? undefined : v[k]), fields), where);
}

/** Write `train/rank0.pt` (archive name "rank0", as torch.save names it after the file). */
export function writeOlmoCoreTrainState(path: string, s: OlmoCoreTrainState): void {
  const noRng = pyDict({ version: new PyTuple([0, 0]), state: null });
  const dl = s.dataLoader;
  const value = pyDict({
    global_step: s.step,
    global_train_tokens_seen: s.tokensSeen,
    max_steps: s.maxSteps,
    data_loader: dl
      ? pyDict({
        dataset_fingerprint_version: dl.fingerprintVersion, dataset_fingerprint: dl.fingerprint, batches_processed: dl.batchesProcessed,
        tokens_processed: dl.tokensProcessed, seed: dl.seed, epoch: dl.epoch, dataset_type: dl.datasetType,
        sequence_length: dl.sequenceLength, max_target_sequence_length: dl.maxTargetSequenceLength,
      })
      : null,
    epoch: s.epoch,
    world_size: s.worldSize ?? 1,
    rng: pyDict({ python: noRng, numpy: noRng, torch: noRng, cuda: null }),
  });
  const fd = openSync(path, "w");
  try {
    writeObjectArchive(fd, 0, value, "rank0");
  } finally {
    closeSync(fd);
  }
  fsyncPath(path);
}

/** The data position of an OLMo-core trainer state, in the form our data loader restores (per epoch). */
export function olmoCoreCursor(dl: OlmoCoreDataLoaderState): OlmoCoreCursor {
  const L = dl.sequenceLength;
  return { olmoCore: { epoch: dl.epoch ?? 1, batchesProcessed: dl.batchesProcessed, tokensProcessed: dl.tokensProcessed, seed: dl.seed,
    fingerprint: dl.fingerprint, fingerprintVersion: dl.fingerprintVersion, sequenceLength: L,
    // OLMo-core's FSL chunking: max_target_sequence_length // sequence_length, 1 without it
    chunk: L ? (dl.maxTargetSequenceLength ? Math.floor(dl.maxTargetSequenceLength / L) : 1) : null } };
}
