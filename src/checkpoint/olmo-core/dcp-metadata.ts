// torch.distributed.checkpoint's `.metadata`: a pickled Metadata dataclass (pytorch/pytorch
// torch/distributed/checkpoint/metadata.py at 57ba4129):
//   state_dict_metadata: {fqn: TensorStorageMetadata(properties, size, chunks) | BytesStorageMetadata()}
//     TensorProperties pickles its state as (dtype, layout, requires_grad, _MEM_FORMAT_ENCODING, pin_memory);
//     each chunk is ChunkStorageMetadata(offsets: torch.Size, sizes: torch.Size)
//   planner_data: {fqn: path tuple into the nested state dict} (DefaultSavePlanner's flatten mapping)
//   storage_data: {MetadataIndex(fqn, offset, index): _StorageInfo(relative_path, offset, length)}
// where _StorageInfo is torch's (torch/distributed/checkpoint/filesystem.py) or, in the OLMo-2 32B
// checkpoints, OLMo-core's copy (olmo_core/distributed/checkpoint/filesystem.py at d7301e62); both
// are read as records with those three fields. MetadataIndex's hash and equality use (fqn, offset)
// only, so a chunk's data is found by its fqn and offsets. Checks: every chunk has its data, and a
// tensor's chunks tile it (inside its bounds, no overlap, volumes adding up: what torch's
// _validate_global_plan in default_planner.py checks before saving).
import { UserError } from "../../errors.ts";
import { PyDict, PyGlobal, PyObject, PyTuple, type PyValue, field, seq, typeName, unpickle } from "../torch/pickle-read.ts";
import { dataclassRecord, pickle } from "../torch/pickle-write.ts";
import { TORCH_DTYPE, TORCH_DTYPE_NAME, type TorchDType } from "../torch/torch-save.ts";

export interface DcpStorage {
  relativePath: string;
  offset: number;
  length: number;
}

export interface DcpChunk {
  offsets: number[];
  sizes: number[];
  storage: DcpStorage;
}

export interface DcpTensor {
  fqn: string;
  dtype: TorchDType;
  size: number[];
  chunks: DcpChunk[];
}

export interface DcpMetadata {
  tensors: Map<string, DcpTensor>;
  /** non-tensor items (pickled Python values: param-group fields, ...) */
  bytes: Map<string, DcpStorage>;
  /** qualified class name of the storage records (torch's or OLMo-core's _StorageInfo) */
  storageInfoClass: string;
  /** planner_data: each item's path in the nested state dict (e.g. ["optim", "param_groups", 0, "lr"]), where recorded */
  paths: Map<string, (string | number)[]>;
}

const MD = "torch.distributed.checkpoint.metadata";

/** torch.Size(...) pickles as REDUCE(torch.Size, (tuple,)); accept that or a plain tuple/list. */
function ints(v: PyValue): number[] | null {
  const xs = v instanceof PyObject && v.cls instanceof PyGlobal && v.cls.name === "Size" ? seq(v.args[0]) : seq(v);
  return xs && xs.every((x) => Number.isSafeInteger(x) && (x as number) >= 0) ? (xs as number[]) : null;
}

const key = (fqn: string, offsets: number[] | null) => `${fqn}\u0000${offsets ? offsets.join(",") : ""}`;

