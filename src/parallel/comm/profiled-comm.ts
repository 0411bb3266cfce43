// Collectives timed by the per-phase profile (src/backend/profile.ts) under the class "collectives".
import type { Dtype } from "../../backend/backend.ts";
import type { Profiler } from "../../backend/profile.ts";
import type { PtrComm } from "./comm.ts";

/** A PtrComm whose collectives are timed as "collectives" (bytes: what this rank sends). */
export function profiledComm(comm: PtrComm, profiler: Profiler): PtrComm {
  const bytes = (count: number, dtype: Dtype) => count * (dtype === "bf16" ? 2 : 4);
  return {
    rank: comm.rank,
    world: comm.world,
    allReduce: (r, s, c, d, op) => profiler.time({ cls: "collectives", bytes: bytes(c, d) }, () => comm.allReduce(r, s, c, d, op)),
    allGather: (r, s, c, d) => profiler.time({ cls: "collectives", bytes: bytes(c, d) }, () => comm.allGather(r, s, c, d)),
    reduceScatter: (r, s, c, d, op) => profiler.time({ cls: "collectives", bytes: bytes(c * comm.world, d) }, () => comm.reduceScatter(r, s, c, d, op)),
    broadcast: (b, c, d, root) => profiler.time({ cls: "collectives", bytes: bytes(c, d) }, () => comm.broadcast(b, c, d, root)),
    barrier: () => profiler.time({ cls: "collectives" }, () => comm.barrier()),
    close: () => comm.close(),
  };
}
