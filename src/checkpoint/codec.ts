// Optional lz4 compression of stored tensor slices, in independent chunks so that any tensor size
// works (LZ4 blocks are limited to ~2 GB) and memory stays at one chunk of extra buffer.
// Measured honestly (bench/ckpt.ts): trained-like fp32 weights are close to incompressible for
// LZ4 (ratio ~1.0: the mantissa bytes look random), so compression is off by default.
import { compressSync, uncompressSync } from "lz4-napi";
import { UserError } from "../errors.ts";

export const LZ4_CHUNK_BYTES = 16 << 20;

export interface Lz4Info {
  rawBytes: number;
  chunkRawBytes: number;
  /** compressed length of each chunk, in order */
  chunks: number[];
}

function asBuffer(u8: Uint8Array): Buffer {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

/** Compress `raw` chunk by chunk; `emit` receives each compressed chunk in order. */
export function lz4Compress(raw: Uint8Array, emit: (chunk: Uint8Array) => void): Lz4Info {
  const chunks: number[] = [];
  for (let off = 0; off < raw.length; off += LZ4_CHUNK_BYTES) {
    const c = compressSync(asBuffer(raw.subarray(off, Math.min(raw.length, off + LZ4_CHUNK_BYTES))));
    chunks.push(c.length);
    emit(c);
  }
  return { rawBytes: raw.length, chunkRawBytes: LZ4_CHUNK_BYTES, chunks };
}

/** Decompress `stored` (the concatenated chunks) into `out` (exactly rawBytes long). */
export function lz4Decompress(stored: Uint8Array, info: Lz4Info, out: Uint8Array, what: string): void {
  if (out.length !== info.rawBytes) throw new Error(`lz4Decompress: output ${out.length} bytes, expected ${info.rawBytes}`);
  let src = 0, dst = 0;
  for (const len of info.chunks) {
    let c: Buffer;
    try {
      c = uncompressSync(asBuffer(stored.subarray(src, src + len)));
    } catch (e) {
      throw new UserError(`${what}: lz4 data is corrupt (${(e as Error).message})`);
    }
    const want = Math.min(info.chunkRawBytes, info.rawBytes - dst);
    if (c.length !== want) throw new UserError(`${what}: lz4 chunk decoded to ${c.length} bytes, expected ${want}`);
    out.set(c, dst);
    src += len;
    dst += c.length;
  }
}
