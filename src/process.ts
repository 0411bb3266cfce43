// Facts about other processes on this host, for the files that name one (temporary folders of a
// save, the run folder's lock, a peer rank a collective waits for): a leaf every module may use.
import { existsSync, readFileSync, statSync } from "node:fs";

/** true while a process with this pid exists (EPERM: it exists, owned by another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * true when the process `pid` is certainly gone from this host: no such process, or a zombie (it
 * exited and its parent has not reaped it yet, e.g. a rank SIGKILLed under torchrun until the agent
 * polls). false when it runs or when /proc cannot say (then nothing is concluded from it).
 */
export function processGone(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT" && existsSync("/proc/self/stat");
  }
  // "pid (comm) S ...": the state follows the last ")" (comm may hold spaces and parentheses)
  const state = stat[stat.lastIndexOf(")") + 2];
  return state === "Z" || state === "X";
}

/**
 * This process's pid namespace (the inode of /proc/self/ns/pid), or null where /proc does not
 * say: pids name the same processes only between two processes of one namespace.
 */
export function pidNamespace(): number | null {
  try {
    return statSync("/proc/self/ns/pid").ino;
  } catch {
    return null;
  }
}
