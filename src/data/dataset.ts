// Fixed-sequence-length instances over concatenated token files (OLMo-core NumpyFSLDataset):
// file f contributes floor(n_f / L) instances of L contiguous tokens — or, with
// max_target_sequence_length Lmax (a multiple of L), floor(n_f / Lmax)·(Lmax/L) instances, so the
// tail shorter than Lmax is dropped and the count is the same for every L that divides Lmax.
// Global instance index = cumulative instance count of the files before f (in list order) + local
// index; instance i of file f is tokens [i·L, (i+1)·L). Documents span instances; nothing inserted.
import { createHash } from "node:crypto";
import { basename } from "node:path";
import { UserError } from "../errors.ts";
import { readMixFile } from "./mix.ts";
import { dtypeBytes, dtypeForVocab, type TokenDtype, TokenFile } from "./token-file.ts";

/** tokens of each file's start that the dtype check reads (64 KiB of uint32), and files checked at open */
const DTYPE_SAMPLE_TOKENS = 16384;
const EAGER_DTYPE_CHECKS = 8;

export interface DatasetOptions {
  /** token files in order (or use mixFile) */
  paths?: string[];
  /** OLMo mix file: `label,relative/path` lines, joined to baseDir */
  mixFile?: string;
  baseDir?: string;
  /** replaces `{TOKENIZER}` in mix paths (default allenai/dolma2-tokenizer) */
  tokenizer?: string;
  /** per-path labels (source names); from the mix file when mixFile is given */
  labels?: string[];
  /** default: the smallest dtype holding vocabSize−1 (uint32 for dolma2) */
  dtype?: TokenDtype;
  seqLen: number;
  maxTargetSeqLen?: number;
  vocabSize: number;
  /** per-path token limits: use only each file's first tokenLimits[i] tokens (source mixtures) */
  tokenLimits?: number[];
}

export interface InstanceLocation {
  fileIndex: number;
  path: string;
  label: string;
  /** offset of the instance's first token within its file, in tokens */
  tokenOffset: number;
}

export class Dataset {
  readonly files: TokenFile[];
  readonly labels: string[];
  readonly dtype: TokenDtype;
  readonly seqLen: number;
  readonly maxTargetSeqLen: number;
  /** instances per shuffled chunk: maxTargetSeqLen / seqLen (1 without chunking) */
  readonly chunk: number;
  readonly vocabSize: number;
  readonly numInstances: number;
  /** instanceStart[f] = global index of file f's first instance; length files+1 */
  readonly instanceStart: Float64Array;
  readonly tokenLimits: number[] | undefined;
  private readonly i32Views: (Int32Array | null)[];
  private readonly dtypeChecked: Uint8Array;

