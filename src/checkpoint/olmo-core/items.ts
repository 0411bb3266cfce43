// The items of an OLMo-core checkpoint beyond the model and the Adam state (`model.*` and
// `optim.state.*`): what DCP saved of the optimizer's param groups (`optim.param_groups.<i>.<field>`,
// or `.<name>.<field>` when flattened). They are kept as they were — a tensor item (OLMo-core's
// `lr` under `compile=True`: optim/config.py OptimConfig.build at d7301e62 makes it a 0-d tensor)
// with its dtype, shape and bytes, a non-tensor item as its value — and written back with the same
// metadata kind, so OLMo-core loads an export of an import exactly as it saved it. A value must be
// plain data (../torch/plain-data.ts): it is stored and written as our own pickle of the checked
// value, never as the bytes that came in.
import { UserError } from "../../errors.ts";
import { f32ToBf16 } from "../../tensor/dtype.ts";
import type { PyValue } from "../torch/pickle-read.ts";
import { plainPickle } from "../torch/plain-data.ts";
import { pickle } from "../torch/pickle-write.ts";
import { DTYPE_BYTES, TORCH_DTYPE, type TorchDType } from "../torch/torch-save.ts";

/** A kept tensor item is small (a 0-d lr is 4 bytes); anything larger is not a param-group field. */
export const MAX_KEPT_TENSOR_BYTES = 65536;

export type ItemPath = (string | number)[];

export interface KeptValue {
  fqn: string;
  path: ItemPath;
  /** base64 of our pickle (protocol 2) of the checked plain value */
  pickle: string;
}

export interface KeptTensor {
  fqn: string;
  path: ItemPath;
  dtype: TorchDType;
  shape: number[];
  /** base64 of the row-major little-endian element bytes */
  data: string;
}

export type KeptItem = KeptValue | KeptTensor;

export const isKeptTensor = (it: KeptItem): it is KeptTensor => "dtype" in it;

export function keptValue(fqn: string, path: ItemPath, value: PyValue): KeptValue {
  return { fqn, path, pickle: Buffer.from(pickle(value)).toString("base64") };
}

/** The nesting DCP flattened `fqn` from, when the checkpoint did not record it (param groups index by number when unflattened). */
export function derivedPath(fqn: string, paramNames: Set<string>): ItemPath {
  const rest = fqn.slice("optim.param_groups.".length), last = rest.lastIndexOf(".");
  if (!fqn.startsWith("optim.param_groups.") || last < 0) return fqn.split(".");
  const group = rest.slice(0, last);
  return ["optim", "param_groups", paramNames.has(group) ? group : /^\d+$/.test(group) ? Number(group) : group, rest.slice(last + 1)];
}

/**
 * A kept item as stored in a native checkpoint, checked again before it is written (the native
 * metadata could have been edited): a value must unpickle to plain data, a tensor must be a known
 * dtype with its bytes. Returns what to write.
 */
export function checkKeptItem(it: unknown, where: string): { fqn: string; path: ItemPath; pickle: Uint8Array } | { fqn: string; path: ItemPath; dtype: TorchDType; shape: number[]; bytes: Uint8Array } {
  const bad = (why: string): never => {
    throw new UserError(`${where}: a kept OLMo-core item ${why}`);
  };
  const o = it as Record<string, unknown>;
  if (typeof o !== "object" || o === null || typeof o.fqn !== "string") return bad("has no name");
  const fqn = o.fqn;
  const path = Array.isArray(o.path) && o.path.every((x) => typeof x === "string" || Number.isSafeInteger(x)) ? (o.path as ItemPath) : bad(`${fqn} has no valid path`);
  if (fqn.startsWith("model.") || fqn.startsWith("optim.state.")) bad(`${fqn} is model or Adam state, which is written from the tensors`);
  if (typeof o.pickle === "string") return { fqn, path, pickle: plainPickle(Buffer.from(o.pickle, "base64"), `${where}: item ${fqn}`).pickle };
  const dtype = o.dtype as TorchDType;
  if (![...TORCH_DTYPE.values()].includes(dtype)) bad(`${fqn} has dtype ${JSON.stringify(o.dtype)}`);
  const shape = Array.isArray(o.shape) && o.shape.every((d) => Number.isSafeInteger(d) && d >= 0) ? (o.shape as number[]) : bad(`${fqn} has no valid shape`);
  const bytes = typeof o.data === "string" ? Buffer.from(o.data, "base64") : bad(`${fqn} has no data`);
  const want = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
  if (bytes.length !== want || want > MAX_KEPT_TENSOR_BYTES) bad(`${fqn} [${shape}] ${dtype} holds ${bytes.length} bytes, expected ${want} (at most ${MAX_KEPT_TENSOR_BYTES})`);
  return { fqn, path, dtype, shape, bytes: new Uint8Array(bytes) };
}

/** A number as the bytes of a 0-d (or one-element) tensor of `dtype` (the lr of a compiled optimizer's group). */
export function scalarBytes(v: number, dtype: TorchDType, where: string): Uint8Array {
  switch (dtype) {
    case "f32":
      return new Uint8Array(Float32Array.of(v).buffer);
    case "f64":
      return new Uint8Array(Float64Array.of(v).buffer);
    case "bf16":
      return new Uint8Array(f32ToBf16(Float32Array.of(v)).buffer);
    default:
      throw new UserError(`${where}: the learning rate is stored as a ${dtype} tensor; olmo writes a learning rate as a float tensor only`);
  }
}
