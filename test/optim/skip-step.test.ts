// SkipStepAdamW's rule against a float64 reference written here from OLMo-core's
// get_step_factor (allenai/OLMo-core @ d7301e62, src/olmo_core/optim/skip_step_optimizer.py):
// histories of ≤ window + 1 values, no decision before max(2, window // 2) are recorded, a spike
// (loss or grad norm more than σ standard deviations above the previous values' mean) skipped,
// the window sliding, and a resume from the saved history bitwise equal to an uninterrupted run.
import { describe, expect, test } from "bun:test";
import { SkipStepRule, meanStd } from "../../src/optim/skip-step.ts";

/** The reference: the whole history kept, the window cut out of it at every step. */
function referenceSkips(losses: number[], norms: number[], window: number, sigmas: number): boolean[] {
  const out: boolean[] = [];
  for (let t = 0; t < losses.length; t++) {
    const first = Math.max(0, t - window); // the current value and the `window` before it
    const L = losses.slice(first, t + 1), G = norms.slice(first, t + 1);
    if (L.length < Math.max(2, Math.floor(window / 2))) {
      out.push(false);
      continue;
    }
    const stat = (xs: number[]) => {
      const prev = xs.slice(0, -1), n = prev.length;
      const mean = prev.reduce((a, b) => a + b, 0) / n;
      const variance = prev.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1); // torch.std_mean: unbiased
      return { mean, std: Math.sqrt(variance) };
    };
    const l = stat(L), g = stat(G);
    const proceed = L.at(-1)! - l.mean <= sigmas * l.std && G.at(-1)! - g.mean <= sigmas * g.std;
    out.push(!proceed);
  }
  return out;
}

function noisy(n: number, seed: number, base: number, amp: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => base + amp * (((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5));
}

function decideAll(rule: SkipStepRule, losses: number[], norms: number[]): boolean[] {
  return losses.map((l, i) => rule.decide(l, norms[i]));
}

describe("SkipStepAdamW's rule", () => {
  test("meanStd: unbiased standard deviation", () => {
    const { mean, std } = meanStd([1, 2, 3, 4]);
    expect(mean).toBe(2.5);
    expect(std).toBeCloseTo(Math.sqrt(5 / 3), 15);
  });

  test("never skips before 64 values are recorded (the current one included), however large the spike", () => {
    const losses = noisy(70, 1, 3, 0.01), norms = noisy(70, 2, 1, 0.05);
    losses[62] = 1e6; // the 63rd value: still too early
    norms[40] = 1e6;
    const got = decideAll(new SkipStepRule({ window: 128, sigmas: 6 }), losses, norms);
    expect(got.slice(0, 63).every((s) => !s)).toBe(true);
    expect(got).toEqual(referenceSkips(losses, norms, 128, 6));
  });

  test("a loss spike and a grad-norm spike are skipped once the window is long enough; ordinary noise is not", () => {
    const n = 400, losses = noisy(n, 3, 2.5, 0.02), norms = noisy(n, 4, 0.8, 0.1);
    losses[100] += 1; // ~170 σ
    norms[250] *= 20;
    const got = decideAll(new SkipStepRule({ window: 128, sigmas: 6 }), losses, norms);
    expect(got[100]).toBe(true);
    expect(got[250]).toBe(true);
    expect(got.filter((s) => s).length).toBe(2);
    expect(got).toEqual(referenceSkips(losses, norms, 128, 6));
  });

  test("the window slides: only the previous `window` values count (a level shift stops being a spike)", () => {
    // 300 steps at loss 2, then a permanent jump to 3: skipped while the window still remembers 2
    const n = 600, losses = noisy(n, 5, 2, 0.01).map((x, i) => (i >= 300 ? x + 1 : x)), norms = noisy(n, 6, 1, 0.01);
    const got = decideAll(new SkipStepRule({ window: 128, sigmas: 6 }), losses, norms);
    const want = referenceSkips(losses, norms, 128, 6);
    expect(got).toEqual(want);
    expect(got[300]).toBe(true);
    expect(got.slice(450).some((s) => s)).toBe(false); // after 128 steps at the new level it is the norm
    // smaller windows: the same rule with window // 2 as the warm-up
    for (const w of [2, 3, 8, 33]) expect(decideAll(new SkipStepRule({ window: w, sigmas: 2 }), losses, norms)).toEqual(referenceSkips(losses, norms, w, 2));
  });

  test("a NaN loss is skipped, and steps stay skipped while it is inside the window (as in torch)", () => {
    const losses = noisy(200, 7, 2, 0.01), norms = noisy(200, 8, 1, 0.01);
    losses[80] = NaN;
    const got = decideAll(new SkipStepRule({ window: 16, sigmas: 6 }), losses, norms);
    expect(got.slice(80, 97).every((s) => s)).toBe(true);
    expect(got[97]).toBe(false);
  });

  test("resume in the middle of the window from the saved history is bitwise the uninterrupted run", () => {
    const losses = noisy(300, 9, 2, 0.02), norms = noisy(300, 10, 1, 0.1);
    losses[150] += 0.5;
    norms[170] *= 10;
    const uninterrupted = new SkipStepRule({ window: 128, sigmas: 6 });
    const whole = decideAll(uninterrupted, losses, norms);
    for (const cut of [30, 100, 160, 200]) {
      const a = new SkipStepRule({ window: 128, sigmas: 6 });
      const first = decideAll(a, losses.slice(0, cut), norms.slice(0, cut));
      const saved = JSON.parse(JSON.stringify(a.state())); // what a checkpoint stores (float64 numbers)
      const b = new SkipStepRule({ window: 128, sigmas: 6 });
      b.restore(saved);
      expect([...first, ...decideAll(b, losses.slice(cut), norms.slice(cut))]).toEqual(whole);
      expect(b.state()).toEqual(uninterrupted.state());
    }
    expect(whole[150]).toBe(true);
    expect(whole[170]).toBe(true);
  });

  test("the history keeps at most window + 1 values", () => {
    const r = new SkipStepRule({ window: 8, sigmas: 6 });
    decideAll(r, noisy(50, 11, 1, 0.1), noisy(50, 12, 1, 0.1));
    expect(r.state().losses).toHaveLength(9);
    expect(r.state().gradNorms).toHaveLength(9);
  });
});
