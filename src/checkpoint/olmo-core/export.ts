// Native checkpoint → OLMo-core step folder that torch.distributed.checkpoint.load and OLMo-core's
// load_model_and_optim_state / Trainer.load_checkpoint accept:
//   model_and_optim/__0_0.distcp   one torch.save blob per item (fp32 whole tensors, one chunk each,
//                                  as a one-rank save writes them), then the param-group items
//   model_and_optim/.metadata      pickled Metadata (dcp-metadata.ts), written after the data
//   train/rank0.pt                 trainer state (train-state.ts)
//   config.json                    the experiment config
//   .metadata.json                 OLMo-core's CheckpointMetadata; Checkpointer.dir_is_checkpoint
//                                  requires it with the other two (train/checkpoint.py at d7301e62)
// Optimizer items follow OLMo-core's unflattened optimizer state dict: optim.state.<name>.{exp_avg,
// exp_avg_sq, step}, then the param groups; what goes beside the tensors (param groups, trainer
// state, config) is export-state.ts's decision. Every non-tensor item is our own pickle of a value
// checked to be plain data (items.ts), never bytes passed through.
// Everything goes to `<out>.tmp-<pid>` and is renamed into place last: a failure leaves no output.
import { closeSync, fsyncSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { paramSpecs } from "../../model/params.ts";
import { bytesOf } from "../../tensor/dtype.ts";
import { type DcpItemOut, writeDcpMetadata } from "./dcp-metadata.ts";
import { type StagedDir, fsyncPath, stageOutputDir } from "../../output-dir.ts";
import { Scratch } from "../io.ts";
import { NativeReader } from "../native/read.ts";
import type { OlmoCoreRunSettings } from "./config.ts";
import { exportState, originOf } from "./export-state.ts";
import type { OlmoCoreOrigin } from "./import.ts";
import { dcpKey } from "./read.ts";
import { olmoCoreName, olmoCoreOrder } from "./names.ts";
import { writeOlmoCoreTrainState } from "./train-state.ts";
import { type TorchDType, writePickleArchive, writeTensorArchive } from "../torch/torch-save.ts";
import { plainPickle } from "../torch/plain-data.ts";
import { type KeptItem, checkKeptItem, derivedPath, keptValue } from "./items.ts";
import type { OnProgress } from "../source.ts";

export interface ExportOlmoCoreOptions {
  /** the run that trained the checkpoint, as OLMo-core sees it (none for an import not trained since) */
  run?: OlmoCoreRunSettings;
  onProgress?: OnProgress;
}

/** The OLMo-core version whose checkpoint layout this writes (src/olmo_core/version.py at d7301e62). */
const OLMO_CORE_VERSION = "1.8.0";
const DISTCP = "__0_0.distcp";

/**
 * The kept items of an origin. Native checkpoints imported before items were kept carry `byteItems`
 * (fqn → the item's pickle as it came): those pass the plain-data rule and are pickled anew.
 */
function originItems(origin: OlmoCoreOrigin | undefined, names: Set<string>, where: string): KeptItem[] {
  if (!origin) return [];
  const legacy = (origin as { byteItems?: unknown }).byteItems;
  if (!origin.items && legacy && typeof legacy === "object") {
    return Object.entries(legacy).map(([fqn, b64]) => {
      const { value } = plainPickle(Buffer.from(String(b64), "base64"), `${where}: item ${fqn}`);
      return keptValue(fqn, derivedPath(fqn, names), value);
    });
  }
  return Array.isArray(origin.items) ? origin.items : [];
}

export function exportOlmoCore(ckpt: string, out: string, opts: ExportOlmoCoreOptions = {}): { items: number; bytes: number; optimizer: boolean } {
  const r = new NativeReader(ckpt);
  let stage: StagedDir | null = null;
  let fd = -1;
  try {
    r.checkFileSizes();
    const meta = r.meta;
    const ps = paramSpecs(meta.model);
    const withOptim = ps.every((s) => r.has("adam_m", s.name) && r.has("adam_v", s.name));
    const ts = (meta.trainState ?? {}) as Record<string, any>;
    const names = olmoCoreOrder(ps.map((s) => s.name));
    // decided (and checked) before anything is written
    const state = exportState(meta, names, withOptim, opts.run, originItems(originOf(meta), new Set(names), ckpt), ckpt);
    const extra = state.items.map((it) => checkKeptItem(it, ckpt));
    // written under a temporary sibling and published with one rename (output-dir.ts)
    stage = stageOutputDir(out, "export-olmo-core");
    const tmp = stage.dir;
    mkdirSync(join(tmp, "model_and_optim"), { recursive: true });
    mkdirSync(join(tmp, "train"));
    fd = openSync(join(tmp, "model_and_optim", DISTCP), "w");
    const items: DcpItemOut[] = [];
    let pos = 0;
    const scratch = new Scratch();
    const total = ps.reduce((a, s) => a + s.numel, 0) * 4 * (withOptim ? 3 : 1);
    let done = 0;
    const putTensor = (fqn: string, path: (string | number)[], shape: number[], data: Float32Array) => {
      const len = writeTensorArchive(fd, pos, "f32", shape, [bytesOf(data)]);
      items.push({ fqn, tensor: { dtype: "f32", size: shape }, storage: { relativePath: DISTCP, offset: pos, length: len }, path });
      pos += len;
      done += data.byteLength;
      opts.onProgress?.(done, total);
    };
    const putRaw = (fqn: string, path: (string | number)[], dtype: TorchDType, shape: number[], bytes: Uint8Array) => {
      const len = writeTensorArchive(fd, pos, dtype, shape, [bytes]);
      items.push({ fqn, tensor: { dtype, size: shape }, storage: { relativePath: DISTCP, offset: pos, length: len }, path });
      pos += len;
    };
    const putPickle = (fqn: string, path: (string | number)[], pkl: Uint8Array) => {
      const len = writePickleArchive(fd, pos, pkl);
      items.push({ fqn, storage: { relativePath: DISTCP, offset: pos, length: len }, path });
      pos += len;
    };
    for (const s of ps) {
      const buf = scratch.f32(s.numel);
      r.read("model", s.name, buf);
      putTensor(dcpKey("model", olmoCoreName(s.name)), ["model", olmoCoreName(s.name)], s.shape, buf);
    }
    if (withOptim) {
      const counters = meta.optim?.step ?? {};
      const fallback = typeof ts.adamStep === "number" ? ts.adamStep : 0;
      for (const s of ps) {
        const oc = olmoCoreName(s.name);
        for (const [g, field] of [["adam_m", "exp_avg"], ["adam_v", "exp_avg_sq"]] as const) {
          const buf = scratch.f32(s.numel);
          r.read(g, s.name, buf);
          putTensor(dcpKey(g, oc), ["optim", "state", oc, field], s.shape, buf);
        }
        const step = Float32Array.of(counters[s.name] ?? fallback);
        putTensor(dcpKey("step", oc), ["optim", "state", oc, "step"], [], step);
      }
    }
    for (const it of extra) "pickle" in it ? putPickle(it.fqn, it.path, it.pickle) : putRaw(it.fqn, it.path, it.dtype, it.shape, it.bytes);
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    const metaPath = join(tmp, "model_and_optim", ".metadata");
    writeFileSync(metaPath, writeDcpMetadata(items));
    fsyncPath(metaPath);
    writeFileSync(join(tmp, "config.json"), JSON.stringify(state.config, null, 2) + "\n");
    writeOlmoCoreTrainState(join(tmp, "train", "rank0.pt"), state.trainState);
    writeFileSync(join(tmp, ".metadata.json"), JSON.stringify({ version: OLMO_CORE_VERSION }) + "\n");
    // the subfolders' files and entries too (commit syncs the top level)
    for (const f of ["train/rank0.pt", "train", "model_and_optim"]) fsyncPath(join(tmp, f));
    stage.commit();
    return { items: items.length, bytes: pos, optimizer: withOptim };
  } catch (e) {
    if (fd >= 0) closeSync(fd);
    stage?.abort();
    throw e;
  } finally {
    r.close();
  }
}

