// NcclComm: PtrComm over the CUDA library's olmo_comm_* (NCCL, loaded lazily by the library).
// Bootstrap: rank 0 asks NCCL for a 128-byte unique id and publishes it in the rendezvous store;
// every rank then calls olmo_comm_init (ncclCommInitRank, which blocks until all ranks joined).
// Collectives are enqueued on the library stream, ordered with the kernels around them; only
// barrier() synchronizes the host (an all-reduce of one float, then olmo_synchronize).
//
// Every wait has a deadline (cuda/gpu/comm.cu): non-blocking initialization polled until the group
// is complete, and a watchdog thread that aborts the communicators and ends the process with one
// line when a collective does not complete within OLMO_COMM_TIMEOUT_S (validated here first).
//
// With the CPU library every olmo_comm_* call reports "unsupported" and create() fails with
// that message: CPU runs use the shared-memory collectives instead (parallel/init.ts deviceComms).
import type { DevPtr, Dtype } from "../../backend/backend.ts";
import { DTYPE_BF16, DTYPE_F32, type NativeLibrary } from "../../native/lib.ts";
import type { PtrComm, ReduceOp } from "./comm.ts";
import { commTimeoutMs } from "../env.ts";
import type { Rendezvous } from "../store/rendezvous.ts";

const OPS: Record<ReduceOp, number> = { sum: 0, max: 1, avg: 2 };
const dt = (d: Dtype) => (d === "bf16" ? DTYPE_BF16 : DTYPE_F32);

export class NcclComm implements PtrComm {
  private closed = false;

  private constructor(private lib: NativeLibrary, private comm: number, private scratch: number, readonly rank: number, readonly world: number) {}

  /**
   * Collective over the group: each member calls it with its group rank (after olmo_init picked its
   * GPU = LOCAL_RANK). `key` must be unique per group (e.g. "olmo/group/tp0"). olmo_comm_init blocks
   * the thread until the group is complete, which is why the store runs on a Worker (store.ts).
   */
  static async create(lib: NativeLibrary, store: Rendezvous | null, rank: number, world: number, key = "olmo/nccl"): Promise<NcclComm> {
    commTimeoutMs(); // the library reads OLMO_COMM_TIMEOUT_S itself: refuse a bad value here, in one line
    const id = new Uint8Array(128);
    if (rank === 0) lib.check("olmo_comm_unique_id", lib.sym.olmo_comm_unique_id(id));
    if (world > 1) id.set(Buffer.from(await store!.fromRank0(`${key}/id`, rank, Buffer.from(id).toString("base64")), "base64"));
    const out = new BigUint64Array(128); // ≥1 KiB: small typed arrays can move under the JIT
    lib.check("olmo_comm_init", lib.sym.olmo_comm_init(out, id, world, rank));
    const comm = Number(out[0]);
    lib.check("olmo_alloc", lib.sym.olmo_alloc(out, 4));
    return new NcclComm(lib, comm, Number(out[0]), rank, world);
  }

  allReduce(recv: DevPtr, send: DevPtr, count: number, dtype: Dtype, op: ReduceOp): void {
    this.lib.check("olmo_comm_all_reduce", this.lib.sym.olmo_comm_all_reduce(this.comm as never, recv as never, send as never, count, dt(dtype), OPS[op]));
  }

  allGather(recv: DevPtr, send: DevPtr, sendCount: number, dtype: Dtype): void {
    this.lib.check("olmo_comm_all_gather", this.lib.sym.olmo_comm_all_gather(this.comm as never, recv as never, send as never, sendCount, dt(dtype)));
  }

  reduceScatter(recv: DevPtr, send: DevPtr, recvCount: number, dtype: Dtype, op: ReduceOp): void {
    this.lib.check("olmo_comm_reduce_scatter", this.lib.sym.olmo_comm_reduce_scatter(this.comm as never, recv as never, send as never, recvCount, dt(dtype), OPS[op]));
  }

  broadcast(buf: DevPtr, count: number, dtype: Dtype, root: number): void {
    this.lib.check("olmo_comm_broadcast", this.lib.sym.olmo_comm_broadcast(this.comm as never, buf as never, count, dt(dtype), root));
  }

  barrier(): void {
    this.allReduce(this.scratch, this.scratch, 1, "f32", "sum");
    this.lib.check("olmo_synchronize", this.lib.sym.olmo_synchronize());
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.lib.check("olmo_comm_destroy", this.lib.sym.olmo_comm_destroy(this.comm as never));
    this.lib.check("olmo_free", this.lib.sym.olmo_free(this.scratch as never));
  }
}
