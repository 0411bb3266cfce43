// The one staging rule of every writer (checkpoints, export-hf, soup, import-hf, import-olmo-core,
// export-olmo-core, prepare, report, a run's config.json, the data caches): what it writes appears
// whole or not at all. A folder or file is written under the temporary sibling name
// `<out>.tmp-<pid>`, fsynced, and published with one rename; a failed writer removes its temporary
// name; the temporary name of a killed writer (its pid is gone) is removed by the next writer of
// that output. Names are checked first against the filesystem's limits, the temporary suffix
// included, so a path that is too long is one line before anything is written. Nothing else in
// src/ renames anything into place (test/output-dir.test.ts holds every file to that).
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, rmdirSync, statSync, writeSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { UserError } from "./errors.ts";
import { pidAlive } from "./process.ts";

const TMP_MARK = ".tmp-";
/** the longest file or folder name (bytes) Linux and macOS filesystems take */
export const NAME_MAX_BYTES = 255;
/** the longest path (bytes, its terminating NUL included) Linux takes */
export const PATH_MAX_BYTES = 4096;
/** what `.tmp-<pid>` adds to a name at most (pid_max is at most 2^22 on Linux) */
const STAGING_SUFFIX_BYTES = TMP_MARK.length + 10;

/** The temporary name a writer of `final` uses (a parallel save names rank 0's pid). */
export function stagingPath(final: string, pid = process.pid): string {
  return `${final}${TMP_MARK}${pid}`;
}

/** The pid in a staging name `<anything>.tmp-<pid>`, or null for any other name. */
export function stagingPid(name: string): number | null {
  const i = name.lastIndexOf(TMP_MARK);
  if (i < 0) return null;
  const tail = name.slice(i + TMP_MARK.length);
  return /^\d+$/.test(tail) ? Number(tail) : null;
}

/** A staging name of a writer that is gone (not this process, not a live one). */
export function isDeadStaging(name: string): boolean {
  const pid = stagingPid(name);
  return pid !== null && pid !== process.pid && !pidAlive(pid);
}

/**
 * `path` (a file or folder about to be written, with `reserveBytes` more below it) fits the
 * filesystem: every name ≤ NAME_MAX (its staging name too) and the whole ≤ PATH_MAX. `what` names
 * the path in the message.
 */
export function checkWritablePath(path: string, what: string, reserveBytes = 0): void {
  const abs = resolve(path);
  for (const name of abs.split("/")) {
    const bytes = Buffer.byteLength(name);
    if (bytes > NAME_MAX_BYTES) {
      throw new UserError(`${what} ${JSON.stringify(abs)}: the name ${JSON.stringify(`${name.slice(0, 24)}…`)} is ${bytes} bytes, more than the ${NAME_MAX_BYTES} a file name may have`);
    }
  }
  const last = Buffer.byteLength(basename(abs)) + STAGING_SUFFIX_BYTES;
  if (last > NAME_MAX_BYTES) {
    throw new UserError(`${what} ${JSON.stringify(abs)}: its name is written first as "<name>${TMP_MARK}<pid>" (up to ${last} bytes), more than the ${NAME_MAX_BYTES} a file name may have; choose a shorter name`);
  }
  const total = Buffer.byteLength(abs) + STAGING_SUFFIX_BYTES + reserveBytes;
  if (total >= PATH_MAX_BYTES) {
    throw new UserError(`${what} ${JSON.stringify(abs)} is ${Buffer.byteLength(abs)} bytes long; with what is written below it (up to ${total - Buffer.byteLength(abs)} bytes more) it passes the ${PATH_MAX_BYTES}-byte path limit; choose a shorter path`);
  }
}

/** Remove what killed writers of `final` left: `<final>.tmp-<pid>` and `<final>.<word>.tmp-<pid>` of dead pids. */
export function removeDeadStaging(final: string): void {
  const parent = dirname(final), name = basename(final);
  if (!existsSync(parent)) return;
  for (const e of readdirSync(parent)) {
    if (!e.startsWith(`${name}.`)) continue;
    const mid = e.slice(name.length, e.lastIndexOf(TMP_MARK));
    if ((mid === "" || /^\.[a-z]+$/.test(mid)) && isDeadStaging(e)) rmSync(join(parent, e), { recursive: true, force: true });
  }
}

