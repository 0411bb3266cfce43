// Token files as OLMo writes them: raw, headerless, little-endian uint16/uint32 arrays (named .npy
// but without a numpy header; OLMo-core reads them with np.memmap). Opening costs one stat: the size
// gives the token count, and the file is memory-mapped only when a token is first read, so a mix of
// thousands of files opens in O(files) and never reads a file whole.
import { statSync } from "node:fs";
import { UserError } from "../errors.ts";
import { mapFileReadOnly } from "../native/map-file.ts";

export type TokenDtype = "uint16" | "uint32";

export function dtypeBytes(dtype: TokenDtype): 2 | 4 {
  if (dtype === "uint16") return 2;
  if (dtype === "uint32") return 4;
  throw new UserError(`token dtype must be uint16 or uint32, got "${dtype}"`);
}

/** The smallest dtype that holds vocabSize−1 (OLMo-core NumpyDatasetConfig.get_dtype). */
export function dtypeForVocab(vocabSize: number): TokenDtype {
  return vocabSize - 1 <= 0xffff ? "uint16" : "uint32";
}

export class TokenFile {
  readonly numTokens: number;
  private view: Uint16Array | Uint32Array | null = null;

  /** Stats the file (no read); a size that is not a whole number of tokens is a UserError. */
  constructor(readonly path: string, readonly dtype: TokenDtype, readonly sizeBytes = statTokenFile(path)) {
    const w = dtypeBytes(dtype);
    if (sizeBytes % w !== 0) {
      throw new UserError(`${path}: ${sizeBytes} bytes is not a multiple of ${w} (dtype ${dtype}); wrong --dtype or a truncated file`);
    }
    this.numTokens = sizeBytes / w;
  }

  /** All tokens as a typed array over the memory map (mapped on first use, read-only, page cache). */
  tokens(): Uint16Array | Uint32Array {
    if (this.view) return this.view;
    if (this.numTokens === 0) return (this.view = this.dtype === "uint16" ? new Uint16Array(0) : new Uint32Array(0));
    let bytes: Uint8Array;
    try {
      // opened read-only: datasets live on read-only mounts, immutable or another owner's files
      bytes = mapFileReadOnly(this.path);
    } catch (e) {
      throw new UserError(`${this.path}: cannot memory-map (${(e as Error).message})`);
    }
    if (bytes.byteLength !== this.sizeBytes) {
      throw new UserError(`${this.path}: size changed from ${this.sizeBytes} to ${bytes.byteLength} bytes since the dataset was opened`);
    }
    // mmap returns page-aligned memory, so the wider views are aligned.
    this.view = this.dtype === "uint16"
      ? new Uint16Array(bytes.buffer, bytes.byteOffset, this.numTokens)
      : new Uint32Array(bytes.buffer, bytes.byteOffset, this.numTokens);
    return this.view;
  }
}

export function statTokenFile(path: string): number {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new UserError(`token file not found: ${path}`);
  }
  if (!st.isFile()) throw new UserError(`${path}: not a regular file`);
  return st.size;
}
