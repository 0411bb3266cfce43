import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { applyOverrides, loadConfig, validateConfig } from "../../src/config/load.ts";
import { UserError } from "../../src/errors.ts";
import tiny from "../../configs/tiny.ts";

const tinyPath = resolve(import.meta.dir, "../../configs/tiny.ts");

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error("expected a UserError");
}

describe("run config", () => {
  test("the embedded tiny config validates and fills defaults", async () => {
    const c = await loadConfig(tinyPath);
    expect(c.optim.beta2).toBe(0.95);
    expect(c.model.normEps).toBe(1e-6);
    expect(c.checkpoint.keep).toBe(2);
  });

  test("overrides are typed and validated with their field path", async () => {
    const c = await loadConfig(tinyPath, [["optim.lr", "0.001"], ["train.steps", "7"], ["data.seed", "1110"]]);
    expect(c.optim.lr).toBe(0.001);
    expect(c.train.steps).toBe(7);
    expect(c.data.seed).toBe(1110);
    expect(await loadConfig(tinyPath, [["optim.lr", "-1"]]).catch((e) => e.message)).toContain("optim.lr");
  });

  test("a field typo names the field", () => {
    const msg = errorOf(() => validateConfig(applyOverrides(tiny, [["optim.learningRate", "0.1"]]), "x.ts"));
    expect(msg).toContain("optim");
    expect(msg).toContain("learningRate");
  });

  test("batch not divisible by micro-batch names train.microBatchInstances", () => {
    expect(errorOf(() => validateConfig(applyOverrides(tiny, [["train.microBatchInstances", "3"]]), "x.ts"))).toContain("train.microBatchInstances");
  });

  test("a sequence longer than the RoPE range is refused", () => {
    expect(errorOf(() => validateConfig(applyOverrides(tiny, [["train.seqLen", "4096"]]), "x.ts"))).toContain("train.seqLen");
  });

  test("a missing config file is a one-line UserError", async () => {
    const err = await loadConfig("/nonexistent/config.ts").catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toContain("config file not found");
  });
});
