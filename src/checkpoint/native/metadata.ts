// metadata.msgpack: the index of a native checkpoint (see write.ts), encoded with its own checksum.
// Version 2 is {format, version, crc32, meta: <bytes>}: the index packed as plain msgpack inside and
// its crc32 beside it, so one flipped byte anywhere in the file is refused instead of silently
// resuming into another state. Version 1 (the index map itself, no checksum) is still read, and
// fully validated (validate.ts) like version 2.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Packr } from "msgpackr";
import { UserError } from "../../errors.ts";
import { type ModelConfig, ModelConfigSchema } from "../../model/config.ts";
import { checksum } from "../io.ts";
import type { CheckpointMeta } from "./format.ts";
import { METADATA_FILE } from "../naming.ts";
import { type CheckpointNeeds, claimsOptimizer, validateCheckpoint } from "./validate.ts";

export const FORMAT = "olmo-bun-checkpoint";
export const FORMAT_VERSION = 2;
const READ_VERSIONS = [1, 2];

/** Plain msgpack maps (no msgpackr records), so other tools (Python msgpack) can read the metadata. */
export const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/**
 * A plain copy for msgpack, as JSON would make it (no undefined fields, objects via toJSON, no
 * functions) but keeping NaN and ±Infinity, which JSON turns into null: the skip rule's history
 * holds them after a diverged step, a config may hold maxGradNorm Infinity, and msgpack's float64
 * carries them exactly.
 */
export function plainForMsgpack(v: unknown): unknown {
  if (v === null || typeof v === "number" || typeof v === "string" || typeof v === "boolean") return v;
  if (typeof v === "bigint") return Number(v);
  if (Array.isArray(v)) return v.map((x) => (x === undefined || typeof x === "function" ? null : plainForMsgpack(x)));
  if (typeof v === "object") {
    const j = (v as { toJSON?: () => unknown }).toJSON;
    if (typeof j === "function") return plainForMsgpack(j.call(v));
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (x !== undefined && typeof x !== "function") out[k] = plainForMsgpack(x);
    return out;
  }
  return null;
}

/** metadata.msgpack bytes of version 2: the index packed, wrapped with its crc32. */
export function encodeMetadata(meta: CheckpointMeta): Uint8Array {
  const body = packr.pack(plainForMsgpack(meta));
  return packr.pack({ format: FORMAT, version: FORMAT_VERSION, crc32: checksum(body), meta: body });
}

/** The first line of a decoder's complaint, kept short (msgpackr quotes the data it read). */
function why(e: unknown): string {
  const m = String((e as Error)?.message ?? e).split("\n")[0];
  return m.length > 80 ? `${m.slice(0, 77)}...` : m;
}

/** Decode metadata.msgpack (either version) to the unvalidated index; one-line errors. */
export function decodeMetadata(bytes: Uint8Array, mp: string): unknown {
  let outer: any;
  try {
    outer = packr.unpack(bytes);
  } catch (e) {
    throw new UserError(`${mp}: corrupt metadata (${why(e)})`);
  }
  if (typeof outer !== "object" || outer === null || outer.format !== FORMAT) throw new UserError(`${mp}: not an olmo-bun checkpoint metadata file`);
  if (!READ_VERSIONS.includes(outer.version)) {
    throw new UserError(`${mp}: checkpoint format version ${String(outer.version).slice(0, 20)} is not supported (this olmo reads versions ${READ_VERSIONS.join(" and ")}); use a matching olmo`);
  }
  if (outer.version === 1) return outer;
  if (!(outer.meta instanceof Uint8Array) || !Number.isInteger(outer.crc32)) throw new UserError(`${mp}: corrupt metadata (no checksummed index)`);
  const crc = checksum(outer.meta);
  if (crc !== outer.crc32) {
    throw new UserError(`${mp}: checksum mismatch in the metadata: stored crc32 ${(outer.crc32 >>> 0).toString(16)}, computed ${crc.toString(16)} (the file is corrupt)`);
  }
  let meta: any;
  try {
    meta = packr.unpack(outer.meta);
  } catch (e) {
    throw new UserError(`${mp}: corrupt metadata (${why(e)})`);
  }
  if (typeof meta !== "object" || meta === null || meta.format !== FORMAT || meta.version !== outer.version) {
    throw new UserError(`${mp}: corrupt metadata (the checksummed index is not version ${outer.version})`);
  }
  return meta;
}

export interface ReadMetaOptions {
  /** the model the tensors must match (default: the stored config; a resume passes the run's) */
  model?: ModelConfig;
  /** what the caller will load (default: what the checkpoint claims to hold) */
  needs?: CheckpointNeeds;
}

/**
 * Read, checksum-verify and fully validate a checkpoint's metadata (validate.ts): one-line errors
 * for incomplete, foreign, newer, corrupt or inconsistent ones.
 */
export function readCheckpointMeta(path: string, opts: ReadMetaOptions = {}): CheckpointMeta {
  if (!existsSync(path)) throw new UserError(`checkpoint not found: ${path}`);
  const mp = join(path, METADATA_FILE);
  if (!existsSync(mp)) {
    const hint = existsSync(join(path, "model.rank0.bin")) ? " (an incomplete save: the process stopped before the metadata was written)" : "";
    throw new UserError(`${path}: not a checkpoint: no ${METADATA_FILE}${hint}`);
  }
  const m = decodeMetadata(readFileSync(mp), mp) as Record<string, unknown>;
  const parsed = ModelConfigSchema.safeParse(m.model);
  if (!parsed.success) throw new UserError(`${mp}: stored model config is invalid: ${parsed.error.issues[0]?.message}`);
  m.model = parsed.data;
  return validateCheckpoint(m, path, opts.model ?? parsed.data, opts.needs ?? { optimizer: claimsOptimizer(m) });
}
