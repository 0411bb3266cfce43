// The report's axis labels and y ranges. These functions run in the page (report-client.ts inlines
// their source with Function.prototype.toString, and uPlot calls them), so each one is whole in
// itself: no imports, no helpers outside its body.

/**
 * The labels of one axis's ticks: one notation for the whole axis — fixed ("0.002", "12,000") or,
 * where the ticks are all tiny (< 0.001) or huge (≥ 1e9), exponential ("5.0e-5") — with the fewest
 * digits that write every tick exactly and no two alike. On a log axis each label takes its own
 * fewest digits ("0.01", "0.1", "1"), still in the axis's one notation. Zero is "0".
 */
export function tickLabels(ticks: (number | null)[], log: boolean): string[] {
  // uPlot hands a log axis's ticks with null in place of those it leaves unlabelled
  const values = ticks.map((v) => (v === null ? NaN : v));
  const mags = values.filter((v) => v !== 0 && Number.isFinite(v)).map(Math.abs);
  const maxAbs = mags.length ? Math.max(...mags) : 0;
  const minAbs = mags.length ? Math.min(...mags) : 0;
  const exponential = maxAbs >= 1e9 || (maxAbs > 0 && (log ? minAbs : maxAbs) < 1e-3);
  const write = (v: number, digits: number): string => {
    if (v === 0) return "0";
    if (!Number.isFinite(v)) return "";
    if (exponential) return v.toExponential(digits).replace("e+", "e");
    return v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits, useGrouping: true });
  };
  const read = (label: string): number => Number(label.replace(/,/g, ""));
  const sorted = values.filter(Number.isFinite).slice().sort((a, b) => a - b);
  let gap = Infinity;
  for (let i = 1; i < sorted.length; i++) if (sorted[i] > sorted[i - 1]) gap = Math.min(gap, sorted[i] - sorted[i - 1]);
  const MAX_DIGITS = 17;
  if (log) {
    // a log axis's ticks are 1, 2, 5 × 10^k and the like: each exact with its own digits
    return values.map((v) => {
      for (let d = 0; d < MAX_DIGITS; d++) if (Math.abs(read(write(v, d)) - v) <= Math.abs(v) * 1e-9) return write(v, d);
      return write(v, MAX_DIGITS);
    });
  }
  const tolerance = Number.isFinite(gap) ? gap * 1e-6 : maxAbs * 1e-12;
  for (let d = 0; d < MAX_DIGITS; d++) {
    const labels = values.map((v) => write(v, d));
    const exact = values.every((v, i) => !Number.isFinite(v) || Math.abs(read(labels[i]) - v) <= tolerance);
    if (exact && new Set(labels).size === labels.length) return labels;
  }
  return values.map((v) => write(v, MAX_DIGITS));
}

/**
 * The y range drawn for data from `min` to `max`: 5% of room above and below; from 0 on a
 * zero-based chart whose data is ≥ 0; a flat series (all values equal, or differing by no more
 * than float noise, like an LR alternating between 0.001 and the next double) gets ±5% of its
 * value, so ticks stay round numbers instead of a tick generator chasing one ulp; a log axis
 * spans whole decades.
 */
export function yRange(min: number | null, max: number | null, log: boolean, zeroBased: boolean): [number, number] {
  const finite = min !== null && max !== null && Number.isFinite(min) && Number.isFinite(max);
  if (log) {
    if (!finite || max! <= 0) return [0.1, 10];
    const lo = Math.pow(10, Math.floor(Math.log10(Math.max(min!, Number.MIN_VALUE))));
    let hi = Math.pow(10, Math.ceil(Math.log10(max!)));
    if (hi <= lo) hi = lo * 10;
    return [lo, hi];
  }
  if (!finite) return [0, 1];
  const magnitude = Math.max(Math.abs(min!), Math.abs(max!));
  const flat = !(max! - min! > magnitude * 1e-6);
  const pad = flat ? (magnitude > 0 ? magnitude * 0.05 : 1) : (max! - min!) * 0.05;
  const lo = zeroBased && min! >= 0 ? 0 : min! - pad;
  return [lo, max! + pad];
}
