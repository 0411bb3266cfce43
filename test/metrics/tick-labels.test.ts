// The report's axis labels, y ranges and thinning, as pure functions (the page runs the same source:
// report-client.ts inlines it; test/product/report.test.ts checks what the browser drew with it).
import { describe, expect, test } from "bun:test";
import { debiasedEma, minMaxPerBucket } from "../../src/metrics/downsample.ts";
import { tickLabels, yRange } from "../../src/metrics/tick-labels.ts";
import { oneNotation } from "../support/tick-notation.ts";


describe("tick labels: distinct, exact, one notation per axis", () => {
  const cases: [string, number[], boolean][] = [
    ["a loss axis in tenths (the old page wrote 10.8 seven times)", [10.7, 10.75, 10.8, 10.85, 10.9], false],
    ["an LR axis crossing 0.01 (the old page mixed 8.0e-3 and 0.010)", [0, 0.002, 0.004, 0.006, 0.008, 0.01], false],
    ["an LR axis below 0.001", [0.00005, 0.0001, 0.00015, 0.0002, 0.00025], false],
    ["ticks 2.5 apart", [0, 2.5, 5, 7.5, 10], false],
    ["throughput in millions", [0, 500_000, 1_000_000, 1_500_000], false],
    ["steps past 10,000", [0, 200_000, 400_000, 600_000, 800_000, 1_000_000], false],
    ["float-noise ticks (0.1 + 0.2)", [0.1, 0.2, 0.30000000000000004, 0.4], false],
    ["a log axis over decades", [0.001, 0.01, 0.1, 1, 10, 100], true],
    ["a log axis with 2 and 5", [0.1, 0.2, 0.5, 1, 2, 5, 10], true],
    ["a log axis of tiny values", [1e-6, 1e-5, 1e-4, 1e-3], true],
  ];
  for (const [name, values, log] of cases) {
    test(name, () => {
      const labels = tickLabels(values, log);
      expect(new Set(labels).size).toBe(labels.length);
      expect({ labels, one: oneNotation(labels) }).toEqual({ labels, one: true });
      for (const [i, l] of labels.entries()) expect(Math.abs(Number(l.replace(/,/g, "")) - values[i])).toBeLessThanOrEqual(Math.abs(values[i]) * 1e-9 + 1e-15);
    });
  }

  test("what the labels are, for the issue's examples", () => {
    expect(tickLabels([10.7, 10.75, 10.8, 10.85, 10.9], false)).toEqual(["10.70", "10.75", "10.80", "10.85", "10.90"]);
    expect(tickLabels([0, 0.002, 0.004, 0.006, 0.008, 0.01], false)).toEqual(["0", "0.002", "0.004", "0.006", "0.008", "0.010"]);
    expect(tickLabels([0.00005, 0.0001, 0.00015], false)).toEqual(["5.0e-5", "1.0e-4", "1.5e-4"]);
    expect(tickLabels([0, 200_000, 1_000_000], false)).toEqual(["0", "200,000", "1,000,000"]);
    expect(tickLabels([0.1, 0.2, 0.5, 1, 10, null as unknown as number], true)).toEqual(["0.1", "0.2", "0.5", "1", "10", ""]);
  });
});

describe("y ranges", () => {
  test("a flat series, and an LR alternating between 0.001 and the next double, get ±5% and round ticks", () => {
    const ulp = 0.0010000000000000002;
    expect(ulp).not.toBe(0.001);
    expect(yRange(0.001, ulp, false, false)).toEqual([0.001 - 0.00005, ulp + 0.0010000000000000002 * 0.05]);
    expect(yRange(0.001, ulp, false, true)[0]).toBe(0);
    expect(yRange(7, 7, false, false)).toEqual([6.65, 7.35]);
    expect(yRange(0, 0, false, true)).toEqual([0, 1]);
    const [lo, hi] = yRange(0.001, ulp, false, false);
    const ticks = [0.00096, 0.00098, 0.001, 0.00102, 0.00104].filter((t) => t >= lo && t <= hi);
    expect(tickLabels(ticks, false)).toEqual(["0.00096", "0.00098", "0.00100", "0.00102", "0.00104"]);
  });

  test("a spread series gets 5% of room; zero-based from 0; log axes span whole decades; nothing to draw is [0, 1]", () => {
    expect(yRange(2, 12, false, false)).toEqual([1.5, 12.5]);
    expect(yRange(2, 12, false, true)).toEqual([0, 12.5]);
    expect(yRange(-1, 1, false, true)).toEqual([-1.1, 1.1]);
    expect(yRange(0.3, 0.4, true, true)).toEqual([0.1, 1]);
    expect(yRange(0.02, 31, true, true)).toEqual([0.01, 100]);
    expect(yRange(1, 1, true, true)).toEqual([1, 10]);
    expect(yRange(null, null, false, false)).toEqual([0, 1]);
  });
});

describe("thinning: min and max per bucket", () => {
  test("a one-step spike and a one-step dip survive 1M steps; the ends are kept; at most 2 × buckets + 2 points", () => {
    const n = 1_000_000;
    const xs = Float64Array.from({ length: n }, (_, i) => i + 1);
    const ys = Float64Array.from({ length: n }, (_, i) => 3 + Math.sin(i) * 0.1);
    ys[654_320] = 25; // step 654,321
    ys[123_455] = -4; // step 123,456
    const p = minMaxPerBucket(xs, ys, 1000);
    expect(p.x.length).toBeLessThanOrEqual(2002);
    expect([p.x[0], p.x.at(-1)]).toEqual([1, n]);
    expect(p.x[p.y.indexOf(Math.max(...p.y))]).toBe(654_321);
    expect(p.x[p.y.indexOf(Math.min(...p.y))]).toBe(123_456);
    for (let i = 1; i < p.x.length; i++) expect(p.x[i]).toBeGreaterThan(p.x[i - 1]);
    // every bucket's band is as wide as the data's
    expect(Math.min(...p.y.filter((y) => y > 0))).toBeCloseTo(2.9, 3);
  });

  test("a short series is drawn whole", () => {
    expect(minMaxPerBucket([1, 2, 3], [5, 6, 7], 1000)).toEqual({ x: [1, 2, 3], y: [5, 6, 7] });
  });

  test("the EMA is TensorBoard's debiased one", () => {
    const e = debiasedEma([1, 2, 3], 0.9);
    expect(e[0]).toBe(1);
    expect(e[1]).toBeCloseTo((0.9 * 0.1 * 1 + 0.1 * 2) / (1 - 0.81), 12);
  });
});
