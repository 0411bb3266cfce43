// The native checkpoint's index types: what metadata.msgpack records about each tensor and its
// slices, and the optimizer state that is not a tensor arena. A leaf of the format: the writer,
// the metadata codec, the validation and the reader all import it, and it imports nothing of theirs.
import type { ModelConfig } from "../../model/config.ts";
import type { Lz4Info } from "../codec.ts";

export type Group = "model" | "adam_m" | "adam_v";
export interface SliceEntry {
  rank: number;
  /** [start, end) per dimension of the logical tensor */
  ranges: [number, number][];
  file: string;
  offset: number;
  /** stored bytes (compressed length when lz4) */
  length: number;
  crc32: number;
  lz4?: Lz4Info;
  /** uncompressed slices: crc32 of each `blockBytes` block of the stored bytes, so a ranged read
   *  (one rank's part of a tensor) verifies exactly the blocks it reads */
  blockBytes?: number;
  blockCrc32?: number[];
}

/** Elements in a slice's rectangle ([start, end) per dimension). */
export function regionNumel(ranges: [number, number][]): number {
  return ranges.reduce((x, [a, b]) => x * (b - a), 1);
}

/** Elements the slices of a tensor hold together (its element count when they tile it). */
export function slicesNumel(t: TensorEntry): number {
  return t.slices.reduce((a, sl) => a + regionNumel(sl.ranges), 0);
}

export interface TensorEntry {
  name: string;
  group: Group;
  shape: number[];
  dtype: "f32";
  slices: SliceEntry[];
}

/**
 * Optimizer state that is not a tensor arena: AdamW's step counter per tensor (HF name → count;
 * OLMo-core keeps one per parameter, `optim.state.<name>.step`) and the skip-step rule's history.
 * Checkpoints written before it existed carry `trainState.adamStep` (one counter for all tensors).
 */
export interface OptimMeta {
  step: Record<string, number>;
  /** SkipStepAdamW's rolling window: the previous CE losses and pre-clip gradient norms, oldest first */
  skipHistory?: { losses: number[]; gradNorms: number[] };
}

export interface CheckpointMeta {
  format: string;
  version: number;
  name: string;
  createdAt: string;
  model: ModelConfig;
  runConfig: unknown;
  trainState: Record<string, unknown>;
  dataCursor: unknown;
  rng: unknown;
  /** optimizer state beyond the moments (absent in checkpoints without optimizer state) */
  optim?: OptimMeta;
  /** parallel layout that wrote the slices */
  layout: { world: number; tp: number; dp: number };
  tensors: TensorEntry[];
}
