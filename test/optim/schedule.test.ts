import { describe, expect, test } from "bun:test";
import { cosineWithWarmup, linearWithWarmup, lrAt } from "../../src/optim/schedule.ts";

describe("LR schedules", () => {
  test("OLMo-2 32B stage 1: first update, end of warmup, and the stage-2 starting LR at step 721,901", () => {
    const lr = (s: number) => cosineWithWarmup(s, 6e-4, 2000, 774_861, 0.1);
    expect(lr(1)).toBeCloseTo(3e-7, 15);
    expect(lr(2000)).toBeCloseTo(6e-4, 15);
    expect(lr(721_901)).toBeCloseTo(6.6232e-5, 9);
    expect(lr(774_861)).toBeCloseTo(6e-5, 15);
    expect(lr(900_000)).toBeCloseTo(6e-5, 15);
  });

  test("cosine is monotone after warmup and hits the midpoint halfway", () => {
    const lr = (s: number) => cosineWithWarmup(s, 1, 10, 110, 0.1);
    expect(lr(60)).toBeCloseTo(0.55, 12);
    for (let s = 11; s <= 110; s++) expect(lr(s)).toBeLessThanOrEqual(lr(s - 1));
  });

  test("stage 2: linear from lr0 to 0 over 11,921 steps; the last step runs at 0", () => {
    const lr = (s: number) => linearWithWarmup(s, 6.6232e-5, 0, 11_921, 0);
    expect(lr(0)).toBeCloseTo(6.6232e-5, 15);
    expect(lr(5960.5)).toBeCloseTo(6.6232e-5 / 2, 15);
    expect(lr(11_921)).toBe(0);
  });

  test("lrAt defaults tMax to the run's total steps", () => {
    expect(lrAt({ kind: "cosine", warmupSteps: 0, alpha: 0.1 }, 100, 1, 100)).toBeCloseTo(0.1, 12);
    expect(lrAt({ kind: "linear", warmupSteps: 0, alpha: 0 }, 50, 2, 100)).toBeCloseTo(1, 12);
    expect(lrAt({ kind: "constant", warmupSteps: 4 }, 2, 2, 100)).toBeCloseTo(1, 12);
  });
});
