// torch.save archives (the ZIP layout of torch ≥ 1.6, 1.x and 2.x alike), read and written
// without PyTorch. An archive holds `<prefix>/data.pkl` (a pickle whose tensors are calls of
// torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks) — or
// _v3, which adds the dtype — and whose storages are persistent ids
// ('storage', torch.<Type>Storage, key, location, numel)), one record `<prefix>/data/<key>` of raw
// little-endian storage bytes per storage, and `<prefix>/version` (plus, from torch 2.x, byteorder and
// .data/serialization_id). The prefix is the file's base name or "archive" for a stream.
// Sources (pytorch/pytorch): torch/serialization.py (_save: persistent_id, the record names;
// _load: the prefix taken from the first record), torch/_utils.py (_rebuild_tensor_v2/_v3),
// caffe2/serialize/inline_container.cc at 3834689c (archive name, version record).
// A tensor may be a view into a larger storage (an offset and strides); reads honour both.
import { UserError } from "../../errors.ts";
import { type DType } from "../../tensor/dtype.ts";
import { preadExact } from "../io.ts";
import { PyDict, PyGlobal, PyObject, PyPersistent, PyTuple, type PyValue, type UnpickleOptions, seq, typeName, unpickle } from "./pickle-read.ts";
import { pickle } from "./pickle-write.ts";
import { type ZipEntry, ZipWriter, readZipDirectory, zipDataOffset } from "./zip.ts";

/** Element types a checkpoint tensor may have; only the float ones convert to f32. */
export type TorchDType = DType | "f64" | "i64" | "i32" | "i16" | "i8" | "u8" | "bool";

// Maps, not objects: the names come from files, and a name like "toString" or "__proto__" must
// find nothing rather than Object.prototype's members.
const STORAGE_DTYPE = new Map<string, TorchDType>([
  ["FloatStorage", "f32"], ["BFloat16Storage", "bf16"], ["HalfStorage", "f16"], ["DoubleStorage", "f64"], ["LongStorage", "i64"],
  ["IntStorage", "i32"], ["ShortStorage", "i16"], ["CharStorage", "i8"], ["ByteStorage", "u8"], ["BoolStorage", "bool"],
]);
/** torch.<name> dtype globals (in DCP metadata and _rebuild_tensor_v3) */
export const TORCH_DTYPE = new Map<string, TorchDType>([
  ["float32", "f32"], ["bfloat16", "bf16"], ["float16", "f16"], ["float64", "f64"], ["int64", "i64"], ["int32", "i32"], ["int16", "i16"], ["int8", "i8"], ["uint8", "u8"], ["bool", "bool"],
]);
export const DTYPE_BYTES: Record<TorchDType, number> = { f32: 4, bf16: 2, f16: 2, f64: 8, i64: 8, i32: 4, i16: 2, i8: 1, u8: 1, bool: 1 };
// the reverse tables are keyed by our own dtype names, never by a file's
const STORAGE_OF = Object.fromEntries([...STORAGE_DTYPE].map(([s, d]) => [d, s])) as Record<TorchDType, string>;
export const TORCH_DTYPE_NAME = Object.fromEntries([...TORCH_DTYPE].map(([n, d]) => [d, n])) as Record<TorchDType, string>;

export interface TorchTensor {
  dtype: TorchDType;
  shape: number[];
  /** in elements */
  stride: number[];
  /** in elements, into the storage */
  storageOffset: number;
  /** absolute file offset of the storage's first byte */
  storageAt: number;
  storageNumel: number;
}

/** A parsed archive: the unpickled root and the storage records it refers to. */
export class TorchArchive {
  constructor(readonly root: PyValue, readonly rawPickle: Uint8Array, private readonly storages: Map<string, { at: number; bytes: number }>, readonly where: string) {}

