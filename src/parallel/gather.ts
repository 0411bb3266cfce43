// Gathering a device tensor's shards to one rank's host memory (checkpoint saves under tensor
// parallelism): a chunked all-gather through a bounded device buffer, so the device needs at most
// 64 MiB extra whatever the tensor size and the host holds only the result.
import type { Backend, DevPtr } from "../backend/backend.ts";
import type { PtrComm } from "./comm.ts";

const BUFFER_BYTES = 64 << 20;

/**
 * Collective over `comm`: each rank passes `n` floats at device address `src`; on the ranks that pass
 * `out` (length world·n) it receives rank q's floats at out[q·n, (q+1)·n).
 */
export function gatherToHost(be: Backend, comm: PtrComm, src: DevPtr, n: number, out: Float32Array | null, bufferBytes = BUFFER_BYTES): void {
  const W = comm.world;
  if (out && out.length !== W * n) throw new Error(`gatherToHost: out has ${out.length} elements, want ${W} × ${n}`);
  if (n === 0) return;
  const chunk = Math.max(1, Math.min(n, Math.floor(bufferBytes / 4 / W)));
  const buf = be.alloc(W * chunk * 4);
  try {
    for (let off = 0; off < n; off += chunk) {
      const c = Math.min(chunk, n - off);
      const mine = buf + comm.rank * c * 4;
      be.copy(mine, src + off * 4, c * 4);
      comm.allGather(buf, mine, c, "f32");
      if (out) for (let q = 0; q < W; q++) be.download(out.subarray(q * n + off, q * n + off + c), buf + q * c * 4);
    }
  } finally {
    be.free(buf);
  }
}
