// Asynchronous checkpoint saves (checkpoint.async): the training thread snapshots what this rank
// owns into a shared host pool, page-locked on CUDA (device → host, the only part the step waits for), hands the job to a
// Worker (its entry file is named in src/workers.ts) and trains on while it writes. At most one save is in flight: the next
// save, the end of the run and a stop wait for it; a failed background write is reported at the next
// step and stops the run. The training thread runs no event loop while it trains, so the worker
// answers through a status word on a SharedArrayBuffer (Atomics), never through messages.
import type { Backend } from "../../backend/backend.ts";
import { UserError } from "../../errors.ts";
import { workerMissing, workerUrls } from "../../workers.ts";
import { type SaveJob, STATUS, STATUS_BYTES, readStatusText } from "./async-save-protocol.ts";

export class AsyncSaver {
  /** the snapshot pool: this rank's owned parts of every saved group */
  readonly pool: Float32Array;
  private readonly worker: Worker;
  private readonly status: Int32Array;
  private readonly text: Uint8Array;
  private inFlight: number | null = null;
  /** undoes the page-locking of the pool (CUDA: pinned memory makes the snapshot copy faster) */
  private unpin: () => void = () => {};

  private constructor(worker: Worker, poolFloats: number) {
    this.worker = worker;
    const pool = new SharedArrayBuffer(Math.max(4, poolFloats * 4));
    const status = new SharedArrayBuffer(STATUS_BYTES);
    this.pool = new Float32Array(pool);
    this.status = new Int32Array(status, 0, 2);
    this.text = new Uint8Array(status, 8);
    worker.postMessage({ op: "init", pool, status });
  }

  /**
   * A saver with a pool of `poolFloats`, or null where no Worker can start (a compiled binary built
   * without the save worker as an entry point): the caller then saves synchronously.
   */
  static open(poolFloats: number, be?: Backend, log: (l: string) => void = () => {}): AsyncSaver | null {
    for (const url of workerUrls("save")) {
      let worker: Worker;
      try {
        worker = new Worker(url);
      } catch {
        continue;
      }
      const saver = new AsyncSaver(worker, poolFloats);
      // a worker that cannot load its script never answers (no exception here): wait for its hello
      if (Atomics.wait(saver.status, 0, STATUS.idle, 10_000) !== "timed-out" && Atomics.load(saver.status, 0) === STATUS.ready) {
        Atomics.store(saver.status, 0, STATUS.idle);
        // page-locking only speeds the snapshot up: without it the save still works
        try {
          if (be) saver.unpin = be.pinHost(saver.pool);
        } catch (e) {
          log(`checkpoint.async: the snapshot pool stays pageable (${(e as Error).message.split("\n")[0]})`);
        }
        return saver;
      }
      worker.terminate();
    }
    workerMissing("save");
    return null;
  }

  /** The step of the save in flight, or null. */
  get pending(): number | null {
    return this.inFlight;
  }

  /** Start writing a snapshot already in the pool. Only when no save is in flight. */
  begin(job: SaveJob): void {
    if (this.inFlight !== null) throw new Error(`AsyncSaver: the save of step ${this.inFlight} is still in flight`);
    Atomics.store(this.status, 0, STATUS.busy);
    this.inFlight = job.step;
    this.worker.postMessage({ op: "save", job });
  }

  /**
   * Without blocking: the path published by the save in flight if it finished (then nothing is in
   * flight any more), else null; throws a one-line error if it failed.
   */
  poll(): string | null {
    if (this.inFlight === null) return null;
    const state = Atomics.load(this.status, 0);
    if (state === STATUS.busy) return null;
    const step = this.inFlight, message = readStatusText(this.text);
    this.inFlight = null;
    Atomics.store(this.status, 0, STATUS.idle);
    if (state === STATUS.failed) throw new UserError(`the checkpoint of step ${step} failed while it was written in the background: ${message}`);
    return message;
  }

  /** Block until the save in flight (if any) is published; its path, or null if none was in flight. */
  wait(): string | null {
    while (this.inFlight !== null && Atomics.load(this.status, 0) === STATUS.busy) Atomics.wait(this.status, 0, STATUS.busy, 1000);
    return this.poll();
  }

  close(): void {
    this.worker.terminate();
    this.unpin();
    this.unpin = () => {};
  }
}
