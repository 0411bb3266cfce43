// Every command that writes a folder (export-hf, soup, import-hf through their sinks, prepare)
// writes it under a temporary sibling name and publishes it with one rename at the end, as
// checkpoints do: a failure (a bad checksum half way, a full disk, Ctrl-C) leaves no half-written
// output that a rerun would then refuse as "not empty". The temporary folder of a failed run is
// removed; one of a killed run (`<out>.tmp-<pid>`) is removed by the next run writing that output.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, rmdirSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { UserError } from "./errors.ts";
import { pidAlive } from "./process.ts";

const TMP_MARK = ".tmp-";

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

/** An output folder must be new or empty: we never mix our files with someone else's. */
export function checkFreshOutDir(dir: string, cmd: string): void {
  if (existsSync(dir) && (!statSync(dir).isDirectory() || readdirSync(dir).length > 0)) {
    throw new UserError(`${cmd}: output ${dir} already exists and is not empty; choose another --out or remove it`);
  }
}

/** Start writing folder `out` (`cmd` names the command in errors). */
export function stageOutputDir(out: string, cmd: string, opts: StageOptions = {}): StagedDir {
  out = resolve(out);
  if (!opts.merge) checkFreshOutDir(out, cmd);
  else if (existsSync(out) && !statSync(out).isDirectory()) throw new UserError(`${cmd}: output ${out} exists and is not a folder; choose another --out`);
  const parent = dirname(out), name = basename(out);
  mkdirSync(parent, { recursive: true });
  // debris of runs that were killed while writing this output
  for (const e of readdirSync(parent)) {
    if (!e.startsWith(name + TMP_MARK)) continue;
    const pid = Number(e.slice(name.length + TMP_MARK.length));
    if (Number.isInteger(pid) && pid !== process.pid && !pidAlive(pid)) rmSync(join(parent, e), { recursive: true, force: true });
  }
  const dir = `${out}${TMP_MARK}${process.pid}`;
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
      fsyncPath(dir);
      if (existsSync(out) && readdirSync(out).length > 0) {
        for (const e of entries) {
          if (existsSync(join(out, e))) throw new UserError(`${cmd}: ${join(out, e)} appeared while writing; nothing of this run was moved over it`);
        }
        for (const e of entries) renameSync(join(dir, e), join(out, e));
        rmdirSync(dir);
      } else {
        if (existsSync(out)) rmdirSync(out); // empty: replaced whole
        renameSync(dir, out);
      }
      fsyncPath(parent);
      done = true;
    },
    abort() {
      if (done) return;
      done = true;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
