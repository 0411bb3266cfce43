// What the training thread and the save worker (src/workers.ts names its entry file) share: the
// job of one save and the status word. Status: Int32Array [state, unused] on a SharedArrayBuffer, then UTF-8 text (the
// published path, or the error) — the training thread polls it between steps and Atomics.waits on
// it, since it runs no event loop while it trains.
import type { CheckpointMeta, Group } from "../../checkpoint/native/format.ts";
import type { ModelConfig } from "../../model/config.ts";
import type { EphemeralSaves } from "../../checkpoint/naming.ts";

export const STATUS = { idle: 0, busy: 1, done: 2, failed: 3, ready: 4 } as const;
export const STATUS_BYTES = 8 + 4096;

export interface SaveRegion {
  group: Group;
  name: string;
  ranges: [number, number][];
  /** offset (floats) in the pool and element count */
  at: number;
  length: number;
}

export interface SaveJob {
  step: number;
  finalPath: string;
  tmp: string;
  runDir: string;
  model: ModelConfig;
  rank: number;
  /** rank 0: waits for the other ranks' parts, writes the metadata, renames, prunes */
  main: boolean;
  parts: { world: number; tp: number; dp: number } | null;
  partsTimeoutMs: number;
  keep: number;
  /** checkpoint.ephemeralInterval, for pruning (naming.ts) */
  ephemeral?: EphemeralSaves;
  compress: boolean;
  meta: Partial<Pick<CheckpointMeta, "runConfig" | "trainState" | "dataCursor" | "optim">>;
  regions: SaveRegion[];
}

export function writeStatus(status: Int32Array, text: Uint8Array, state: number, message: string): void {
  const bytes = new TextEncoder().encode(message).subarray(0, text.length - 4);
  new DataView(text.buffer, text.byteOffset).setUint32(0, bytes.length, true);
  text.set(bytes, 4);
  Atomics.store(status, 0, state);
  Atomics.notify(status, 0);
}

export function readStatusText(text: Uint8Array): string {
  const n = new DataView(text.buffer, text.byteOffset).getUint32(0, true);
  return new TextDecoder().decode(text.slice(4, 4 + n));
}
