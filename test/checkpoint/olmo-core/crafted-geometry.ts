// Crafted OLMo-core step folders for the tests of hostile geometry: the committed fixture's
// config.json (the tiny model), and a DCP model_and_optim/ written here item by item, so a test can
// give any tensor any chunks, any blob (a torch.save archive, possibly a strided view) and any
// storage record. Weights only: every parameter of the model, one chunk each unless a test says
// otherwise.
import { closeSync, cpSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { DcpStorage } from "../../../src/checkpoint/olmo-core/dcp-metadata.ts";
import { modelConfigFromOlmoCore } from "../../../src/checkpoint/olmo-core/config.ts";
import { olmoCoreName } from "../../../src/checkpoint/olmo-core/names.ts";
import { PyDict, PyGlobal, PyObject, PyPersistent, PyTuple, type PyValue } from "../../../src/checkpoint/torch/pickle-read.ts";
import { dataclassRecord, pickle } from "../../../src/checkpoint/torch/pickle-write.ts";
import { ZipWriter } from "../../../src/checkpoint/torch/zip.ts";
import { paramSpecs } from "../../../src/model/params.ts";
import { bytesOf } from "../../../src/tensor/dtype.ts";

export const FIXTURE_STEP = join(import.meta.dir, "fixtures", "step5");
const MD = "torch.distributed.checkpoint.metadata";

export interface CraftedChunk {
  offsets: number[];
  sizes: number[];
  /** the chunk's torch.save archive (default: a contiguous f32 tensor of its elements) */
  blob?: Uint8Array;
  /** the storage record (default: where the blob is written); a record of another chunk shares its bytes */
  storage?: DcpStorage;
}

export interface CraftedTensor {
  fqn: string;
  size: number[];
  chunks: CraftedChunk[];
  /** the torch.<name> dtype in the metadata (default float32) */
  dtypeName?: string;
}

/**
 * A torch.save archive of a view: `shape` with `strides` (elements) over a float32 storage, plus
 * `padBytes` of an unused record; `storageClass` names the storage type (torch.<name>).
 */
export function viewBlob(shape: number[], strides: number[], storage: Float32Array, padBytes = 0, storageClass = "FloatStorage"): Uint8Array {
  const pid = new PyPersistent(new PyTuple(["storage", new PyGlobal("torch", storageClass), "0", "cpu", storage.length]));
  const hooks = new PyObject(new PyGlobal("collections", "OrderedDict"), [], "reduce");
  const pkl = pickle(new PyObject(new PyGlobal("torch._utils", "_rebuild_tensor_v2"), [pid, 0, new PyTuple(shape), new PyTuple(strides), false, hooks], "reduce"));
  return zipBytes((z) => {
    z.add("archive/data.pkl", [pkl]);
    z.add("archive/data/0", [bytesOf(storage)]);
    if (padBytes) z.add("archive/padding", [new Uint8Array(padBytes)]);
    z.add("archive/version", [new TextEncoder().encode("3\n")]);
  });
}

/** A contiguous float32 tensor's torch.save archive. */
export function tensorBlob(shape: number[], values: Float32Array): Uint8Array {
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  return viewBlob(shape, strides, values);
}

function zipBytes(fill: (z: ZipWriter) => void): Uint8Array {
  const path = join(process.env.TMPDIR ?? "/tmp", `olmo-crafted-${process.pid}-${Math.random().toString(36).slice(2)}.zip`);
  const fd = openSync(path, "w+");
  try {
    const z = new ZipWriter(fd, 0);
    fill(z);
    const n = z.finish();
    const out = new Uint8Array(n);
    closeSync(fd);
    out.set(readFileSync(path).subarray(0, n));
    return out;
  } finally {
    try {
      closeSync(fd);
    } catch {
      // closed above
    }
    Bun.spawnSync(["rm", "-f", path]);
  }
}

const torchSize = (xs: number[]) => new PyObject(new PyGlobal("torch", "Size"), [new PyTuple(xs)], "reduce");

/** The .metadata of f32 tensors whose chunks have the given storage records. */
export function metadataPickle(tensors: (CraftedTensor & { chunks: (CraftedChunk & { storage: DcpStorage })[] })[]): Uint8Array {
  const sdm = new PyDict(), sd = new PyDict();
  for (const t of tensors) {
    const props = new PyObject(new PyGlobal(MD, "TensorProperties"), [], "newobj");
    props.state = new PyTuple([new PyGlobal("torch", t.dtypeName ?? "float32"), new PyGlobal("torch", "strided"), false, null, false]);
    const chunks: PyValue[] = t.chunks.map((c) => dataclassRecord(MD, "ChunkStorageMetadata", [["offsets", torchSize(c.offsets)], ["sizes", torchSize(c.sizes)]]));
    sdm.entries.push([t.fqn, dataclassRecord(MD, "TensorStorageMetadata", [["properties", props], ["size", torchSize(t.size)], ["chunks", chunks]])]);
    for (const c of t.chunks) {
      sd.entries.push([
        dataclassRecord(MD, "MetadataIndex", [["fqn", t.fqn], ["offset", torchSize(c.offsets)], ["index", 0]]),
        dataclassRecord("torch.distributed.checkpoint.filesystem", "_StorageInfo", [["relative_path", c.storage.relativePath], ["offset", c.storage.offset], ["length", c.storage.length]]),
      ]);
    }
  }
  return pickle(dataclassRecord(MD, "Metadata", [["state_dict_metadata", sdm], ["planner_data", null], ["storage_data", sd]]));
}

/** Every model parameter of the fixture's config, one whole chunk each, small deterministic values. */
export function fixtureTensors(): CraftedTensor[] {
  const model = modelConfigFromOlmoCore(JSON.parse(readFileSync(join(FIXTURE_STEP, "config.json"), "utf8")), "fixture config.json");
  return paramSpecs(model).map((s) => ({ fqn: `model.${olmoCoreName(s.name)}`, size: s.shape, chunks: [{ offsets: s.shape.map(() => 0), sizes: s.shape }] }));
}

/** Write a step folder: config.json from the fixture, model_and_optim/__0_0.distcp with the blobs back to back, and .metadata. */
export function writeStepFolder(dir: string, tensors: CraftedTensor[]): void {
  mkdirSync(join(dir, "model_and_optim"), { recursive: true });
  cpSync(join(FIXTURE_STEP, "config.json"), join(dir, "config.json"));
  const fd = openSync(join(dir, "model_and_optim", "__0_0.distcp"), "w");
  let at = 0;
  const placed = tensors.map((t) => ({
    ...t,
    chunks: t.chunks.map((c) => {
      const n = c.sizes.reduce((a, b) => a * b, 1);
      const blob = c.blob ?? tensorBlob(c.sizes, Float32Array.from({ length: n }, (_, i) => Math.sin(i + at) * 0.02));
      const storage = c.storage ?? { relativePath: "__0_0.distcp", offset: at, length: blob.length };
      if (!c.storage) {
        writeSync(fd, blob, 0, blob.length, at);
        at += blob.length;
      }
      return { ...c, storage };
    }),
  }));
  closeSync(fd);
  writeFileSync(join(dir, "model_and_optim", ".metadata"), metadataPickle(placed));
}
