// AdamW on one tensor-parallel rank's shard of the parameters (TP without DP). The update itself is
// the plain AdamW on the local arena; only the clipping norm is global: the squared norm of the
// sharded tensors is all-reduced (sum, over the TP group's device pointers) and the replicated
// tensors (whose gradients are identical on every TP rank) are counted once.
import type { ParamStore } from "../model/param-store.ts";
import type { PtrComm } from "../parallel/comm.ts";
import { AdamW, type AdamWOptions } from "./adamw.ts";

export class TpAdamW extends AdamW {
  private readonly scratch: number;

  constructor(params: ParamStore, opts: AdamWOptions, readonly tp: PtrComm) {
    super(params, opts);
    this.scratch = params.backend.alloc(256);
  }

  override gradNorm(): number {
    const be = this.params.backend, p = this.params;
    const out = new Float32Array(256); // ≥ 1 KiB: small typed arrays can move under FFI
    const sq = (replicated: boolean): number => {
      let first = true;
      for (const s of p.specs) {
        if ((s.tp === "replicated") !== replicated) continue;
        be.normSquared(this.scratch, p.grad + s.offset * 4, s.numel, !first);
        first = false;
      }
      if (first) be.zero(this.scratch, 4);
      if (!replicated) this.tp.allReduce(this.scratch, this.scratch, 1, "f32", "sum");
      be.download(out.subarray(0, 1), this.scratch);
      return out[0];
    };
    const sharded = sq(false);
    return Math.sqrt(sharded + sq(true));
  }

  override free(): void {
    super.free();
    this.params.backend.free(this.scratch);
  }
}
