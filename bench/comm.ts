// bun run bench:comm — all-reduce bus bandwidth of the shared-memory Comm (src/parallel/comm/shm-comm.ts)
// with 2 ranks on this host, sizes 1 KiB … 64 MiB, next to a plain memcpy of the same bytes
// measured in the same run (Float32Array.set, one core), plus the latency of an empty barrier.
//   bus bandwidth = 2·(W-1)/W · bytes / time  (NCCL's definition: comparable across world sizes)
// The parent spawns the ranks (RANK/WORLD_SIZE/... as olmo launch sets them), prints rank 0's
// table, and ends with one JSON object. BENCH_COMM_WORLD=N changes the rank count.
//   bun run bench:comm --nccl   NCCL through the CUDA library (NcclComm, what CUDA training uses),
//                               one rank per GPU (default: every GPU), bf16-free f32 sums on device
//                               buffers; the anchor is a device-to-device copy of the same bytes.
//                               With one GPU it runs NCCL at world 1 (the path, not a bandwidth).
import { loadavg } from "node:os";
import type { Backend } from "../src/backend/backend.ts";
import { NativeBackend, createBackend, cudaUsable } from "../src/backend/native-backend.ts";
import type { PtrComm } from "../src/parallel/comm/comm.ts";
import { freePort } from "../src/parallel/launch/launcher.ts";
import { deviceComms, initParallel } from "../src/parallel/init.ts";
import { NcclComm } from "../src/parallel/comm/nccl-comm.ts";

const NCCL = process.argv.includes("--nccl") || process.env.BENCH_COMM_IMPL === "nccl";

const SIZES = [1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20];

interface Row { bytes: number; allreduce_us: number; algbw_gbs: number; busbw_gbs: number; memcpy_gbs: number }

/** median of 7 timings of fn, in ms; iterations per timing scaled by size; `done` waits for
 *  asynchronous work (the GPU) before a timing ends */
function timeIt(fn: () => void, sync: () => void, bytes: number, done: () => void = () => {}): number {
  const iters = Math.max(1, Math.min(2000, Math.floor((8 << 20) / bytes)));
  const ts: number[] = [];
  for (let rep = 0; rep < 7; rep++) {
    sync();
    const t = performance.now();
    for (let i = 0; i < iters; i++) fn();
    done();
    ts.push((performance.now() - t) / iters);
  }
  ts.sort((a, b) => a - b);
  return ts[3];
}

/** One table row: NCCL's algorithm and bus bandwidth definitions, next to the copy anchor. */
function row(bytes: number, ms: number, memcpyMs: number, W: number): Row {
  const s = ms / 1000;
  return {
    bytes,
    allreduce_us: +(ms * 1000).toFixed(1),
    algbw_gbs: +(bytes / s / 1e9).toFixed(3),
    busbw_gbs: +(((2 * (W - 1)) / W) * (bytes / s) / 1e9).toFixed(3),
    memcpy_gbs: +(bytes / (memcpyMs / 1000) / 1e9).toFixed(3),
  };
}

/** NCCL ranks: the same table over device buffers; the anchor is a device-to-device copy. */
async function ncclRank(): Promise<void> {
  const be: Backend = createBackend("cuda", { localRank: Number(process.env.LOCAL_RANK ?? 0) });
  const par = await initParallel({ hostCollectives: false });
  const W = par.env.world;
  const comm: PtrComm = W === 1
    ? await NcclComm.create((be as NativeBackend).library, null, 0, 1) // world 1 still goes through NCCL
    : (await deviceComms(par, be, 1)).dp;
  const rows: Row[] = [];
  const big = SIZES.at(-1)!;
  const buf = be.alloc(big), dst = be.alloc(big);
  be.fillF32(buf, 1 / W, big / 4);
  for (const bytes of SIZES) {
    const n = bytes / 4;
    const op = () => comm.allReduce(buf, buf, n, "f32", "sum");
    for (let i = 0; i < 3; i++) op();
    // enqueue `iters` collectives, then wait for the device: timeIt's sync runs before each timing
    const ms = timeIt(() => op(), () => comm.barrier(), bytes, () => be.synchronize());
    const memcpyMs = timeIt(() => be.copy(dst, buf, bytes), () => be.synchronize(), bytes, () => be.synchronize());
    rows.push(row(bytes, ms, memcpyMs, W));
  }
  const barrierMs = timeIt(() => comm.barrier(), () => comm.barrier(), 4096);
  be.free(buf);
  be.free(dst);
  if (W === 1) comm.close();
  await par.close();
  if (par.env.rank === 0) console.log(JSON.stringify({ world: W, device: be.deviceName, barrier_us: +(barrierMs * 1000).toFixed(1), rows }));
}