  constructor(opts: DatasetOptions) {
    const { seqLen, vocabSize } = opts;
    if (!Number.isInteger(seqLen) || seqLen < 1) throw new UserError(`sequence length must be a positive integer, got ${seqLen}`);
    if (!Number.isInteger(vocabSize) || vocabSize < 1) throw new UserError(`vocab size must be a positive integer, got ${vocabSize}`);
    const maxT = opts.maxTargetSeqLen ?? seqLen;
    if (!Number.isInteger(maxT) || maxT < seqLen || maxT % seqLen !== 0) {
      throw new UserError(`max target sequence length ${maxT} must be a multiple of the sequence length ${seqLen}`);
    }
    this.dtype = opts.dtype ?? dtypeForVocab(vocabSize);
    dtypeBytes(this.dtype);
    if (this.dtype === "uint16" && vocabSize > 65536) throw new UserError(`dtype uint16 cannot hold a vocabulary of ${vocabSize}; use uint32`);
    let paths: string[], labels: string[];
    let where: (f: number) => string = () => "";
    if (opts.mixFile) {
      if (opts.paths?.length) throw new UserError("give token files or a mix file, not both");
      const entries = readMixFile(opts.mixFile, opts.baseDir ?? ".", opts.tokenizer);
      paths = entries.map((e) => e.path);
      labels = entries.map((e) => e.label);
      where = (f) => `${opts.mixFile}:${entries[f].line}: `;
    } else {
      paths = opts.paths ?? [];
      labels = opts.labels ?? paths.map(() => "");
    }
    if (paths.length === 0) throw new UserError("no token files given (empty file list or mix)");
    if (labels.length !== paths.length) throw new UserError(`${labels.length} labels for ${paths.length} files`);
    if (opts.tokenLimits && opts.tokenLimits.length !== paths.length) throw new UserError(`${opts.tokenLimits.length} token limits for ${paths.length} files`);
    // One stat per file (the same file listed twice is stat'ed once): O(files), no reads.
    const sizes = new Map<string, number>();
    this.files = paths.map((p, i) => {
      try {
        const f = new TokenFile(p, this.dtype, sizes.get(p));
        sizes.set(p, f.sizeBytes);
        return f;
      } catch (e) {
        if (e instanceof UserError) throw new UserError(`${where(i)}${e.message}`);
        throw e;
      }
    });
    this.labels = labels;
    this.seqLen = seqLen;
    this.maxTargetSeqLen = maxT;
    this.chunk = maxT / seqLen;
    this.vocabSize = vocabSize;
    this.tokenLimits = opts.tokenLimits;
    this.instanceStart = new Float64Array(paths.length + 1);
    for (let f = 0; f < paths.length; f++) {
      const n = this.usableTokens(f);
      this.instanceStart[f + 1] = this.instanceStart[f] + Math.floor(n / maxT) * this.chunk;
    }
    this.numInstances = this.instanceStart[paths.length];
    this.i32Views = paths.map(() => null);
    this.dtypeChecked = new Uint8Array(paths.length);
    // a wrong dtype is caught when the dataset opens (first files) and when any other file is first read
    for (let f = 0; f < Math.min(paths.length, EAGER_DTYPE_CHECKS); f++) this.checkDtype(f);
  }

  /**
   * The obvious dtype mistakes, on the first tokens of file f: uint32 data read as uint16 (every
   * second 16-bit word is a zero high half), and uint16 data read as uint32 (ids beyond the
   * vocabulary whose 16-bit halves are all valid ids). Refused with the fix.
   */
  private checkDtype(f: number): void {
    if (this.dtypeChecked[f]) return;
    this.dtypeChecked[f] = 1;
    const file = this.files[f];
    const t = file.tokens().subarray(0, DTYPE_SAMPLE_TOKENS);
    const where = `${file.path}: read as ${this.dtype}`;
    if (this.dtype === "uint16") {
      let oddZero = true, evenNonZero = false;
      for (let i = 0; i + 1 < t.length && oddZero; i += 2) {
        oddZero = t[i + 1] === 0;
        evenNonZero ||= t[i] !== 0;
      }
      if (t.length >= 64 && oddZero && evenNonZero) {
        throw new UserError(`${where}, every second token of the first ${t.length} is 0 (the high halves of uint32 ids): the file holds uint32 tokens; set data.dtype to "uint32"`);
      }
      return;
    }
    const V = this.vocabSize;
    const bad = t.findIndex((id) => id >= V);
    if (bad < 0) return;
    const halves = new Uint16Array(t.buffer, t.byteOffset, t.length * 2);
    const hint = V <= 0x10000 && halves.every((h) => h < V) ? `; its 16-bit halves are all valid ids: the file holds uint16 tokens, set data.dtype to "uint16"` : "; wrong dtype or tokenizer?";
    throw new UserError(`${file.path}: token id ${t[bad]} at token offset ${bad} (byte ${bad * 4}) is >= vocab size ${V}${hint}`);
  }

  /** tokens of file f that instances may use (its size, or its mixture limit) */
  usableTokens(f: number): number {
    const n = this.files[f].numTokens;
    const lim = this.tokenLimits?.[f];
    if (lim === undefined) return n;
    if (lim > n) throw new UserError(`${this.files[f].path}: mixture asks for ${lim} tokens but the file has ${n}`);
    return lim;
  }

  get numTokens(): number {
    return this.numInstances * this.seqLen;
  }

