// Sums of a few numbers over the ranks of a group (loss sums, squared gradient norms), the same
// bits on every rank. Each rank's values travel as f32 (hi, lo) pairs through one all-gather and are
// added in rank order in double, so the result is accurate to ~1e-14 relative and independent of the
// collective's internal reduction order. With one rank it returns the values unchanged.
import type { Backend, DevPtr } from "../../backend/backend.ts";
import type { PtrComm } from "./comm.ts";

/** Split doubles into f32 (hi, lo) pairs so that hi + lo carries ~48 bits through an f32 collective. */
export function splitF64(values: number[], out: Float32Array, at: number): void {
  for (let i = 0; i < values.length; i++) {
    const hi = Math.fround(values[i]);
    out[at + 2 * i] = hi;
    out[at + 2 * i + 1] = Math.fround(values[i] - hi);
  }
}

export class RankSummer {
  /** device scratch: world · 2 · maxValues floats */
  private readonly scratch: DevPtr;
  private readonly host: Float32Array;

  constructor(readonly be: Backend, readonly comm: PtrComm | null, readonly maxValues = 4) {
    const W = comm?.world ?? 1;
    // ≥ 1 KiB host staging: small typed arrays can move under FFI
    this.host = new Float32Array(Math.max(256, W * 2 * maxValues));
    this.scratch = W > 1 ? be.alloc(this.host.length * 4) : 0;
  }

  /** Collective over the group (every rank must call it with as many values). */
  sum(values: number[]): number[] {
    const comm = this.comm, W = comm?.world ?? 1;
    if (!comm || W === 1) return values.slice();
    if (values.length > this.maxValues) throw new Error(`RankSummer: ${values.length} values, room for ${this.maxValues}`);
    const k = 2 * values.length, be = this.be, host = this.host;
    splitF64(values, host, 0);
    be.upload(this.scratch + comm.rank * k * 4, host.subarray(0, k));
    comm.allGather(this.scratch, this.scratch + comm.rank * k * 4, k, "f32");
    be.download(host.subarray(0, W * k), this.scratch);
    const out = new Array<number>(values.length).fill(0);
    for (let r = 0; r < W; r++) for (let i = 0; i < values.length; i++) out[i] += host[r * k + 2 * i] + host[r * k + 2 * i + 1];
    return out;
  }

  free(): void {
    if (this.scratch) this.be.free(this.scratch);
  }
}