async function rank(): Promise<void> {
  if (NCCL) return ncclRank();
  const par = await initParallel();
  const comm = par.comm!;
  const W = comm.world;
  const rows: Row[] = [];
  for (const bytes of SIZES) {
    const buf = new Float32Array(bytes / 4).fill(1 / W);
    for (let i = 0; i < 3; i++) comm.allReduce(buf, "sum"); // warm-up (JIT, page faults)
    const ms = timeIt(() => comm.allReduce(buf, "sum"), () => comm.barrier(), bytes);
    // memcpy on rank 0 only, while the others wait at the barrier (sleeping, not spinning)
    let memcpyMs = 0;
    if (comm.rank === 0) {
      const src = new Float32Array(bytes / 4).fill(1), dst = new Float32Array(bytes / 4);
      dst.set(src);
      memcpyMs = timeIt(() => dst.set(src), () => {}, bytes);
    }
    comm.barrier();
    rows.push(row(bytes, ms, memcpyMs, W));
  }
  const barrierMs = timeIt(() => comm.barrier(), () => comm.barrier(), 4096); // 2000 barriers per timing
  await par.close();
  if (comm.rank === 0) console.log(JSON.stringify({ world: W, barrier_us: +(barrierMs * 1000).toFixed(1), rows }));
}

async function parent(): Promise<void> {
  let W = Number(process.env.BENCH_COMM_WORLD ?? 2);
  if (NCCL) {
    const gpus = cudaUsable();
    if (typeof gpus !== "number") {
      console.error(`bench:comm --nccl: no usable GPU: ${gpus}`);
      process.exit(2);
    }
    W = Number(process.env.BENCH_COMM_WORLD ?? gpus);
  }
  const port = freePort();
  const procs = Array.from({ length: W }, (_, r) =>
    Bun.spawn([process.execPath, import.meta.path], {
      env: { ...process.env, RANK: String(r), WORLD_SIZE: String(W), LOCAL_RANK: String(r), LOCAL_WORLD_SIZE: String(W), MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port) },
      stdout: r === 0 ? "pipe" : "inherit",
      stderr: "inherit",
    }));
  const out = await new Response(procs[0].stdout as ReadableStream).text();
  const codes = await Promise.all(procs.map((p) => p.exited));
  if (codes.some((c) => c !== 0)) throw new Error(`bench ranks exited with ${codes.join(", ")}`);
  const res = JSON.parse(out.trim().split("\n").at(-1)!) as { world: number; device?: string; barrier_us: number; rows: Row[] };
  const fmt = (b: number) => (b >= 1 << 20 ? `${b >> 20} MiB` : `${b >> 10} KiB`);
  // Other processes on the host starve the ranks (they spin, then sleep): report the load too.
  const load = +loadavg()[0].toFixed(2);
  const what = NCCL ? `NCCL all-reduce (sum, f32) on ${res.device}, ${res.world} rank(s) (anchor: device-to-device copy)` : `shared-memory all-reduce (sum, f32), ${res.world} ranks, ${navigator.hardwareConcurrency} cores`;
  console.log(`${what}, load average ${load}; empty barrier ${res.barrier_us} µs`);
  console.log("   size        time     algbw     busbw    memcpy   busbw/memcpy");
  for (const r of res.rows) {
    console.log(`${fmt(r.bytes).padStart(7)} ${r.allreduce_us.toFixed(1).padStart(9)} µs ${r.algbw_gbs.toFixed(2).padStart(6)} GB/s ${r.busbw_gbs.toFixed(2).padStart(6)} GB/s ${r.memcpy_gbs.toFixed(2).padStart(6)} GB/s ${(r.busbw_gbs / r.memcpy_gbs).toFixed(2).padStart(8)}`);
  }
  console.log(JSON.stringify({ bench: "comm", impl: NCCL ? "nccl" : "shm", cores: navigator.hardwareConcurrency, loadavg_1m: load, ...res }));
}

if (process.env.RANK !== undefined) await rank();
else await parent();
