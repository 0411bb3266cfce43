// The launcher watch's thread (see launcher-watch.ts): block reading fd 0, the pipe from `olmo
// launch`, which the launcher never writes; end of file means the launcher is gone (exited or
// killed, even by SIGKILL: the kernel closes its end). Then stop this whole process: SIGTERM, and
// SIGKILL if it still runs after the grace period (a SIGTERM handler cannot run while the main
// thread is busy in a training step).
import { readSync } from "node:fs";

declare const self: Worker;

self.onmessage = (ev: MessageEvent) => {
  const { graceMs } = ev.data as { graceMs: number };
  postMessage("watching");
  // after this turn of the event loop, so the reply above is delivered before the read blocks it
  setTimeout(() => {
    const buf = new Uint8Array(256);
    try {
      while (readSync(0, buf, 0, buf.length, null) > 0) {
        // the launcher writes nothing; keep waiting for the end of the pipe
      }
    } catch {
      // a read error on the pipe is the same news
    }
    process.kill(process.pid, "SIGTERM");
    setTimeout(() => process.kill(process.pid, "SIGKILL"), graceMs);
  }, 0);
};
