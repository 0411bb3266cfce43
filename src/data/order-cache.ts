// The epoch-order cache. OLMo-core caches each epoch's global instance order in its work_dir as
// raw little-endian uint32 (np.memmap, no .npy header despite the name), under two names:
//   d7301e62 (the OLMo-2 32B code): global_indices[_chunk{c}]_epoch{e}_seed{s}_size{T}.npy holding
//     the first T = instances-per-batch × batches entries (the tail already dropped)
//   since 1acde9dd (May 2025):       global_indices[_chunk{c}]_dataset_size{N}_epoch{e}_seed{s}_v1.npy
//     holding the whole (chunk-expanded) order of the N instances
// (allenai/OLMo-core src/olmo_core/data/data_loader.py, NumpyFSLDataLoader._global_indices_file /
// _build_global_indices; fields sorted by _format_fname_from_fields, chunk omitted when 1). We read
// either when it is there and its size is right and its tail is the order we would compute: the
// last entries of a Fisher-Yates shuffle are final after its first few steps, so a few thousand
// PCG64 draws check the file (orderTail), far cheaper than the shuffle. We write our own file under
// a distinct name (olmo-bun-order_…), so OLMo-core never mistakes ours for its own and we never
// trust a file by its name alone.
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { mapFileReadOnly } from "../native/map-file.ts";
import { writeFileAtomic } from "../output-dir.ts";
import { PCG64, randomInterval } from "./pcg64.ts";

export interface OrderKey {
  /** instances in the dataset (a multiple of chunk) */
  numInstances: number;
  chunk: number;
  epoch: number;
  seed: number;
  /** entries a training epoch uses (whole global batches) */
  used: number;
}

/** Final values of positions [from, n) of numpy's shuffle of arange(n) under PCG64(seed + epoch). */
export function orderTail(n: number, seed: number, epoch: number, from: number): Uint32Array {
  const rng = new PCG64(seed + epoch);
  const moved = new Map<number, number>();
  const at = (i: number) => moved.get(i) ?? i;
  for (let i = n - 1; i >= Math.max(from, 1); i--) {
    const j = randomInterval(rng, i);
    const vi = at(i), vj = at(j);
    moved.set(i, vj);
    moved.set(j, vi);
  }
  return Uint32Array.from({ length: Math.max(0, n - from) }, (_, k) => at(from + k));
}

const CHECK_CHUNKS = 16;

/** The file's last whole chunks equal the order's: entries [len - k·chunk, len) of the expanded order. */
function tailMatches(idx: Uint32Array, k: OrderKey): boolean {
  const nChunks = k.numInstances / k.chunk, fileChunks = Math.floor(idx.length / k.chunk);
  const from = Math.max(0, fileChunks - CHECK_CHUNKS);
  const tail = orderTail(nChunks, k.seed, k.epoch, from);
  for (let p = from; p < fileChunks; p++) {
    for (let q = 0; q < k.chunk; q++) if (idx[p * k.chunk + q] !== tail[p - from] * k.chunk + q) return false;
  }
  return true;
}

function mapFile(path: string, entries: number): Uint32Array | null {
  if (!existsSync(path) || statSync(path).size !== entries * 4) return null;
  const bytes = mapFileReadOnly(path); // OLMo-core's work_dir may be another user's, or read-only
  return new Uint32Array(bytes.buffer, bytes.byteOffset, entries);
}

export function olmoCoreOrderFiles(k: OrderKey): { name: string; entries: number }[] {
  const c = k.chunk > 1 ? `_chunk${k.chunk}` : "";
  return [
    { name: `global_indices${c}_epoch${k.epoch}_seed${k.seed}_size${k.used}.npy`, entries: k.used },
    { name: `global_indices${c}_dataset_size${k.numInstances}_epoch${k.epoch}_seed${k.seed}_v1.npy`, entries: k.numInstances },
  ];
}

export function ownOrderFile(k: OrderKey): string {
  return `olmo-bun-order_chunk${k.chunk}_epoch${k.epoch}_seed${k.seed}_instances${k.numInstances}.u32`;
}

/** The cached order's first `used` entries (OLMo-core's file, else ours), or null when none checks out. */
export function readCachedOrder(dir: string, k: OrderKey): Uint32Array | null {
  for (const f of [...olmoCoreOrderFiles(k), { name: ownOrderFile(k), entries: k.used }]) {
    const idx = mapFile(join(dir, f.name), f.entries);
    if (idx && tailMatches(idx, k)) return idx.subarray(0, k.used);
  }
  return null;
}

/** Write our cache file atomically (temp name, then rename). */
export function writeCachedOrder(dir: string, k: OrderKey, idx: Uint32Array): void {
  mkdirSync(dir, { recursive: true });
  const used = idx.subarray(0, k.used);
  writeFileAtomic(join(dir, ownOrderFile(k)), new Uint8Array(used.buffer, used.byteOffset, used.byteLength), "data order cache");
}
