// One trainer per run folder: `olmo train` takes <runDir>/train.lock before it reads or writes
// anything there, and a second trainer on the same folder is refused in one line (two would log
// every step twice and race their saves). The lock file names its holder (pid, host, the pid's
// start time); a lock whose holder is gone — a kill -9, a crash — is taken over: the pid is dead,
// or it was reused by another process (its start time differs). A lock from another host cannot be
// checked from here and is refused, naming the host. Under `olmo launch` / torchrun / srun all ranks
// of one job share the folder and only rank 0 holds the lock.
import { existsSync, linkSync, mkdirSync, readFileSync, readdirSync, renameSync, rmdirSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, join, resolve } from "node:path";
import { UserError } from "../errors.ts";
import { parseJson } from "../input.ts";
import { pidAlive } from "../process.ts";

export const LOCK_FILE = "train.lock";

interface Holder {
  pid: number;
  host: string;
  /** the pid's start time (/proc/<pid>/stat field 22, clock ticks since boot): tells a reused pid */
  pidStart: string | null;
  since: string;
}

/** Start time of a live process, or null (no such process, or no /proc here). */
function pidStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses; fields follow the last ')'
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/** Whether the process that wrote `h` still runs (on this host). */
function holderAlive(h: Holder): boolean {
  if (!pidAlive(h.pid)) return false;
  const start = pidStartTime(h.pid);
  return h.pidStart === null || start === null || start === h.pidStart;
}

function readHolder(path: string): Holder | null {
  try {
    const h = parseJson(readFileSync(path, "utf8")) as Holder | null;
    return h !== null && Number.isSafeInteger(h.pid) && typeof h.host === "string" ? h : null;
  } catch {
    return null; // unreadable: a holder killed while writing it (we write it whole, then link)
  }
}

export interface RunLock {
  path: string;
  release(): void;
}

/** Take the run folder's lock (creating the folder), or throw a one-line UserError naming the holder. */
export function acquireRunLock(runDir: string): RunLock {
  // the first folder this creates (mkdirSync names it; undefined when the run folder existed)
  const firstCreated = mkdirSync(runDir, { recursive: true });
  const path = join(runDir, LOCK_FILE);
  const me: Holder = { pid: process.pid, host: hostname(), pidStart: pidStartTime(process.pid), since: new Date().toISOString() };
  // written whole under a private name, then linked into place: link(2) fails if the lock exists,
  // so exactly one of two racing trainers gets it, and nobody ever reads a half-written lock
  const mine = `${path}.${process.pid}`;
  writeFileSync(mine, JSON.stringify(me) + "\n");
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(mine, path);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        if (attempt > 3) throw new UserError(`run folder ${runDir}: could not take ${path} (other trainers keep replacing it)`);
      }
      const h = readHolder(path);
      if (h && h.host !== me.host) {
        throw new UserError(`run folder ${runDir} is locked by olmo train pid ${h.pid} on host ${h.host} (since ${h.since}): one trainer per run folder; if that run is gone, remove ${path}`);
      }
      if (h && holderAlive(h)) {
        throw new UserError(`run folder ${runDir} is in use by another olmo train (pid ${h.pid}, since ${h.since}): two trainers would log every step twice and race their saves; stop it or choose another --run-dir`);
      }
      // a dead holder's lock: move it aside (atomic), check that it is the one we judged, retry
      const stale = `${path}.stale-${process.pid}`;
      try {
        renameSync(path, stale);
      } catch {
        continue; // someone else moved it first
      }
      const moved = readHolder(stale);
      if (moved && h && moved.pid !== h.pid) {
        try {
          linkSync(stale, path); // a racer's fresh lock: put it back
        } catch {
          // a third trainer took the place meanwhile: it holds the lock, we retry against it
        }
      }
      unlinkSync(stale);
    }
  } finally {
    unlinkSync(mine);
  }
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    process.off("exit", release);
    if (readHolder(path)?.pid === process.pid) unlinkSync(path);
    // a run that failed before writing anything leaves no folder behind either: the run folder and
    // every parent the lock created for it (OLMO_CKPT_ROOT/stage2-ingredient3), while empty
    if (firstCreated === undefined) return;
    for (let dir = resolve(runDir); ; dir = dirname(dir)) {
      if (!existsSync(dir) || readdirSync(dir).length > 0) return;
      rmdirSync(dir);
      if (dir === resolve(firstCreated) || dirname(dir) === dir) return;
    }
  };
  process.on("exit", release);
  return { path, release };
}
