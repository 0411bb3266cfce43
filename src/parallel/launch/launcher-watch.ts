// Ranks die with their launcher. `olmo launch` gives each rank a pipe as stdin and never writes to
// it (OLMO_LAUNCHER_PIPE=1); if the launcher dies — even by kill -9, which runs no cleanup — the
// kernel closes the pipe and the rank's watch thread sees end of file and stops the rank, instead of
// leaving it training on with nobody reading its output. The watch runs on a Worker because the
// training loop keeps the main thread busy for the whole run (no timer or stdin event would fire).
// prctl(PR_SET_PDEATHSIG) would need FFI into libc; the pipe needs nothing but a thread.
import { fstatSync } from "node:fs";
import { workerMissing, workerUrls } from "../../workers.ts";

let started = false;

/**
 * Start watching the launcher's pipe, once per process, when this rank was started by `olmo launch`;
 * resolves once the watch thread runs (a main thread that then blocks for hours cannot delay it).
 */
export async function watchLauncher(env: Record<string, string | undefined> = process.env, graceMs = 5000): Promise<boolean> {
  if (started || env.OLMO_LAUNCHER_PIPE !== "1") return started;
  try {
    const st = fstatSync(0);
    if (!st.isFIFO() && !st.isSocket()) return false; // Bun.spawn's "pipe" is a socket pair
  } catch {
    return false;
  }
  for (const url of workerUrls("launcherWatch")) {
    let w: Worker | undefined;
    try {
      const worker = (w = new Worker(url));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("the launcher watch did not start in 10 s")), 10_000);
        worker.onmessage = () => {
          clearTimeout(timer);
          resolve();
        };
        worker.onerror = (ev) => {
          clearTimeout(timer);
          reject(new Error(ev.message));
        };
        worker.postMessage({ graceMs });
      });
      worker.unref(); // the watch never keeps a finished rank alive
      started = true;
      return true;
    } catch {
      w?.terminate(); // try the next place
    }
  }
  workerMissing("launcherWatch");
  return false;
}
