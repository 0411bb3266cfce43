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
    const dtype = dt instanceof PyGlobal && dt.module === "torch" ? TORCH_DTYPE[dt.name] : undefined;
    if (!dtype) bad(`${fqn}: dtype ${dt instanceof PyGlobal ? dt.qualified : typeName(dt)} is not supported`);
    const size = ints(field(md, "size"));
    if (!size) return bad(`${fqn}: size is malformed`);
    const chunks: DcpChunk[] = [];
    for (const c of seq(field(md, "chunks")) ?? bad(`${fqn}: chunks are missing`)) {
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

/** The chunks lie inside the tensor, do not overlap, and their volumes add up to the tensor's. */
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
  // overlap: sort by first offset; only chunks whose dim-0 ranges intersect can overlap
  const sorted = [...chunks].sort((a, b) => a.offsets[0] - b.offsets[0]);
  for (let i = 0; i < sorted.length; i++) {
    const a = sorted[i];
    for (let j = i + 1; j < sorted.length && sorted[j].offsets[0] < a.offsets[0] + a.sizes[0]; j++) {
      const b = sorted[j];
      if (a.offsets.every((o, d) => o < b.offsets[d] + b.sizes[d] && b.offsets[d] < o + a.sizes[d]) && a.sizes.every((s) => s > 0)) {
        fail(`the chunks at [${a.offsets}] and [${b.offsets}] overlap`);
      }
    }
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
