// The one staging rule (src/output-dir.ts): every writer publishes through it, a failed writer
// leaves nothing, the next successful writer of an output removes what killed writers left
// (`<out>.tmp-<pid>` of a dead pid), and a path too long for the filesystem is one line before
// anything is written. The commands are run through the CLI with debris planted from a real
// process that has exited.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { exportHf } from "../src/checkpoint/hf/folder.ts";
import { saveCheckpoint } from "../src/checkpoint/native/write.ts";
import { ModelConfigSchema } from "../src/model/config.ts";
import { paramSpecs, totalParams } from "../src/model/params.ts";
import { UserError } from "../src/errors.ts";
import { checkWritablePath, removeDeadStaging, stagingPath, writeFileAtomic } from "../src/output-dir.ts";
import { ensureNativeBuilt } from "./support/build.ts";
import { TINY_MODEL, tinyRunConfig, writeTinyTokens } from "./support/tiny-job.ts";

const root = resolve(import.meta.dir, "..");
const D = mkdtempSync(join(tmpdir(), "olmo-stage-"));
const p = (...x: string[]) => join(D, ...x);
/** a pid that was a real process and has exited */
const deadPid = Bun.spawnSync(["true"]).pid;

function olmo(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync([process.execPath, "src/cli/main.ts", ...args], { cwd: root, env: { ...process.env, OLMO_BACKEND: "cpu", OLMO_THREADS: "1" } });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** What a killed writer of `out` left: its staging folder with a half-written file (a staging file, for a file output). */
function plantDebris(out: string, file: boolean): string[] {
  const a = stagingPath(out, deadPid);
  if (file) writeFileSync(a, "<html>half");
  else {
    mkdirSync(a, { recursive: true });
    writeFileSync(join(a, "half-written.bin"), new Uint8Array(100));
  }
  return [a];
}

function arena(seed: number): Float32Array {
  const a = new Float32Array(totalParams(paramSpecs(ModelConfigSchema.parse(TINY_MODEL))));
  for (let i = 0; i < a.length; i++) a[i] = 0.02 * Math.sin(i * 0.37 + seed);
  return a;
}

beforeAll(() => {
  ensureNativeBuilt("cpu");
  const model = ModelConfigSchema.parse(TINY_MODEL);
  saveCheckpoint(p("ckpt"), "stage1-step3-tokens1B", { model, trainState: { step: 3 }, tensors: { model: arena(1), adamM: arena(2), adamV: arena(3).map(Math.abs) } });
  saveCheckpoint(p("ckpt2"), "stage1-step3-tokens1B", { model, trainState: { step: 3 }, tensors: { model: arena(4) } });
  exportHf(model, arena(5), p("hf"), { dtype: "f32" });
  writeFileSync(p("doc.txt"), "hello world\n");
  writeTinyTokens(p("tokens.u32"));
  writeFileSync(p("cfg.ts"), `export default ${JSON.stringify(tinyRunConfig("stage", p("tokens.u32"), { train: { steps: 2 }, checkpoint: { saveInterval: 0 } }))};\n`);
});
afterAll(() => rmSync(D, { recursive: true, force: true }));

const ckpt = () => p("ckpt", "stage1-step3-tokens1B");
const writers: { cmd: string; out: () => string; args: (out: string) => string[] }[] = [
  { cmd: "soup --format native", out: () => p("soup-native"), args: (o) => ["soup", ckpt(), p("ckpt2", "stage1-step3-tokens1B"), "--format", "native", "--out", o] },
  { cmd: "soup --format hf", out: () => p("soup-hf"), args: (o) => ["soup", ckpt(), p("ckpt2", "stage1-step3-tokens1B"), "--format", "hf", "--out", o] },
  { cmd: "import-hf", out: () => p("imported-hf"), args: (o) => ["import-hf", p("hf"), "--out", o] },
  { cmd: "import-olmo-core", out: () => p("imported-oc"), args: (o) => ["import-olmo-core", resolve(import.meta.dir, "checkpoint/olmo-core/fixtures/step5"), "--out", o] },
  { cmd: "export-hf", out: () => p("exported-hf"), args: (o) => ["export-hf", ckpt(), "--out", o] },
  { cmd: "export-olmo-core", out: () => p("exported-oc"), args: (o) => ["export-olmo-core", p("ckpt2", "stage1-step3-tokens1B"), "--out", o] },
  { cmd: "prepare", out: () => p("prepared"), args: (o) => ["prepare", p("doc.txt"), "--out", o] },
  { cmd: "report", out: () => p("report.html"), args: (o) => ["report", p("run"), "--out", o] },
];

describe("the next successful writer removes what killed writers left", () => {
  for (const w of writers) {
    test(`olmo ${w.cmd}`, () => {
      if (w.cmd === "report" && !existsSync(p("run", "metrics.jsonl"))) {
        expect(olmo(["train", p("cfg.ts"), `--run-dir=${p("run")}`, "--quiet"]).code).toBe(0);
      }
      const out = w.out(), debris = plantDebris(out, w.cmd === "report");
      const r = olmo(w.args(out));
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      expect(existsSync(out)).toBe(true);
      expect(debris.filter((d) => existsSync(d))).toEqual([]);
      // and it left none of its own
      expect(readdirSync(D).filter((e) => e.includes(".tmp-"))).toEqual([]);
    });
  }

  test("olmo train: a run's config.json is written whole, and a dead writer's config.json.tmp-<pid> is removed", () => {
    const run = p("run-config");
    mkdirSync(run, { recursive: true });
    writeFileSync(stagingPath(join(run, "config.json"), deadPid), "{\"half\":");
    const r = olmo(["train", p("cfg.ts"), `--run-dir=${run}`, "--quiet"]);
    expect(r.code).toBe(0);
    expect(readdirSync(run).filter((e) => e.includes(".tmp-"))).toEqual([]);
    expect(JSON.parse(readFileSync(join(run, "config.json"), "utf8")).name).toBe("stage");
  });
});

describe("a writer that fails on a full disk leaves nothing", () => {
  const full = p("full");
  mkdirSync(full);
  const mounted = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", full], { stderr: "pipe" });
  const why = mounted.exitCode === 0 ? null : `cannot mount a small tmpfs here (${mounted.stderr.toString().trim() || "needs root"})`;
  afterAll(() => {
    if (!why) Bun.spawnSync(["umount", "-l", full]);
  });

  test.skipIf(why !== null)(`olmo report into a 4 KiB filesystem: one line (ENOSPC), no report.html, no report.html.tmp-<pid>${why ? ` — skipped: ${why}` : ""}`, () => {
    if (!existsSync(p("run", "metrics.jsonl"))) expect(olmo(["train", p("cfg.ts"), `--run-dir=${p("run")}`, "--quiet"]).code).toBe(0);
    const r = olmo(["report", p("run"), "--out", join(full, "report.html")]);
    expect({ code: r.code, lines: r.stderr.trim().split("\n").length }).toEqual({ code: 2, lines: 1 });
    expect(r.stderr).toMatch(/ENOSPC|no space/i);
    expect(readdirSync(full)).toEqual([]);
  });
});

describe("removeDeadStaging and writeFileAtomic", () => {
  test("only the staging names of `out` whose pid is gone are removed", () => {
    const dir = p("unit"), out = join(dir, "out");
    mkdirSync(dir);
    const keep = [stagingPath(out, process.pid), stagingPath(out, process.ppid), `${out}.tmp-abc`, stagingPath(join(dir, "other"), deadPid), stagingPath(`${out}-2`, deadPid), `${out}.Old.tmp-${deadPid}`];
    const gone = [stagingPath(out, deadPid), stagingPath(`${out}.old`, deadPid), stagingPath(`${out}.pruned`, deadPid)];
    for (const f of [...keep, ...gone]) writeFileSync(f, "x");
    removeDeadStaging(out);
    expect(readdirSync(dir).sort()).toEqual(keep.map((f) => relative(dir, f)).sort());
  });

  test("writeFileAtomic replaces a file whole and leaves no staging file", () => {
    const f = p("atomic.txt");
    writeFileAtomic(f, "one");
    writeFileAtomic(f, new TextEncoder().encode("two"));
    expect(readFileSync(f, "utf8")).toBe("two");
    expect(readdirSync(D).filter((e) => e.startsWith("atomic.txt."))).toEqual([]);
  });

  test("a write refused by the OS removes the staging file (a folder in the way of the rename)", () => {
    const f = p("in-the-way");
    mkdirSync(join(f, "sub"), { recursive: true });
    expect(() => writeFileAtomic(f, "x")).toThrow();
    expect(readdirSync(D).filter((e) => e.startsWith("in-the-way."))).toEqual([]);
  });
});

describe("paths too long for the filesystem: one line, before anything is written", () => {
  test("a name over 255 bytes, a name whose staging name would be, a path past PATH_MAX", () => {
    const cases: [string, RegExp][] = [
      [p("a".repeat(256)), /the name "a{24}…" is 256 bytes, more than the 255 a file name may have/],
      [p("é".repeat(121)), /its name is written first as "<name>\.tmp-<pid>" \(up to 257 bytes\), more than the 255/],
      [p(...Array.from({ length: 21 }, () => "d".repeat(200))), /is \d{4} bytes long; with what is written below it \(up to \d+ bytes more\) it passes the 4096-byte path limit/],
    ];
    for (const [path, re] of cases) {
      let err: unknown;
      try {
        checkWritablePath(path, "output");
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(re);
      expect(existsSync(path)).toBe(false);
    }
    checkWritablePath(p("é".repeat(115)), "output"); // 230 bytes + ".tmp-<pid>" fits
  });

  test("olmo export-hf --out with a 250-byte name, olmo train --run-dir near PATH_MAX: one line, exit 2, nothing created", () => {
    const long = p("b".repeat(250));
    const r1 = olmo(["export-hf", ckpt(), "--out", long]);
    expect({ code: r1.code, lines: r1.stderr.trim().split("\n").length }).toEqual({ code: 2, lines: 1 });
    expect(r1.stderr).toMatch(/HF export: output ".*": its name is written first as "<name>\.tmp-<pid>"/);
    const deep = p("deep", ...Array.from({ length: 20 }, () => "d".repeat(200)));
    const r2 = olmo(["train", p("cfg.ts"), `--run-dir=${deep}`, "--quiet"]);
    expect({ code: r2.code, lines: r2.stderr.trim().split("\n").length }).toEqual({ code: 2, lines: 1 });
    expect(r2.stderr).toMatch(/run folder ".*" is \d{4} bytes long; .* passes the 4096-byte path limit; choose a shorter path/);
    expect(readdirSync(D).filter((e) => e.startsWith("b") || e === "deep")).toEqual([]);
  });
});

describe("every writer publishes through src/output-dir.ts", () => {
  // the lock protocol (link and rename of train.lock) and retiring a checkpoint before deleting it
  // rename files too, but publish nothing
  const RENAMES_ALLOWED = ["output-dir.ts", "train/run-lock.ts", "checkpoint/naming.ts"];
  const files = (dir: string): string[] => readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : f.endsWith(".ts") ? [join(dir, f)] : []));
  const code = (f: string) => readFileSync(f, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");

  test("no other file renames anything into place or names a staging suffix", () => {
    const src = join(root, "src"), bad: string[] = [];
    for (const f of files(src)) {
      const rel = relative(src, f), text = code(f);
      if (/\brenameSync\b/.test(text) && !RENAMES_ALLOWED.includes(rel)) bad.push(`${rel}: renameSync`);
      if (/\.tmp-/.test(text) && rel !== "output-dir.ts") bad.push(`${rel}: ".tmp-"`);
    }
    expect(bad).toEqual([]);
  });

  test("the scan sees a planted violation", () => {
    const planted = join(D, "planted.ts");
    writeFileSync(planted, 'import { renameSync } from "node:fs";\nrenameSync(`${out}.tmp-1`, out); // a comment .tmp- is fine\n');
    expect(/\brenameSync\b/.test(code(planted)) && /\.tmp-/.test(code(planted))).toBe(true);
    writeFileSync(planted, "// renameSync .tmp- in a comment only\n");
    expect(/\brenameSync\b/.test(code(planted)) || /\.tmp-/.test(code(planted))).toBe(false);
  });
});