/** fsync a file or a folder (a folder: its entries, so a rename into it is durable). */
export function fsyncPath(p: string): void {
  const fd = openSync(p, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Publish the staged folder `tmp` (its files already fsynced) as `final` with one rename. With
 * `replace`, an existing `final` is first renamed aside (invisible to readers: a staging name) and
 * removed after; without, `final` must not exist or be an empty folder.
 */
export function publishDir(tmp: string, final: string, opts: { replace?: boolean } = {}): void {
  fsyncPath(tmp);
  if (existsSync(final) && opts.replace) {
    const aside = stagingPath(`${final}.old`);
    renameSync(final, aside);
    renameSync(tmp, final);
    rmSync(aside, { recursive: true, force: true });
  } else {
    if (existsSync(final)) rmdirSync(final); // empty (checked by the caller): replaced whole
    renameSync(tmp, final);
  }
  fsyncPath(dirname(final));
}

export interface StagedDir {
  /** where to write: the temporary folder */
  readonly dir: string;
  /** the final path */
  readonly out: string;
  /** fsync what was written and publish it under `out` */
  commit(): void;
  /** remove the temporary folder (idempotent; a no-op after commit) */
  abort(): void;
}

export interface StageOptions {
  /** `out` may already hold other files (prepare into a data folder): the new entries are moved in
   *  one by one at commit, each rename atomic; without it `out` must be new or empty */
  merge?: boolean;
  /** bytes of the longest path written below the folder (names checked against PATH_MAX) */
  reserveBytes?: number;
}

/** An output folder must be new or empty: we never mix our files with someone else's. */
export function checkFreshOutDir(dir: string, cmd: string): void {
  if (existsSync(dir) && (!statSync(dir).isDirectory() || readdirSync(dir).length > 0)) {
    throw new UserError(`${cmd}: output ${dir} already exists and is not empty; choose another --out or remove it`);
  }
}

/** Start writing folder `out` (`cmd` names the command in errors). */
export function stageOutputDir(out: string, cmd: string, opts: StageOptions = {}): StagedDir {
  out = resolve(out);
  checkWritablePath(out, `${cmd}: output`, opts.reserveBytes ?? 64);
  if (!opts.merge) checkFreshOutDir(out, cmd);
  else if (existsSync(out) && !statSync(out).isDirectory()) throw new UserError(`${cmd}: output ${out} exists and is not a folder; choose another --out`);
  mkdirSync(dirname(out), { recursive: true });
  removeDeadStaging(out);
  const dir = stagingPath(out);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  let done = false;
  return {
    dir,
    out,
    commit() {
      if (done) throw new Error(`stageOutputDir: ${out} was already committed or aborted`);
      const entries = readdirSync(dir);
      for (const e of entries) if (statSync(join(dir, e)).isFile()) fsyncPath(join(dir, e));
      if (existsSync(out) && readdirSync(out).length > 0) {
        fsyncPath(dir);
        for (const e of entries) {
          if (existsSync(join(out, e))) throw new UserError(`${cmd}: ${join(out, e)} appeared while writing; nothing of this run was moved over it`);
        }
        for (const e of entries) renameSync(join(dir, e), join(out, e));
        rmdirSync(dir);
        fsyncPath(out);
      } else {
        publishDir(dir, out);
      }
      done = true;
    },
    abort() {
      if (done) return;
      done = true;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Write the file `path` whole: `<path>.tmp-<pid>` is written, fsynced and renamed over `path` (a
 * reader sees the old file or the new one, never a part); a failure (a full disk) removes it.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, what = "output"): void {
  checkWritablePath(path, what);
  removeDeadStaging(path);
  const tmp = stagingPath(path);
  const bytes = typeof data === "string" ? Buffer.from(data) : data;
  try {
    const fd = openSync(tmp, "w");
    try {
      for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncPath(dirname(path));
}
