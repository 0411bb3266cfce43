// `bun run compile` → one executable that runs the embedded default training from an empty folder
// with no Bun, no node_modules and no checkout: native libraries, the tokenized Brown corpus, the
// default config and the cl100k tokenizer (also for the tokenizer files of an HF export) are all inside it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { dolma2TokenizerJson, specialTokensMapJson } from "../../src/checkpoint/hf/tokenizer.ts";
import { commands } from "../../src/cli/commands.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { cpuLibraryNeeds, hidingUnavailable, runWithoutLibraries } from "../support/hide-libs.ts";

const root = resolve(import.meta.dir, "../..");
const D = mkdtempSync(join(tmpdir(), "olmo-compile-"));
const work = join(D, "empty"); // where the binary is copied to and run: nothing else in it
const bare = { PATH: join(D, "no-bin"), HOME: work, TMPDIR: join(D, "tmp") }; // no bun on PATH

function compile(out: string, ...flags: string[]): void {
  const p = Bun.spawnSync([process.execPath, "src/cli/compile.ts", ...flags, out], { cwd: root, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`compile failed:\n${p.stderr.toString()}${p.stdout.toString()}`);
}

function olmo(bin: string, ...args: string[]) {
  const p = Bun.spawnSync([join(work, bin), ...args], { cwd: work, env: bare, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

beforeAll(() => {
  ensureNativeBuilt("cpu");
  for (const d of [work, bare.PATH, bare.TMPDIR]) mkdirSync(d, { recursive: true });
  compile(join(D, "olmo"));
  compile(join(D, "olmo-cpu"), "--no-cuda");
  copyFileSync(join(D, "olmo"), join(work, "olmo"));
  copyFileSync(join(D, "olmo-cpu"), join(work, "olmo-cpu"));
  Bun.spawnSync(["chmod", "+x", join(work, "olmo"), join(work, "olmo-cpu")]);
}, 120_000);

afterAll(() => rmSync(D, { recursive: true, force: true }));

describe("dist/olmo: a single executable", () => {
  test("--help lists every command; --version says what is embedded", () => {
    const h = olmo("olmo", "--help");
    expect(h.code).toBe(0);
    for (const c of commands) expect(h.out).toContain(c.name);
    const v = olmo("olmo", "--version");
    expect(v.code).toBe(0);
    expect(v.out).toMatch(/^olmo \d+\.\d+\.\d+ .*compiled .*libolmo_cpu\.so.*Brown corpus/);
    if (existsSync(join(root, "build/libolmo_cuda.so"))) expect(v.out).toContain("libolmo_cuda.so,");
  });

  test("trains the embedded default run for 3 steps in an empty folder, then soups and inspects", () => {
    const t = olmo("olmo", "train", "--train.steps=3", "--train.sampleTokens=2", "--checkpoint.saveInterval=0", "--train.logEvery=1",
      `--eval.sets=${JSON.stringify([{ embedded: "brown-heldout", instances: "windows", maxTokens: 1024 }])}`);
    expect({ code: t.code, err: t.err }).toEqual({ code: 0, err: "" });
    expect(t.out).toMatch(/step 3\/3 \| loss \d+\.\d+/);
    expect(t.out).toMatch(/loss: first 11\.\d+ \(step 1\) → last \d+\.\d+ \(step 3\).* \| brown-heldout \d+\.\d{4} \(step 3\)/);
    const ck = join(work, "runs/tiny/stage1-step3-tokens1B");
    expect(existsSync(join(ck, "metadata.msgpack"))).toBe(true);
    const rows = readFileSync(join(work, "runs/tiny/metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(rows.filter((r) => r.eval === undefined)).toHaveLength(3);
    expect(rows.filter((r) => r.eval === "brown-heldout").map((r) => r.step)).toEqual([3]); // the held-out documents, at the end
    expect(readdirSync(join(work, "runs/tiny")).some((f) => f.startsWith("events.out.tfevents."))).toBe(true);
    // the tokenized corpus came out of the binary, not from node_modules (there is none), into the
    // user's cache ($HOME/.cache/olmo-bun without XDG_CACHE_HOME), not the folder it ran in
    expect(existsSync(join(work, ".cache/olmo-bun/brown-cl100k/part-00000.npy"))).toBe(true);
    expect(readdirSync(work).filter((f) => f.includes("cache"))).toEqual([".cache"]);
    expect(existsSync(join(work, "node_modules"))).toBe(false);

    const s = olmo("olmo", "soup", ck, ck, "--out", join(work, "soup"), "--format", "hf");
    expect({ code: s.code, err: s.err }).toEqual({ code: 0, err: "" });
    expect(readdirSync(join(work, "soup"))).toContain("config.json");
    // the HF writers carry dolma2's tokenizer out of the binary too, byte for byte what the checkout writes
    const e = olmo("olmo", "export-hf", ck, "--out", join(work, "hf"));
    expect({ code: e.code, err: e.err }).toEqual({ code: 0, err: "" });
    expect(e.out).toContain("dolma2 tokenizer");
    for (const hf of ["soup", "hf"]) {
      expect(readFileSync(join(work, hf, "tokenizer.json"), "utf8") === dolma2TokenizerJson()).toBe(true);
      expect(JSON.parse(readFileSync(join(work, hf, "special_tokens_map.json"), "utf8"))).toEqual(specialTokensMapJson());
    }
    const i = olmo("olmo", "ckpt", "info", ck);
    expect(i.code).toBe(0);
    expect(i.out).toMatch(/checksums\s+ok/);
  }, 60_000);

  test("a user config file next to the binary: train, plan, report; a mistake is one line, exit 2", () => {
    writeFileSync(join(work, "mine.ts"), `export default { name: "mine", model: { dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnHidden: 32, vocabSize: 100278, maxSeqLen: 64 },
      data: { embedded: "brown" }, train: { seqLen: 32, globalBatchInstances: 2, microBatchInstances: 1, steps: 1 }, optim: { lr: 1e-3, schedule: { kind: "constant" } }, backend: "cpu" };\n`);
    const r = olmo("olmo", "train", "mine.ts", "--quiet");
    expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: "" });
    expect(existsSync(join(work, "runs/mine/stage1-step1-tokens1B/metadata.msgpack"))).toBe(true);
    const plan = olmo("olmo", "plan", "mine.ts");
    expect({ code: plan.code, err: plan.err }).toEqual({ code: 0, err: "" });
    expect(plan.out).toContain("stage1-step1-tokens1B");
    const rep = olmo("olmo", "report", "runs/mine");
    expect({ code: rep.code, err: rep.err }).toEqual({ code: 0, err: "" });
    const page = readFileSync(join(work, "runs/mine/report.html"), "utf8");
    expect(page).toContain('id="chart-loss"');
    // uPlot came out of the binary (there is no node_modules here), and the page draws with it
    expect(page).toContain("var uPlot=function(){");
    expect(page).toContain("Permission is hereby granted, free of charge");
    const chromium = Bun.which("chromium") ?? Bun.which("chromium-browser");
    if (chromium) {
      const dom = Bun.spawnSync([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", `--user-data-dir=${join(D, "chromium-profile")}`, "--dump-dom", `file://${join(work, "runs/mine/report.html")}`],
      { stdout: "pipe", stderr: "pipe", timeout: 60_000 }).stdout.toString();
      expect(dom).toContain('data-rendered="true"');
      expect(dom).toMatch(/id="chart-loss"[^>]*data-drawn="\{&quot;points&quot;:\[1\]/); // one step: its loss (an EMA needs two)
    }
    const bad = olmo("olmo", "train", "mine.ts", "--optim.lr=-1");
    expect(bad.code).toBe(2);
    expect(bad.err.trim().split("\n")).toEqual([expect.stringMatching(/invalid config at optim\.lr/)]);
  }, 60_000);

  test("its Worker paths run from the empty folder: rank 0's store, the launcher watch, asynchronous saves", () => {
    // OLMO_REQUIRE_WORKERS=1: a Worker that cannot start fails the run instead of falling back
    const env = { ...bare, OLMO_REQUIRE_WORKERS: "1" };
    const p = Bun.spawnSync([join(work, "olmo"), "launch", "--nproc-per-node", "2", "--", "train", "mine.ts", "--run-dir", "runs/workers",
      "--train.steps=2", "--train.globalBatchInstances=2", "--checkpoint.async=true", "--checkpoint.saveInterval=1", "--quiet"],
    { cwd: work, env, stdout: "pipe", stderr: "pipe" });
    expect({ code: p.exitCode, err: p.stderr.toString() }).toEqual({ code: 0, err: "" });
    expect(p.stdout.toString()).not.toContain("saving synchronously");
    expect(readdirSync(join(work, "runs/workers")).filter((f) => f.startsWith("stage1-")).sort()).toEqual(["stage1-step1-tokens1B", "stage1-step2-tokens1B"]);
    // and the check is real: a binary built without its Worker entry files fails it in one line
    const noWorkers = Bun.spawnSync([process.execPath, "build", "--compile", join(root, "src/cli/main.ts"), "--outfile", join(D, "olmo-no-workers")],
      { cwd: root, stdout: "pipe", stderr: "pipe" });
    expect(noWorkers.exitCode).toBe(0);
    const q = Bun.spawnSync([join(D, "olmo-no-workers"), "launch", "--nproc-per-node", "2", "--", "train", "mine.ts", "--run-dir", "runs/no-workers",
      "--train.steps=1", "--train.globalBatchInstances=2", "--quiet"], { cwd: work, env: { ...process.env, OLMO_REQUIRE_WORKERS: "1" }, stdout: "pipe", stderr: "pipe" });
    expect(q.exitCode).not.toBe(0);
    expect(q.stderr.toString()).toMatch(/the (launcherWatch|store) worker \(src\/parallel\/.*\) could not start \(OLMO_REQUIRE_WORKERS=1\)/);
  }, 120_000);

  test("compiled without libolmo_cuda.so: the binary says so, and asking for CUDA is a one-line error", () => {
    expect(olmo("olmo-cpu", "--version").out).toContain("no libolmo_cuda.so: CPU only");
    writeFileSync(join(work, "cuda.ts"), `export default { name: "c", model: { dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnHidden: 32, vocabSize: 256, maxSeqLen: 64 },
      data: { embedded: "brown" }, train: { seqLen: 32, globalBatchInstances: 2, microBatchInstances: 1, steps: 1 }, optim: { lr: 1e-3, schedule: { kind: "constant" } }, backend: "cuda" };\n`);
    const r = olmo("olmo-cpu", "train", "cuda.ts");
    expect(r.code).toBe(2);
    expect(r.err.trim().split("\n")).toEqual([expect.stringMatching(/CUDA backend requested but no GPU is usable: libolmo_cuda\.so not found/)]);
  });

  const hideWhy = hidingUnavailable();
  test.skipIf(hideWhy !== null)(`on a machine without its GEMM library or libgomp1, it names the package to install${hideWhy ? ` (skipped: ${hideWhy})` : ""}`, () => {
    for (const { soname, pkg } of cpuLibraryNeeds()) {
      const r = runWithoutLibraries([soname], [join(work, "olmo"), "train", "--train.steps=1", "--run-dir", "runs/nolib"], { cwd: work, env: { ...bare, OLMO_BACKEND: "cpu" } });
      expect(r.code).toBe(2);
      expect(r.err.trim().split("\n")).toEqual([expect.stringMatching(new RegExp(`^olmo: error: cannot load libolmo_cpu\\.so \\(.*\\): it needs ${soname.replaceAll(".", "\\.")}, which is not installed: install it with apt-get install ${pkg} `))]);
    }
    expect(existsSync(join(work, "runs/nolib"))).toBe(false);
  });
});
