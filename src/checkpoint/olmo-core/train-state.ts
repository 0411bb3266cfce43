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
import { PyDict, PyTuple, type PyValue, typeName } from "../torch/pickle-read.ts";
import { pyDict, readTorchArchive, writeObjectArchive } from "../torch/torch-save.ts";
import type { OlmoCoreCursor } from "../../data/loader.ts";
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

const num = (v: PyValue): number | null => (typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : null);

/** Parse `train/rank0.pt`. Only the fields above are read; the RNG states are left alone. */
export function readOlmoCoreTrainState(path: string): OlmoCoreTrainState {
  const fd = openSync(path, "r");
  try {
    const root = readTorchArchive(fd, 0, fileSize(path), path).root;
    if (!(root instanceof PyDict)) throw new UserError(`${path}: the trainer state is a ${typeName(root)}, not a dict`);
    const step = num(root.get("global_step")), tokens = num(root.get("global_train_tokens_seen"));
    if (step === null || tokens === null) throw new UserError(`${path}: not an OLMo-core trainer state: no global_step / global_train_tokens_seen`);
    const dl = root.get("data_loader");
    let dataLoader: OlmoCoreDataLoaderState | null = null;
    if (dl instanceof PyDict) {
      const seed = num(dl.get("seed")), bp = num(dl.get("batches_processed")), tp = num(dl.get("tokens_processed"));
      if (seed === null || bp === null || tp === null) throw new UserError(`${path}: data_loader state lacks seed / batches_processed / tokens_processed`);
      const str = (k: string) => (typeof dl.get(k) === "string" ? (dl.get(k) as string) : "");
      dataLoader = {
        seed, epoch: num(dl.get("epoch")), batchesProcessed: bp, tokensProcessed: tp, fingerprint: str("dataset_fingerprint"),
        fingerprintVersion: str("dataset_fingerprint_version"), datasetType: str("dataset_type") || "fsl",
        sequenceLength: num(dl.get("sequence_length")), maxTargetSequenceLength: num(dl.get("max_target_sequence_length")),
      };
    }
    return { step, tokensSeen: tokens, maxSteps: num(root.get("max_steps")), epoch: num(root.get("epoch")), worldSize: num(root.get("world_size")), dataLoader };
  } finally {
    closeSync(fd);
  }
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
