// Tiny synthetic models and scratch folders for the checkpoint tests.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ModelConfig, ModelConfigSchema } from "../../src/model/config.ts";
import { paramSpecs, totalParams } from "../../src/model/params.ts";

export function tinyConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  return ModelConfigSchema.parse({ dModel: 16, nLayers: 2, nHeads: 2, nKvHeads: 1, ffnHidden: 24, vocabSize: 200, ...over });
}

/** Deterministic "trained-like" arena: N(0, 0.02)-ish values from a small LCG, seeded. */
export function randomArena(m: ModelConfig, seed = 1): Float32Array {
  const n = totalParams(paramSpecs(m));
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u1 = (s + 1) / 4294967297;
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u2 = s / 4294967296;
    a[i] = 0.02 * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
  return a;
}

const made: string[] = [];
export function tempDir(tag = "ckpt"): string {
  const d = mkdtempSync(join(tmpdir(), `olmo-${tag}-`));
  made.push(d);
  return d;
}

export function cleanupTemp(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Expect fn to throw a UserError whose (single-line) message matches re. */
export function userErrorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if ((e as Error).name !== "UserError") throw e;
    const msg = (e as Error).message;
    if (msg.includes("\n")) throw new Error(`UserError message is not one line: ${msg}`);
    return msg;
  }
  throw new Error("expected a UserError, nothing was thrown");
}

export const REPO = join(import.meta.dir, "../..");
