// The Worker entry files, named once. Each runs on a thread of its own: the rendezvous store of
// rank 0, the writer of asynchronous checkpoints, and the watch on `olmo launch`'s pipe. A compiled
// binary has no source tree: `bun build --compile` must be given these files as extra entry points
// (src/cli/compile.ts reads WORKER_FILES), and inside the binary they live at /$bunfs/root/<path>.
export const WORKER_FILES = {
  store: "src/parallel/store/store-worker.ts",
  save: "src/train/checkpointing/save-worker.ts",
  launcherWatch: "src/parallel/launch/launcher-watch-worker.ts",
} as const;

export type WorkerName = keyof typeof WORKER_FILES;

/** Where a Worker may find `name`'s script, in the order to try: the source tree, then the binary. */
export function workerUrls(name: WorkerName): string[] {
  const path = WORKER_FILES[name];
  const urls = [new URL(`../${path}`, import.meta.url).href];
  if (import.meta.url.includes("/$bunfs/")) urls.push(`/$bunfs/root/${path}`);
  return urls;
}

/**
 * Where no Worker could start, each opener falls back (the store serves from the main thread, the
 * save is synchronous, ranks go without the watch). OLMO_REQUIRE_WORKERS=1 makes that an error
 * instead: how a compiled binary is checked to carry its entry files.
 */
export function workerMissing(name: WorkerName): void {
  if (process.env.OLMO_REQUIRE_WORKERS === "1") {
    throw new Error(`the ${name} worker (${WORKER_FILES[name]}) could not start (OLMO_REQUIRE_WORKERS=1)`);
  }
}
