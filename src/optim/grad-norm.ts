// The global L2 norm of the gradient, over a sharding map (src/model/sharding.ts), for every layout:
//   1. each rank sums the squares of the gradient elements it owns (its ZeRO-1 range after the
//      reduce-scatter), in two classes: tensors sharded over TP, and replicated ones (identical on
//      every TP rank, so counted once, not tp times);
//   2. the class sums are added over the DP group (RankSummer: the same bits on every rank);
//   3. the sharded class is added over the TP group (an f32 (hi, lo) pair through one all-reduce).
// The squares are summed on the device by olmo_norm_squared (in double within a call, rounded to
// f32): without TP the owned elements are one contiguous range, one call; under TP one call per
// owned tensor part, each into its own slot, the slots added per class in double in arena order
// after one download (no host sync per tensor).
import type { Backend, DevPtr } from "../backend/backend.ts";
import type { ParamStore } from "../model/param-store.ts";
import type { PtrComm } from "../parallel/comm/comm.ts";
import type { RankSummer } from "../parallel/comm/sum-over-ranks.ts";

interface Run {
  /** 0: sharded (or no TP), 1: replicated under TP */
  cls: 0 | 1;
  /** first arena element */
  at: number;
  n: number;
}

export class GradNorm {
  private readonly runs: Run[];
  private readonly scratch: DevPtr;
  /** one slot per run; ≥ 1 KiB: small typed arrays can move under FFI */
  private readonly host: Float32Array;

  constructor(private readonly be: Backend, private readonly params: ParamStore, private readonly dp: RankSummer,
    private readonly tp: PtrComm | null) {
    const map = params.map;
    if (!tp) {
      const { start, len } = map.zero1;
      this.runs = len > 0 ? [{ cls: 0, at: start, n: len }] : [];
    } else {
      this.runs = map.ownedParts().map((o) => ({ cls: map.replicated(o.shard.full.name) ? 1 : 0, at: o.shard.local.offset + o.lo, n: o.hi - o.lo }));
    }
    this.host = new Float32Array(Math.max(256, this.runs.length));
    this.scratch = be.alloc(this.host.byteLength);
  }

  /** Collective over the DP and TP groups: the norm of the whole model's gradient, on every rank. */
  compute(): number {
    const h = this.host, runs = this.runs;
    runs.forEach((r, i) => this.be.normSquared(this.scratch + i * 4, this.params.grad + r.at * 4, r.n, false));
    if (runs.length) this.be.download(h.subarray(0, runs.length), this.scratch);
    const sums = [0, 0];
    runs.forEach((r, i) => (sums[r.cls] += h[i]));
    const [sharded, replicated] = this.dp.sum(sums);
    if (!this.tp) return Math.sqrt(sharded + replicated);
    h[0] = Math.fround(sharded);
    h[1] = Math.fround(sharded - h[0]);
    this.be.upload(this.scratch, h.subarray(0, 2));
    this.tp.allReduce(this.scratch, this.scratch, 2, "f32", "sum");
    this.be.download(h.subarray(0, 2), this.scratch);
    return Math.sqrt(h[0] + h[1] + replicated);
  }

  free(): void {
    this.be.free(this.scratch);
  }
}