export function parseDcpMetadata(buf: Uint8Array, where: string): DcpMetadata {
  const bad = (msg: string): never => {
    throw new UserError(`${where}: not a torch.distributed.checkpoint metadata file: ${msg}`);
  };
  const root = unpickle(buf, where);
  if (!(root instanceof PyObject) || !root.className.endsWith(".Metadata")) bad(`it holds a ${typeName(root)}, not a Metadata`);
  const sdm = field(root, "state_dict_metadata"), sd = field(root, "storage_data");
  if (!(sdm instanceof PyDict)) return bad("state_dict_metadata is missing");
  if (!(sd instanceof PyDict)) return bad("storage_data is missing");
  const storage = new Map<string, DcpStorage>();
  let storageInfoClass = "";
  for (const [k, v] of sd.entries) {
    const fqn = field(k, "fqn");
    if (typeof fqn !== "string") bad(`a storage_data key is a ${typeName(k)}, not a MetadataIndex`);
    const off = field(k, "offset");
    const rel = field(v, "relative_path"), o = field(v, "offset"), len = field(v, "length");
    if (typeof rel !== "string" || !Number.isSafeInteger(o) || !Number.isSafeInteger(len) || (o as number) < 0 || (len as number) < 0) {
      bad(`the storage record of ${fqn} is malformed`);
    }
    if (v instanceof PyObject) storageInfoClass ||= v.className;
    storage.set(key(fqn as string, off == null ? null : ints(off)), { relativePath: rel as string, offset: o as number, length: len as number });
  }
  const tensors = new Map<string, DcpTensor>(), bytes = new Map<string, DcpStorage>();
  // work is budgeted by the file's size: a pickle can list one memoized chunk (or list of chunks)
  // again and again for two bytes each, which DCP never does: each chunk is its own
  // ChunkStorageMetadata with its own storage record, over 200 bytes per chunk in the fixtures and
  // never under 16 (a class reference, two torch.Size tuples, a MetadataIndex, a _StorageInfo)
  let chunksListed = 0;
  for (const [fqn, md] of sdm.entries) {
    if (typeof fqn !== "string") return bad("a state_dict_metadata key is not a string");
    if (!(md instanceof PyObject)) return bad(`${fqn}: metadata is a ${typeName(md)}`);
    if (md.className.endsWith(".BytesStorageMetadata")) {
      const s = storage.get(key(fqn, null));
      if (!s) bad(`item ${fqn} has no storage record`);
      bytes.set(fqn, s!);
      continue;
    }
    if (!md.className.endsWith(".TensorStorageMetadata")) bad(`${fqn}: unknown metadata class ${md.className}`);
    const props = field(md, "properties");
    const st = props instanceof PyObject ? props.state : undefined;
    const dt = st instanceof PyTuple ? st.items[0] : field(props, "dtype");
    const dtype = dt instanceof PyGlobal && dt.module === "torch" ? TORCH_DTYPE.get(dt.name) : undefined;
    if (!dtype) bad(`${fqn}: dtype ${dt instanceof PyGlobal ? dt.qualified : typeName(dt)} is not supported`);
    const size = ints(field(md, "size"));
    if (!size) return bad(`${fqn}: size is malformed`);
    const chunks: DcpChunk[] = [];
    const listed = seq(field(md, "chunks")) ?? bad(`${fqn}: chunks are missing`);
    chunksListed += listed.length;
    if (chunksListed > buf.length / 16) bad(`it lists ${chunksListed} chunks or more in ${buf.length} bytes: records repeated by reference, not a file DCP writes`);
    for (const c of listed) {
      const offsets = ints(field(c, "offsets")), sizes = ints(field(c, "sizes"));
      if (!offsets || !sizes || offsets.length !== size.length || sizes.length !== size.length) bad(`${fqn}: a chunk's offsets/sizes do not match the tensor's ${size.length} dimensions`);
      const s = storage.get(key(fqn, offsets!));
      if (!s) bad(`${fqn}: the chunk at [${offsets}] has no storage record`);
      chunks.push({ offsets: offsets!, sizes: sizes!, storage: s! });
    }
    checkTiling(fqn, size, chunks, where);
    tensors.set(fqn, { fqn, dtype: dtype!, size, chunks });
  }
  // planner_data keeps the nesting DCP flattened (a param group is a list index, a name a string)
  const paths = new Map<string, (string | number)[]>();
  const pd = field(root, "planner_data");
  if (pd instanceof PyDict) {
    for (const [fqn, path] of pd.entries) {
      const parts = seq(path);
      if (typeof fqn === "string" && parts?.every((x) => typeof x === "string" || Number.isSafeInteger(x))) paths.set(fqn, parts as (string | number)[]);
    }
  }
  return { tensors, bytes, storageInfoClass, paths };
}

/**
 * The chunks lie inside the tensor, do not overlap, and their volumes add up to the tensor's, in
 * O(k log k) for k chunks (a sweep along dimension 0 over the chunks' extents in dimension 1): a
 * pairwise check is quadratic, and 30,000 chunks of one tensor took 22 s. Chunks of a tensor with
 * more than two dimensions may split only its first two.
 */
export function checkTiling(fqn: string, size: number[], chunks: DcpChunk[], where: string): void {
  const fail = (why: string): never => {
    throw new UserError(`${where}: the chunks of ${fqn} [${size}] do not tile the tensor: ${why}`);
  };
  const numel = size.reduce((a, b) => a * b, 1);
  let vol = 0;
  for (const c of chunks) {
    c.offsets.forEach((o, d) => {
      if (o + c.sizes[d] > size[d]) fail(`the chunk at [${c.offsets}] of size [${c.sizes}] runs past dimension ${d}`);
    });
    vol += c.sizes.reduce((a, b) => a * b, 1);
  }
  if (vol !== numel) fail(`they hold ${vol} elements, the tensor ${numel}`);
  if (size.length === 0) return;
  // empty chunks hold nothing and overlap nothing
  const live = chunks.filter((c) => c.sizes.every((s) => s > 0));
  for (const c of live) {
    for (let d = 2; d < size.length; d++) {
      if (c.offsets[d] !== 0 || c.sizes[d] !== size[d]) {
        throw new UserError(`${where}: ${fqn}: chunks split beyond dimension 1 of a ${size.length}-D tensor are not supported`);
      }
    }
  }
  const y0 = (c: DcpChunk) => (size.length > 1 ? c.offsets[1] : 0), y1 = (c: DcpChunk) => (size.length > 1 ? c.offsets[1] + c.sizes[1] : 1);
  const ys = [...new Set(live.flatMap((c) => [y0(c), y1(c)]))].sort((a, b) => a - b);
  const yIndex = new Map(ys.map((y, i) => [y, i]));
  const cover = new CoverTree(Math.max(1, ys.length - 1));
  // events along dimension 0: a chunk leaves at its end before another enters there (half-open)
  const events: [number, 0 | 1, number][] = [];
  live.forEach((c, i) => events.push([c.offsets[0], 1, i], [c.offsets[0] + c.sizes[0], 0, i]));
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const active = new Set<number>();
  for (const [, enters, i] of events) {
    const c = live[i], lo = yIndex.get(y0(c))!, hi = yIndex.get(y1(c))!;
    if (!enters) {
      cover.add(lo, hi, -1);
      active.delete(i);
      continue;
    }
    if (cover.max(lo, hi) > 0) {
      const other = live[[...active].find((j) => y0(live[j]) < y1(c) && y0(c) < y1(live[j]))!];
      fail(`the chunks at [${other.offsets}] and [${c.offsets}] overlap`);
    }
    cover.add(lo, hi, 1);
    active.add(i);
  }
}