  /** Which file and token offset global instance i comes from (binary search over instanceStart). */
  locate(i: number): InstanceLocation {
    if (!(i >= 0 && i < this.numInstances)) throw new RangeError(`instance ${i} out of range [0, ${this.numInstances})`);
    let lo = 0, hi = this.files.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.instanceStart[mid] <= i) lo = mid;
      else hi = mid - 1;
    }
    return { fileIndex: lo, path: this.files[lo].path, label: this.labels[lo], tokenOffset: (i - this.instanceStart[lo]) * this.seqLen };
  }

  /**
   * Copy instance i's L tokens into out[at … at+L) as int32 and check them against the vocabulary
   * (the cheap place to catch a wrong dtype or tokenizer: one compare per token already in cache).
   */
  readInstance(i: number, out: Int32Array, at: number): void {
    const { fileIndex, tokenOffset } = this.locate(i);
    this.checkDtype(fileIndex);
    const L = this.seqLen;
    const f = this.files[fileIndex];
    if (this.dtype === "uint32") {
      // Same bits, signed view: the copy is a plain memcpy; ids ≥ 2^31 turn negative and fail below.
      let v = this.i32Views[fileIndex];
      if (!v) {
        const u = f.tokens();
        v = this.i32Views[fileIndex] = new Int32Array(u.buffer, u.byteOffset, u.length);
      }
      out.set(v.subarray(tokenOffset, tokenOffset + L), at);
    } else {
      out.set(f.tokens().subarray(tokenOffset, tokenOffset + L), at);
    }
    const V = this.vocabSize;
    let bad = -1;
    for (let k = at, end = at + L; k < end; k++) {
      if ((out[k] >>> 0) >= V) {
        bad = k;
        break;
      }
    }
    if (bad >= 0) {
      const off = tokenOffset + (bad - at);
      throw new UserError(`${f.path}: token id ${out[bad] >>> 0} at token offset ${off} (byte ${off * dtypeBytes(this.dtype)}) is >= vocab size ${V}; wrong dtype or tokenizer?`);
    }
  }

  /**
   * sha256 over what determines the instances: dtype, lengths, vocab and every file's basename and
   * size (as OLMo-core's dataset fingerprint: basenames, so moving the data keeps it valid).
   */
  fingerprint(): string {
    const h = createHash("sha256");
    h.update(`olmo-bun-fsl-v1,dtype=${this.dtype},seq_len=${this.seqLen},max_target_seq_len=${this.maxTargetSeqLen},vocab_size=${this.vocabSize},`);
    this.files.forEach((f, i) => {
      h.update(`path=${basename(f.path)},size=${f.sizeBytes},`);
      if (this.tokenLimits) h.update(`limit=${this.tokenLimits[i]},`);
    });
    return h.digest("hex");
  }

  /** sha256 of the files alone (dtype, vocabulary, basenames, sizes, limits): what a resume compares, the lengths apart. */
  filesFingerprint(): string {
    const h = createHash("sha256");
    h.update(`olmo-bun-files-v1,dtype=${this.dtype},vocab_size=${this.vocabSize},`);
    this.files.forEach((f, i) => {
      h.update(`path=${basename(f.path)},size=${f.sizeBytes},`);
      if (this.tokenLimits) h.update(`limit=${this.tokenLimits[i]},`);
    });
    return h.digest("hex");
  }

  /**
   * OLMo-core's fingerprint of the same files (NumpyDatasetBase.fingerprint, version "v1.1",
   * src/olmo_core/data/numpy_dataset.py at d7301e62): sha256 of
   * "pad_token_id={pad},eos_token_id={eos},dtype={numpy type}" then "name={basename},size={bytes}"
   * per file, where the numpy type prints as "<class 'numpy.uint32'>". What an OLMo-core trainer
   * state's data_loader.dataset_fingerprint is compared with (plain file lists; a source mixture's
   * sizes are OLMo-core's sampled ones, not checked here).
   */
  olmoCoreFingerprint(padTokenId: number, eosTokenId: number): string {
    const h = createHash("sha256");
    h.update(`pad_token_id=${padTokenId},eos_token_id=${eosTokenId},dtype=<class 'numpy.${this.dtype}'>`);
    for (const f of this.files) h.update(`name=${basename(f.path)},size=${f.sizeBytes}`);
    return h.digest("hex");
  }
}

export function openDataset(opts: DatasetOptions): Dataset {
  return new Dataset(opts);
}