  /** The tensor a `_rebuild_tensor_v2/_v3` record describes, checked to lie inside its storage; else null. */
  tensor(v: PyValue): TorchTensor | null {
    if (!(v instanceof PyObject) || !(v.cls instanceof PyGlobal) || v.cls.module !== "torch._utils") return null;
    if (v.cls.name === "_rebuild_parameter") return this.tensor(v.args[0]);
    const v3 = v.cls.name === "_rebuild_tensor_v3";
    if (!v3 && v.cls.name !== "_rebuild_tensor_v2") return null;
    const bad = (msg: string): never => {
      throw new UserError(`${this.where}: not a valid torch.save archive: ${msg}`);
    };
    const [st, off, size, stride] = v.args;
    if (!(st instanceof PyPersistent)) return bad(`a tensor's storage is a ${typeName(st)}, not a storage reference`);
    const pid = seq(st.pid);
    if (!pid || pid.length < 5 || pid[0] !== "storage" || !(pid[1] instanceof PyGlobal) || typeof pid[2] !== "string") return bad("a storage reference is not ('storage', type, key, location, size)");
    let dtype: TorchDType | undefined = STORAGE_DTYPE.get((pid[1] as PyGlobal).name);
    let numel = pid[4] as number;
    if (v3) {
      const d = v.args[6];
      dtype = d instanceof PyGlobal && d.module === "torch" ? TORCH_DTYPE.get(d.name) : undefined;
      if (dtype && (pid[1] as PyGlobal).name === "UntypedStorage") numel = Math.floor(numel / DTYPE_BYTES[dtype]);
    }
    if (!dtype) return bad(`storage type ${(pid[1] as PyGlobal).qualified} is not supported`);
    const shape = seq(size), strides = seq(stride);
    const ints = (xs: PyValue[] | null) => xs !== null && xs.every((x) => Number.isSafeInteger(x) && (x as number) >= 0);
    if (!ints(shape) || !ints(strides) || shape!.length !== strides!.length || !Number.isSafeInteger(off) || (off as number) < 0 || !Number.isSafeInteger(numel)) {
      return bad(`tensor geometry is malformed (size ${String(shape)}, stride ${String(strides)}, offset ${String(off)})`);
    }
    const rec = this.storages.get(pid[2] as string);
    if (!rec) return bad(`storage record data/${pid[2]} is missing`);
    const es = DTYPE_BYTES[dtype];
    if (numel * es > rec.bytes) return bad(`storage data/${pid[2]} holds ${rec.bytes} bytes, its reference needs ${numel * es}`);
    const sh = shape as number[], sd = strides as number[];
    const empty = sh.some((d) => d === 0);
    const last = (off as number) + sh.reduce((a, d, i) => a + (d - 1) * sd[i], 0);
    if (!empty && last >= numel) return bad(`a tensor [${sh}] (offset ${off}, strides ${sd}) reaches element ${last} of a ${numel}-element storage`);
    // a view may not claim more elements than its storage holds (stride 0 or overlapping strides):
    // reading it would expand a few stored bytes into as many as the shape claims, and the writers
    // of checkpoints clone such views before saving (DCP: `if tensor.storage().size() !=
    // tensor.numel(): tensor = tensor.clone()`, pytorch/pytorch torch/distributed/checkpoint/
    // filesystem.py _SerialCpuLoader at 0140b62d; OLMo-core's _write_items the same at 003ae116)
    const elements = sh.reduce((a, d) => a * d, 1);
    if (elements > numel) {
      return bad(`a tensor [${sh}] (strides ${sd}) claims ${elements} elements from a storage of ${numel}: a broadcast or overlapping view, refused rather than expanded`);
    }
    return { dtype, shape: sh, stride: sd, storageOffset: off as number, storageAt: rec.at, storageNumel: numel };
  }
}

/** Read the archive at [base, base + length) of fd (a whole .pt file, or one item of a .distcp file). */
export function readTorchArchive(fd: number, base: number, length: number, where: string, opts: UnpickleOptions = {}): TorchArchive {
  const entries = readZipDirectory(fd, base, length, where);
  const first = entries.keys().next().value as string | undefined;
  const slash = first?.indexOf("/") ?? -1;
  if (!first || slash <= 0) throw new UserError(`${where}: not a valid torch.save archive: its records are not in one folder`);
  const prefix = first.slice(0, slash + 1);
  const pkl = entries.get(`${prefix}data.pkl`);
  if (!pkl) throw new UserError(`${where}: not a valid torch.save archive: no ${prefix}data.pkl`);
  const pklAt = zipDataOffset(fd, base, length, pkl, where);
  const bytes = new Uint8Array(pkl.size);
  preadExact(fd, bytes, base + pklAt, where, `${prefix}data.pkl`);
  const root = unpickle(bytes, `${where} (${prefix}data.pkl)`, opts);
  const storages = new Map<string, { at: number; bytes: number }>();
  const dataPrefix = `${prefix}data/`;
  for (const [name, e] of entries as Map<string, ZipEntry>) {
    if (!name.startsWith(dataPrefix)) continue;
    storages.set(name.slice(dataPrefix.length), { at: base + zipDataOffset(fd, base, length, e, where), bytes: e.size });
  }
  return new TorchArchive(root, bytes, storages, where);
}

