// Opening any checkpoint as a tensor source, streaming copy (export/import), and souping:
// out = Σ w_i · ckpt_i, tensor by tensor, accumulated in fp32 (as OLMo-core's merge scripts).
// Memory: one accumulator and one read buffer, each the size of the largest tensor, plus the
// sink's conversion buffer — never the model.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.ts";
import { type ModelConfig, paddedVocab } from "../model/config.ts";
import { HfSource } from "./hf/folder.ts";
import { Scratch } from "./io.ts";
import { NativeSource } from "./native/read.ts";
import { METADATA_FILE } from "./naming.ts";
import { OlmoCoreSource } from "./olmo-core/import.ts";
import { isOlmoCoreCheckpoint } from "./olmo-core/read.ts";
import { type OnProgress, type TensorSink, type TensorSource, configMismatch } from "./source.ts";

/** A native checkpoint directory (metadata.msgpack), an OLMo-core step folder (model_and_optim/.metadata) or an HF folder (config.json + safetensors). */
export function openSource(path: string): TensorSource {
  if (!existsSync(path)) throw new UserError(`checkpoint not found: ${path}`);
  if (!statSync(path).isDirectory()) throw new UserError(`${path}: expected a checkpoint directory (native or Hugging Face)`);
  if (existsSync(join(path, METADATA_FILE))) return new NativeSource(path);
  if (isOlmoCoreCheckpoint(path)) return new OlmoCoreSource(path);
  if (existsSync(join(path, "config.json"))) return new HfSource(path);
  // Neither: let the native reader explain (it recognises an interrupted save).
  return new NativeSource(path);
}

/**
 * Weights of any checkpoint (native or HF) as one fp32 arena in paramSpecs order, plus the native
 * train state when there is one: what `checkpoint.loadPath` with loadTrainerState false needs.
 */
export function loadModelWeights(path: string, onProgress?: OnProgress): { config: ModelConfig; params: Float32Array; kind: TensorSource["kind"]; trainState: Record<string, unknown> } {
  const src = openSource(path);
  try {
    const params = new Float32Array(src.specs.reduce((a, s) => a + s.numel, 0));
    let done = 0;
    for (const s of src.specs) {
      src.read(s.name, params.subarray(s.offset, s.offset + s.numel));
      done += s.numel * 4;
      onProgress?.(done, params.byteLength);
    }
    return { config: src.config, params, kind: src.kind, trainState: src.trainState };
  } finally {
    src.close();
  }
}

function modelBytes(src: TensorSource): number {
  return src.specs.reduce((a, s) => a + s.numel * 4, 0);
}

/** Run `fill` then publish the sink; on any failure the sink's partial output is removed. */
function finishOrAbort(sink: TensorSink, fill: () => void): string {
  try {
    fill();
    return sink.finish();
  } catch (e) {
    sink.abort();
    throw e;
  }
}

/** Stream every model tensor of `src` into `sink` (export-hf, import-hf); nothing is left on failure. */
export function copyModel(src: TensorSource, sink: TensorSink, onProgress?: OnProgress): string {
  const scratch = new Scratch();
  const total = modelBytes(src);
  let done = 0;
  return finishOrAbort(sink, () => {
    for (const s of src.specs) {
      const buf = scratch.f32(s.numel);
      src.read(s.name, buf);
      sink.write(s.name, buf);
      done += s.numel * 4;
      onProgress?.(done, total);
    }
  });
}

/** Normalized soup weights: uniform by default; given ones must be finite, ≥ 0, with a positive sum. */
export function soupWeights(n: number, given?: number[]): number[] {
  if (!given) return Array.from({ length: n }, () => 1 / n);
  if (given.length !== n) throw new UserError(`soup: ${given.length} weights for ${n} checkpoints`);
  if (given.some((w) => !Number.isFinite(w) || w < 0)) throw new UserError(`soup: weights must be finite and >= 0, got ${given.join(",")}`);
  const sum = given.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) throw new UserError("soup: the weights sum to 0");
  return given.map((w) => w / sum);
}

/** Refuse to average models that are not the same architecture, naming the field or tensor. */
export function checkSoupable(sources: TensorSource[]): void {
  if (sources.length < 2) throw new UserError(`soup: needs at least 2 checkpoints, got ${sources.length} (a soup of one is a copy)`);
  const [a] = sources;
  for (const b of sources.slice(1)) {
    const diff = configMismatch(a.config, b.config, paddedVocab);
    if (diff) throw new UserError(`soup: ${b.path} does not match ${a.path}: ${diff}`);
    for (const [i, s] of a.specs.entries()) {
      const t = b.specs[i];
      if (!t || t.name !== s.name || t.shape.join(",") !== s.shape.join(",")) {
        throw new UserError(`soup: tensor ${s.name} has shape [${s.shape}] in ${a.path} but ${t ? `${t.name} [${t.shape}]` : "nothing"} in ${b.path}`);
      }
    }
  }
}

/** out = Σ w_i · src_i, tensor by tensor, into `sink`. Returns the sink's output path. */
export function soup(sources: TensorSource[], sink: TensorSink, weights?: number[], onProgress?: OnProgress): string {
  return finishOrAbort(sink, () => soupInto(sources, sink, weights, onProgress));
}

function soupInto(sources: TensorSource[], sink: TensorSink, weights?: number[], onProgress?: OnProgress): void {
  checkSoupable(sources);
  const w = soupWeights(sources.length, weights);
  const accS = new Scratch(), readS = new Scratch();
  const specs = sources[0].specs;
  const total = modelBytes(sources[0]) * sources.length;
  let done = 0;
  for (const s of specs) {
    const acc = accS.f32(s.numel), x = readS.f32(s.numel);
    for (let k = 0; k < sources.length; k++) {
      sources[k].read(s.name, x);
      const wk = w[k];
      // Float32Array stores round each partial sum to fp32: the accumulation is fp32 by construction.
      if (k === 0) for (let i = 0; i < x.length; i++) acc[i] = wk * x[i];
      else for (let i = 0; i < x.length; i++) acc[i] += wk * x[i];
      done += s.numel * 4;
      onProgress?.(done, total);
    }
    sink.write(s.name, acc);
  }
}
