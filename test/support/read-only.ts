// Files the OS really refuses to write, for the tests of readers that must only read: a read-only
// bind mount of a folder, and an immutable file (chattr +i). As root a plain chmod stops nothing,
// so each helper checks that a write is refused before handing the path out, and says why not
// when this machine does not allow it (no root, no mount namespace, a filesystem without +i).
import { closeSync, existsSync, mkdirSync, openSync } from "node:fs";

/** Whether opening `path` for writing is refused (the errno), or null when it would be allowed. */
export function writeRefusal(path: string): string | null {
  try {
    closeSync(openSync(path, "r+"));
    return null;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? String(e);
  }
}

const run = (cmd: string[]) => Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
const why = (r: ReturnType<typeof run>) => r.stderr.toString().trim().split("\n")[0] || `exit ${r.exitCode}`;

export interface ReadOnlyMount {
  /** the folder that shows `src` read-only */
  path: string;
  release(): void;
}

/**
 * `src` seen read-only at `at` (mount --bind, then remount ro), checked by trying to open `probe`
 * (a file inside `src`) for writing; or a string saying why it could not be made.
 */
export function readOnlyBindMount(src: string, at: string, probe: string): ReadOnlyMount | string {
  mkdirSync(at, { recursive: true });
  const bind = run(["mount", "--bind", src, at]);
  if (bind.exitCode !== 0) return `mount --bind is not allowed here (${why(bind)})`;
  // lazy: the test process may still map files under it until they are collected
  const release = () => void run(["umount", "-l", at]);
  const ro = run(["mount", "-o", "remount,ro,bind", at]);
  if (ro.exitCode !== 0) {
    release();
    return `mount -o remount,ro,bind is not allowed here (${why(ro)})`;
  }
  const refused = writeRefusal(`${at}/${probe}`);
  if (refused !== "EROFS") {
    release();
    return `the read-only mount still lets ${probe} be opened for writing (${refused ?? "no error"})`;
  }
  return { path: at, release };
}

/** Make `path` immutable (chattr +i), checked by a refused write; or a string saying why not. */
export function makeImmutable(path: string): { release(): void } | string {
  if (!existsSync(path)) return `${path} does not exist`;
  const r = run(["chattr", "+i", path]);
  if (r.exitCode !== 0) return `chattr +i is not possible here (${why(r)})`;
  const release = () => void run(["chattr", "-i", path]);
  const refused = writeRefusal(path);
  if (refused !== "EPERM") {
    release();
    return `chattr +i left ${path} writable (${refused ?? "no error"})`;
  }
  return { release };
}