/** Is the tensor a row-major (C-contiguous) view, so that any element range is one byte range? */
export function isRowMajor(t: TorchTensor): boolean {
  let want = 1;
  for (let i = t.shape.length - 1; i >= 0; i--) {
    if (t.shape[i] !== 1 && t.stride[i] !== want) return false;
    want *= t.shape[i];
  }
  return true;
}

/**
 * Elements [start, start + count) of a tensor in row-major order of its logical shape, as raw
 * element bytes into `out` (count × element size). Row-major views are one read; other views
 * read the storage span the range touches and gather.
 */
export function readTensorElements(fd: number, t: TorchTensor, start: number, count: number, out: Uint8Array, where: string): void {
  const es = DTYPE_BYTES[t.dtype];
  if (out.length !== count * es) throw new Error(`readTensorElements: buffer of ${out.length} bytes for ${count} elements`);
  if (count === 0) return;
  if (isRowMajor(t)) return preadExact(fd, out, t.storageAt + (t.storageOffset + start) * es, where, "tensor data");
  // storage index of logical element i, for the range's first and last elements bound the span
  const index = (i: number): number => {
    let s = t.storageOffset;
    for (let d = t.shape.length - 1; d >= 0; d--) {
      s += (i % t.shape[d]) * t.stride[d];
      i = Math.floor(i / t.shape[d]);
    }
    return s;
  };
  let lo = Infinity, hi = -Infinity;
  const idx = new Float64Array(count);
  for (let k = 0; k < count; k++) {
    idx[k] = index(start + k);
    lo = Math.min(lo, idx[k]);
    hi = Math.max(hi, idx[k]);
  }
  const span = new Uint8Array((hi - lo + 1) * es);
  preadExact(fd, span, t.storageAt + lo * es, where, "tensor data");
  for (let k = 0; k < count; k++) out.set(span.subarray((idx[k] - lo) * es, (idx[k] - lo + 1) * es), k * es);
}

const VERSION_RECORD = new TextEncoder().encode("3\n"); // the file format version torch.save writes
const BYTEORDER_RECORD = new TextEncoder().encode("little");

/** data.pkl of a torch.save(tensor): _rebuild_tensor_v2 over storage "0", contiguous. */
function tensorPickle(dtype: TorchDType, shape: number[]): Uint8Array {
  const storage = STORAGE_OF[dtype];
  const numel = shape.reduce((a, b) => a * b, 1);
  const stride: number[] = [];
  for (let i = shape.length - 1, s = 1; i >= 0; i--) {
    stride.unshift(s);
    s *= shape[i];
  }
  const pid = new PyPersistent(new PyTuple(["storage", new PyGlobal("torch", storage), "0", "cpu", numel]));
  const hooks = new PyObject(new PyGlobal("collections", "OrderedDict"), [], "reduce");
  return pickle(new PyObject(new PyGlobal("torch._utils", "_rebuild_tensor_v2"), [pid, 0, new PyTuple(shape), new PyTuple(stride), false, hooks], "reduce"));
}

/** torch.save(tensor) at `base` of fd; `data` holds its row-major element bytes. Returns the length. */
export function writeTensorArchive(fd: number, base: number, dtype: TorchDType, shape: number[], data: Uint8Array[], prefix = "archive"): number {
  const z = new ZipWriter(fd, base);
  z.add(`${prefix}/data.pkl`, [tensorPickle(dtype, shape)]);
  z.add(`${prefix}/byteorder`, [BYTEORDER_RECORD]);
  z.add(`${prefix}/data/0`, data);
  z.add(`${prefix}/version`, [VERSION_RECORD]);
  return z.finish();
}

/** torch.save(obj) of a tensor-free Python value (dicts, lists, numbers, strings). */
export function writeObjectArchive(fd: number, base: number, value: PyValue, prefix = "archive"): number {
  return writePickleArchive(fd, base, pickle(value), prefix);
}

/** A tensor-free torch.save archive around an existing data.pkl (kept verbatim from another checkpoint). */
export function writePickleArchive(fd: number, base: number, pkl: Uint8Array, prefix = "archive"): number {
  const z = new ZipWriter(fd, base);
  z.add(`${prefix}/data.pkl`, [pkl]);
  z.add(`${prefix}/byteorder`, [BYTEORDER_RECORD]);
  z.add(`${prefix}/version`, [VERSION_RECORD]);
  return z.finish();
}

/** A dict with string keys, as torch.save writes it ({} in Python). */
export function pyDict(o: Record<string, PyValue>): PyDict {
  return new PyDict(Object.entries(o));
}
