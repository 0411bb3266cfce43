// The background half of an asynchronous checkpoint save, on a Worker thread: it writes this rank's
// snapshot (already copied off the device into a shared pool) into the save's temporary directory;
// rank 0 then waits for every other rank's part, writes the metadata last, publishes the directory
// with one rename and prunes old checkpoints — the same steps and atomicity as a synchronous save.
// The training thread never runs its event loop while it trains, so results come back through a
// shared status word (Atomics), not messages: see async-save.ts.
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { NativeWriter, partFile } from "../../checkpoint/native/write.ts";
import { pruneCheckpoints } from "../../checkpoint/naming.ts";
import { type SaveJob, STATUS, writeStatus } from "./async-save-protocol.ts";

declare const self: Worker;
let pool: Float32Array | null = null;
let status: Int32Array | null = null;
let text: Uint8Array | null = null;

function waitForParts(tmp: string, world: number, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  for (let r = 1; r < world; r++) {
    while (!existsSync(join(tmp, partFile(r)))) {
      if (Date.now() > deadline) throw new Error(`rank ${r} did not finish its part of ${tmp} within ${timeoutMs / 1000} s`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20); // sleep 20 ms
    }
  }
}

function run(job: SaveJob): string {
  const w = new NativeWriter(job.finalPath, job.model, { compress: job.compress, tmp: job.tmp, rank: job.rank, joinTmp: true });
  try {
    for (const r of job.regions) w.addRegion(r.group, r.name, r.ranges, pool!.subarray(r.at, r.at + r.length));
    if (!job.main) {
      w.finishPart();
      return job.finalPath;
    }
    if (job.parts) waitForParts(job.tmp, job.parts.world, job.partsTimeoutMs);
    const path = w.finish(job.meta, job.parts ?? undefined);
    pruneCheckpoints(job.runDir, job.keep, job.ephemeral);
    return path;
  } catch (e) {
    w.abort();
    // rank 0 created the temporary folder (on the training thread): a failed save removes it, as a synchronous one does
    if (job.main) rmSync(job.tmp, { recursive: true, force: true });
    throw new Error(`${(e as Error).message.split("\n")[0]} (writing ${job.tmp})`);
  }
}

self.onmessage = (ev: MessageEvent) => {
  const m = ev.data as { op: "init"; pool: SharedArrayBuffer; status: SharedArrayBuffer } | { op: "save"; job: SaveJob };
  if (m.op === "init") {
    pool = new Float32Array(m.pool);
    status = new Int32Array(m.status, 0, 2);
    text = new Uint8Array(m.status, 8);
    Atomics.store(status, 0, STATUS.ready);
    Atomics.notify(status, 0);
    return;
  }
  try {
    writeStatus(status!, text!, STATUS.done, run(m.job));
  } catch (e) {
    writeStatus(status!, text!, STATUS.failed, (e as Error).message.split("\n")[0]);
  }
};
