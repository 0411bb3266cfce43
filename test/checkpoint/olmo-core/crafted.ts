// Crafted OLMo-core step folders for the refusal tests (unit tests and docs/bad-input.md rows):
// a trainer state with chosen field values, and a DCP item replaced by a chosen pickle. Built from
// the committed fixture (real torch.save output) with our own writers.
import { closeSync, cpSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type DcpItemOut, parseDcpMetadata, writeDcpMetadata } from "../../../src/checkpoint/olmo-core/dcp-metadata.ts";
import { exportOlmoCore } from "../../../src/checkpoint/olmo-core/export.ts";
import { importOlmoCore } from "../../../src/checkpoint/olmo-core/import.ts";
import { type PyDict, PyGlobal, PyObject, type PyValue } from "../../../src/checkpoint/torch/pickle-read.ts";
import { pyDict, writeObjectArchive, writePickleArchive } from "../../../src/checkpoint/torch/torch-save.ts";

export const FIXTURE = join(import.meta.dir, "fixtures", "step5");

/** `os.system(cmd)` as pickle protocol 2 writes it: GLOBAL posix.system, the argument tuple, REDUCE. */
export function systemCall(cmd: string): PyObject {
  return new PyObject(new PyGlobal("posix", "system"), [cmd], "reduce");
}

/** Trainer.state_dict() of the fixture (step 5), with `over` replacing top-level or data_loader fields ("data_loader.seed"). */
export function trainerState(over: Record<string, PyValue> = {}): PyDict {
  const dl: Record<string, PyValue> = {
    dataset_fingerprint_version: "v1.1", dataset_fingerprint: "0".repeat(64), batches_processed: 5, tokens_processed: 2560, seed: 34521,
    epoch: 1, dataset_type: "fsl", sequence_length: 64, max_target_sequence_length: null,
  };
  const top: Record<string, PyValue> = { global_step: 5, global_train_tokens_seen: 2560, max_steps: 100, epoch: 1, world_size: 2 };
  for (const [k, v] of Object.entries(over)) {
    if (k.startsWith("data_loader.")) dl[k.slice(12)] = v;
    else top[k] = v;
  }
  return pyDict({ ...top, data_loader: pyDict(dl), rng: pyDict({ python: null, numpy: null, torch: null, cuda: null }) });
}

/** A copy of the fixture step folder at `dir` with its train/rank0.pt replaced. */
export function withTrainerState(dir: string, state: PyDict): string {
  cpSync(FIXTURE, dir, { recursive: true });
  const fd = openSync(join(dir, "train", "rank0.pt"), "w");
  try {
    writeObjectArchive(fd, 0, state, "rank0");
  } finally {
    closeSync(fd);
  }
  return dir;
}

/**
 * An OLMo-core folder (the fixture, imported and exported: one chunk per tensor) at `dir` whose item
 * `fqn` holds `pkl` instead (a new torch.save blob appended to the data file; the metadata rewritten).
 */
export function withItemPickle(dir: string, fqn: string, pkl: Uint8Array): string {
  mkdirSync(dir, { recursive: true });
  importOlmoCore(FIXTURE, join(dir, "native"));
  const oc = join(dir, "step5");
  exportOlmoCore(join(dir, "native"), oc);
  const mc = join(oc, "model_and_optim"), file = join(mc, "__0_0.distcp");
  const at = statSync(file).size;
  const fd = openSync(file, "r+");
  let length: number;
  try {
    length = writePickleArchive(fd, at, pkl);
  } finally {
    closeSync(fd);
  }
  const meta = parseDcpMetadata(readFileSync(join(mc, ".metadata")), "crafted");
  if (!meta.bytes.has(fqn)) throw new Error(`withItemPickle: no item ${fqn}`);
  const items: DcpItemOut[] = [];
  for (const t of meta.tensors.values()) items.push({ fqn: t.fqn, tensor: { dtype: t.dtype, size: t.size }, storage: t.chunks[0].storage, path: meta.paths.get(t.fqn)! });
  for (const [k, s] of meta.bytes) items.push({ fqn: k, storage: k === fqn ? { relativePath: "__0_0.distcp", offset: at, length } : s, path: meta.paths.get(k)! });
  writeFileSync(join(mc, ".metadata"), writeDcpMetadata(items));
  return oc;
}