/** Counts over [0, n) with range add and range max (a segment tree with lazy adds). */
class CoverTree {
  private readonly top: Float64Array;
  private readonly pending: Float64Array;
  constructor(private readonly n: number) {
    this.top = new Float64Array(4 * n);
    this.pending = new Float64Array(4 * n);
  }
  add(lo: number, hi: number, v: number, node = 1, a = 0, b = this.n): void {
    if (hi <= a || b <= lo) return;
    if (lo <= a && b <= hi) {
      this.top[node] += v;
      this.pending[node] += v;
      return;
    }
    const m = (a + b) >> 1;
    this.add(lo, hi, v, 2 * node, a, m);
    this.add(lo, hi, v, 2 * node + 1, m, b);
    this.top[node] = this.pending[node] + Math.max(this.top[2 * node], this.top[2 * node + 1]);
  }
  max(lo: number, hi: number, node = 1, a = 0, b = this.n): number {
    if (hi <= a || b <= lo) return -Infinity;
    if (lo <= a && b <= hi) return this.top[node];
    const m = (a + b) >> 1;
    return this.pending[node] + Math.max(this.max(lo, hi, 2 * node, a, m), this.max(lo, hi, 2 * node + 1, m, b));
  }
}

export interface DcpItemOut {
  fqn: string;
  /** a tensor saved whole as one chunk, or a pickled Python value */
  tensor?: { dtype: TorchDType; size: number[] };
  storage: DcpStorage;
  /** the path of the item in the nested state dict (planner_data), e.g. ["optim", "state", "embeddings.weight", "exp_avg"] */
  path: (string | number)[];
}

const torchSize = (xs: number[]) => new PyObject(new PyGlobal("torch", "Size"), [new PyTuple(xs)], "reduce");

/** Pickle a Metadata for whole-tensor items (one chunk each) and byte items, as DCP's FileSystemWriter would. */
export function writeDcpMetadata(items: DcpItemOut[]): Uint8Array {
  const sdm = new PyDict(), sd = new PyDict(), planner = new PyDict();
  for (const it of items) {
    const offsets = it.tensor ? it.tensor.size.map(() => 0) : null;
    if (it.tensor) {
      const props = new PyObject(new PyGlobal(MD, "TensorProperties"), [], "newobj");
      const memFormat = new PyObject(new PyGlobal(MD, "_MEM_FORMAT_ENCODING"), [0], "reduce"); // TORCH_CONTIGUOUS_FORMAT
      props.state = new PyTuple([new PyGlobal("torch", TORCH_DTYPE_NAME[it.tensor.dtype]), new PyGlobal("torch", "strided"), false, memFormat, false]);
      const chunk = dataclassRecord(MD, "ChunkStorageMetadata", [["offsets", torchSize(offsets!)], ["sizes", torchSize(it.tensor.size)]]);
      sdm.entries.push([it.fqn, dataclassRecord(MD, "TensorStorageMetadata", [["properties", props], ["size", torchSize(it.tensor.size)], ["chunks", [chunk]]])]);
    } else {
      sdm.entries.push([it.fqn, dataclassRecord(MD, "BytesStorageMetadata", [])]);
    }
    const index = dataclassRecord(MD, "MetadataIndex", [["fqn", it.fqn], ["offset", offsets ? torchSize(offsets) : null], ["index", it.tensor ? 0 : null]]);
    const info = dataclassRecord("torch.distributed.checkpoint.filesystem", "_StorageInfo", [
      ["relative_path", it.storage.relativePath], ["offset", it.storage.offset], ["length", it.storage.length],
    ]);
    sd.entries.push([index, info]);
    planner.entries.push([it.fqn, new PyTuple(it.path)]);
  }
  return pickle(dataclassRecord(MD, "Metadata", [["state_dict_metadata", sdm], ["planner_data", planner], ["storage_data", sd], ["storage_meta", null]]));
}
