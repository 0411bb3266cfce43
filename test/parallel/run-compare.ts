// Shared by the multi-process training tests (dp.test.ts, tp.test.ts): run the CLI, read a run's
// metrics, and the closeness criteria for two fp32 runs that sum the same gradients in another order.
//
// Why these bounds: such runs differ by rounding, and Adam's normalization m/(√v + eps) turns the
// rounding noise of gradients that are zero in exact arithmetic (|g| ~ eps: e.g. the embedding row
// of a token seen only in the last position of an instance, whose output has no label) into updates
// of up to lr; those few weights then move every later gradient a little. Measured after 6 steps at
// lr 1e-2: DP=2 weights within 9e-5 of the arena's max |w| (0.015% of them beyond 1e-5); TP=2 within
// 5.2e-5 (0.008%); TP=2 × DP=2 within 1.2e-4 (0.016%); moments within 2.2e-4 of their max.
import { expect } from "bun:test";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { listCheckpoints } from "../../src/checkpoint/naming.ts";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { historyRows } from "../support/metrics-rows.ts";
import { type TinyJobOverrides, tinyRunConfig, writeTinyTokens } from "../support/tiny-job.ts";

export const root = resolve(import.meta.dir, "../..");
const cli = join(root, "src/cli/main.ts");

/** `bun src/cli/main.ts ARGS` with one OpenMP thread per process (ranks share 2 cores). */
export async function olmo(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([process.execPath, cli, ...args], {
    cwd: root, env: { ...process.env, OLMO_THREADS: "1", ...env }, stdout: "pipe", stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

/**
 * A temporary folder with the tiny job (test/support/tiny-job.ts) the multi-process and run tests
 * train, written as a config file, and its token file (by default 640 tokens).
 */
export function writeTinyJob(name: string, over: TinyJobOverrides & { tokens?: number } = {}): { dir: string; cfgPath: string } {
  const dir = mkdtempSync(join(tmpdir(), `olmo-${name}-`));
  const tokensPath = join(dir, "tokens.u32");
  writeTinyTokens(tokensPath, over.tokens);
  const cfgPath = join(dir, `${name}.config.ts`);
  writeFileSync(cfgPath, `export default ${JSON.stringify(tinyRunConfig(name, tokensPath, over))};\n`);
  return { dir, cfgPath };
}

/** A new run folder `runDir` holding a copy of `fromRunDir`'s step-4 checkpoint (to resume from). */
export function seedFromStep4(fromRunDir: string, runDir: string): void {
  mkdirSync(runDir);
  const step4 = listCheckpoints(fromRunDir).find((c) => c.name.includes("step4"))!;
  cpSync(step4.path, join(runDir, step4.name), { recursive: true });
}

export interface Metric { step: number; loss: number; ce_loss: number; grad_norm: number; tokens: number; tokens_processed: number }

/** the run's history (step records, then eval records), as metrics.jsonl's reader sees it */
export const metrics = (runDir: string): Metric[] => historyRows(runDir) as unknown as Metric[];

/** max |a - b| over max |b| */
export function maxRel(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let maxDiff = 0, maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
    maxAbs = Math.max(maxAbs, Math.abs(b[i]));
  }
  return maxDiff / maxAbs;
}

/** fraction of elements whose |a - b| exceeds rel · max |b| */
export function fracOver(a: Float32Array, b: Float32Array, rel: number): number {
  let maxAbs = 0, n = 0;
  for (let i = 0; i < b.length; i++) maxAbs = Math.max(maxAbs, Math.abs(b[i]));
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i] - b[i]) > rel * maxAbs) n++;
  return n / a.length;
}

export function expectWeightsClose(a: Float32Array, b: Float32Array): void {
  expect(maxRel(a, b)).toBeLessThan(3e-4);
  expect(fracOver(a, b, 1e-5)).toBeLessThan(1e-3);
}
