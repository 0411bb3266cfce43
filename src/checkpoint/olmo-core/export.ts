// Native checkpoint → OLMo-core step folder that torch.distributed.checkpoint.load and OLMo-core's
// load_model_and_optim_state / Trainer.load_checkpoint accept:
//   model_and_optim/__0_0.distcp   one torch.save blob per item (fp32 whole tensors, one chunk each,
//                                  as a one-rank save writes them), then the pickled non-tensor items
//   model_and_optim/.metadata      pickled Metadata (dcp-metadata.ts), written after the data
//   train/rank0.pt                 trainer state (train-state.ts)
//   config.json                    the experiment config (the imported one, else a minimal one)
//   .metadata.json                 OLMo-core's CheckpointMetadata; Checkpointer.dir_is_checkpoint
//                                  requires it with the other two (train/checkpoint.py at d7301e62)
// Optimizer items follow OLMo-core's unflattened optimizer state dict: optim.state.<name>.{exp_avg,
// exp_avg_sq, step} and optim.param_groups.<i>.<field> for the two groups OLMo-2 builds (the
// embedding without weight decay first, then the rest: optim/config.py build_groups at d7301e62).
// DCP loads only the keys the loading optimizer asks for, so the extra initial_lr is harmless.
// Everything goes to `<out>.tmp-<pid>` and is renamed into place last: a failure leaves no output.
import { closeSync, fsyncSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../../errors.ts";
import { paramSpecs } from "../../model/params.ts";
import { bytesOf } from "../../tensor/dtype.ts";
import { type DcpItemOut, writeDcpMetadata } from "./dcp-metadata.ts";
import { type StagedDir, fsyncPath, stageOutputDir } from "../../output-dir.ts";
import { Scratch } from "../io.ts";
import { NativeReader } from "../native/read.ts";
import { olmoCoreConfigJson } from "./config.ts";
import type { OlmoCoreOrigin } from "./import.ts";
import { dcpKey } from "./read.ts";
import { olmoCoreName } from "./names.ts";
import { type OlmoCoreDataLoaderState, type OlmoCoreTrainState, writeOlmoCoreTrainState } from "./train-state.ts";
import { type LoaderState, isOlmoCoreCursor } from "../../data/loader.ts";
import { PyFloat, PyTuple, type PyValue } from "../torch/pickle-read.ts";
import { pickle } from "../torch/pickle-write.ts";
import { writePickleArchive, writeTensorArchive } from "../torch/torch-save.ts";
import type { OnProgress } from "../source.ts";

/** The AdamW hyperparameters written into the param groups (a checkpoint that came from OLMo-core keeps its own). */
export interface ParamGroupValues {
  /** the learning rate at the checkpoint's step */
  lr: number;
  /** the schedule's peak (OLMo-core's initial_lr) */
  initialLr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

export interface ExportOlmoCoreOptions {
  paramGroups?: ParamGroupValues;
  onProgress?: OnProgress;
}

/** The OLMo-core version whose checkpoint layout this writes (src/olmo_core/version.py at d7301e62). */
const OLMO_CORE_VERSION = "1.8.0";
const DISTCP = "__0_0.distcp";

function paramGroupItems(names: string[], g: ParamGroupValues): [string, (string | number)[], PyValue][] {
  const groups = [
    { weight_decay: 0, params: names.slice(0, 1) }, // embeddings.weight: no weight decay (OLMo-2)
    { weight_decay: g.weightDecay, params: names.slice(1) },
  ];
  const out: [string, (string | number)[], PyValue][] = [];
  groups.forEach((grp, i) => {
    const fields: [string, PyValue][] = [
      ["weight_decay", new PyFloat(grp.weight_decay)], ["lr", new PyFloat(g.lr)], ["betas", new PyTuple(g.betas.map((b) => new PyFloat(b)))],
      ["eps", new PyFloat(g.eps)], ["foreach", null], ["fused", null], ["initial_lr", new PyFloat(g.initialLr)], ["params", grp.params],
    ];
    for (const [k, v] of fields) out.push([`optim.param_groups.${i}.${k}`, ["optim", "param_groups", i, k], v]);
  });
  return out;
}

/** The DCP path of a stored byte item from its key (planner_data: param groups index by number when unflattened). */
function bytePath(fqn: string, names: Set<string>): (string | number)[] {
  const rest = fqn.slice("optim.param_groups.".length);
  const last = rest.lastIndexOf(".");
  const group = rest.slice(0, last), field = rest.slice(last + 1);
  if (!fqn.startsWith("optim.param_groups.") || last < 0) return fqn.split(".");
  return ["optim", "param_groups", names.has(group) ? group : /^\d+$/.test(group) ? Number(group) : group, field];
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
    const origin = ts.olmoCore as OlmoCoreOrigin | undefined;
    if (withOptim && !origin && !opts.paramGroups) throw new UserError(`export-olmo-core: ${ckpt} has optimizer state but no optimizer settings to write its param groups from`);
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
      const names = ps.map((s) => olmoCoreName(s.name));
      if (origin && Object.keys(origin.byteItems).length) {
        const nameSet = new Set(names);
        for (const [fqn, b64] of Object.entries(origin.byteItems)) putPickle(fqn, bytePath(fqn, nameSet), Buffer.from(b64, "base64"));
      } else {
        for (const [fqn, path, v] of paramGroupItems(names, opts.paramGroups!)) putPickle(fqn, path, pickle(v));
      }
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    const metaPath = join(tmp, "model_and_optim", ".metadata");
    writeFileSync(metaPath, writeDcpMetadata(items));
    fsyncPath(metaPath);
    const dataSeed = origin?.trainer?.dataLoader?.seed ?? (meta.dataCursor as { seed?: number } | null)?.seed ?? null;
    writeFileSync(join(tmp, "config.json"), JSON.stringify(origin?.config ?? olmoCoreConfigJson(meta.model, dataSeed), null, 2) + "\n");
    writeOlmoCoreTrainState(join(tmp, "train", "rank0.pt"), trainStateFor(meta.trainState ?? {}, meta.dataCursor, origin));
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

/**
 * The trainer state to write: the imported one's fields with our step, tokens and data position.
 * The position is OLMo-core's per-epoch count (its loader resets at each epoch): from an imported
 * cursor as it was, or from ours (global batches) with the epoch length it records; the dataset
 * fingerprint is OLMo-core's ("v1.1", which OLMo-core verifies) when our loader recorded it.
 */
function trainStateFor(ts: Record<string, unknown>, cursor: unknown, origin: OlmoCoreOrigin | undefined): OlmoCoreTrainState {
  const step = typeof ts.step === "number" ? ts.step : 0;
  const tokens = typeof ts.tokensProcessed === "number" ? ts.tokensProcessed : 0;
  const base = origin?.trainer;
  const dl = base?.dataLoader ?? null;
  const pos = olmoCorePosition(cursor);
  const dataLoader: OlmoCoreDataLoaderState | null = pos
    ? { datasetType: "fsl", sequenceLength: null, maxTargetSequenceLength: null, ...(dl ?? {}), ...pos }
    : dl;
  return { step, tokensSeen: tokens, maxSteps: base?.maxSteps ?? null, epoch: pos?.epoch ?? base?.epoch ?? 1, worldSize: base?.worldSize ?? 1, dataLoader };
}

type Position = Pick<OlmoCoreDataLoaderState, "seed" | "epoch" | "batchesProcessed" | "tokensProcessed" | "fingerprint" | "fingerprintVersion">;

function olmoCorePosition(cursor: unknown): Position | null {
  if (isOlmoCoreCursor(cursor)) {
    const c = cursor.olmoCore;
    return { seed: c.seed, epoch: c.epoch, batchesProcessed: c.batchesProcessed, tokensProcessed: c.tokensProcessed, fingerprint: c.fingerprint, fingerprintVersion: c.fingerprintVersion };
  }
  const c = cursor as Partial<LoaderState> | null;
  if (!c || typeof c.seed !== "number" || typeof c.batchesProcessed !== "number" || typeof c.tokensProcessed !== "number") return null;
  const epoch = c.epoch ?? 1;
  // batches into the current epoch; without the epoch length (older checkpoints) only epoch 1 is exact
  const within = c.batchesPerEpoch ? c.batchesProcessed - (epoch - 1) * c.batchesPerEpoch : c.batchesProcessed;
  const batchTokens = c.batchesProcessed > 0 ? c.tokensProcessed / c.batchesProcessed : 0;
  return { seed: c.seed, epoch, batchesProcessed: within, tokensProcessed: within * batchTokens,
    fingerprint: c.olmoCoreFingerprint ?? c.fingerprint ?? "", fingerprintVersion: c.olmoCoreFingerprint ? "v1.1" : "olmo-bun" };
}
