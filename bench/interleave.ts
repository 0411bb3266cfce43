// Timing that survives a shared machine: contestants run in interleaved rounds (each round in a
// rotated order, so no contestant always follows the same one), the median per contestant, and a
// noise floor from timing our own code against itself in the same rounds. On a 2-core machine that
// other people also use, two timings of identical code differ by several percent (and by 20-30%
// when someone's tests start mid-run); a ratio only says "slower" when it is below what identical
// code showed in the same run.
import { loadavg } from "node:os";

/** settleMs: a pause after each sample, so that threads still spinning after it (OpenBLAS' pool in
 *  PyTorch's process burns ~0.1 s of a core after each call; libgomp's a few ms) do not slow down
 *  whichever contestant comes next */
export interface Contestant { name: string; run: () => number | Promise<number>; settleMs?: number }

/** PyTorch's process (measured: ~90 ms of one core after each reply), and ours (~10 ms) */
export const TORCH_SETTLE_MS = 150;
export const OURS_SETTLE_MS = 20;

/** `rounds` rounds of every contestant; round r starts at contestant r mod n. Samples by name. */
export async function interleave(contestants: Contestant[], rounds: number): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = Object.fromEntries(contestants.map((c) => [c.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < contestants.length; i++) {
      const c = contestants[(r + i) % contestants.length];
      out[c.name].push(await c.run());
      if (c.settleMs) await Bun.sleep(c.settleMs);
    }
  }
  return out;
}

export function median(x: number[]): number {
  if (x.length === 0) return NaN;
  const s = [...x].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export const geomean = (xs: number[]) => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);

export interface NoiseFloor { floor: number; low: number; high: number; geomean: number }

/** From self-vs-self ratios (identical code timed twice): their range, and the floor below which a
 *  ratio is slower than noise, min(low, 1/high) since either side of the pair could be the slow one. */
export function noiseFloor(selfRatios: number[]): NoiseFloor {
  const r = selfRatios.filter(Number.isFinite);
  if (r.length === 0) return { floor: NaN, low: NaN, high: NaN, geomean: NaN };
  const low = Math.min(...r), high = Math.max(...r);
  return { floor: Math.min(low, 1 / high), low, high, geomean: geomean(r) };
}

/** the 1, 5 and 15 minute load averages, as printed beside every figure */
export function loadNow(): [number, number, number] {
  const [a, b, c] = loadavg();
  return [a, b, c];
}
export const fmtLoad = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");
