// The two streaming interfaces every whole-model tool is built from (export, import, soup, info):
// a source hands out one named model tensor at a time as f32; a sink takes them in paramSpecs
// order. Neither ever holds the model, so memory stays bounded by the largest tensor.
import type { ModelConfig } from "../model/config.ts";
import type { ParamSpec } from "../model/params.ts";

export interface TensorSource {
  readonly path: string;
  readonly kind: "native" | "hf" | "olmo-core";
  readonly config: ModelConfig;
  /** paramSpecs(config): names, shapes and arena offsets */
  readonly specs: ParamSpec[];
  /** Train state recorded with the weights (native checkpoints), else {} */
  readonly trainState: Record<string, unknown>;
  /** Decode model tensor `name` into `out` (exactly its element count); verifies checksums where stored. */
  read(name: string, out: Float32Array): void;
  close(): void;
}

export interface TensorSink {
  /** Tensors arrive in paramSpecs order. */
  write(name: string, data: Float32Array): void;
  /** Flush, fsync, publish; returns the output path. */
  finish(): string;
  /** A failed copy: remove what was written (nothing is published). */
  abort(): void;
}

/** Progress callback for long work: bytes done of total. */
export type OnProgress = (doneBytes: number, totalBytes: number) => void;

/** The config fields that decide tensor shapes and the math; souping across a difference is refused. */
export function configMismatch(a: ModelConfig, b: ModelConfig, pad: (m: ModelConfig) => number): string | null {
  const fields: [string, (m: ModelConfig) => number][] = [
    ["dModel", (m) => m.dModel], ["nLayers", (m) => m.nLayers], ["nHeads", (m) => m.nHeads], ["nKvHeads", (m) => m.nKvHeads],
    ["ffnHidden", (m) => m.ffnHidden], ["padded vocab", pad], ["ropeTheta", (m) => m.ropeTheta], ["normEps", (m) => m.normEps],
  ];
  for (const [name, get] of fields) if (get(a) !== get(b)) return `${name} ${get(a)} vs ${get(b)}`;
  return null;
}
