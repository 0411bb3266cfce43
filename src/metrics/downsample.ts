// What the report draws of a long series: a chart is ~500 pixels wide, a stage-1 run 721,901 steps.
// The series is cut into `buckets` equal ranges of steps and each range keeps its lowest and its
// highest point (at their own steps, in step order), so the band of a noisy series keeps its true
// width and a spike of one step survives whatever the run's length; the series' first and last
// points are kept too (the x axis spans the run). A series with at most two points per bucket is
// drawn whole. The smoothed loss (TensorBoard's debiased EMA) is computed over
// every step first, then thinned the same way.

export interface Points {
  x: number[];
  y: number[];
}

/** At most 2 × buckets + 2 points of (xs, ys): the lowest and highest of each bucket of x, and the ends. xs ascend. */
export function minMaxPerBucket(xs: ArrayLike<number>, ys: ArrayLike<number>, buckets: number): Points {
  const n = xs.length;
  if (n <= 2 * buckets) return { x: Array.from(xs), y: Array.from(ys) };
  const x0 = xs[0], width = (xs[n - 1] - x0 + 1) / buckets;
  const out: Points = { x: [], y: [] };
  let bucket = -1, lo = -1, hi = -1;
  const flush = () => {
    if (bucket < 0) return;
    // the series' first and last points too, so the x axis spans the whole run
    const keep = [...new Set([bucket === 0 ? 0 : lo, lo, hi, bucket === buckets - 1 ? n - 1 : hi])].sort((a, b) => a - b);
    for (const i of keep) {
      out.x.push(xs[i]);
      out.y.push(ys[i]);
    }
  };
  for (let i = 0; i < n; i++) {
    const b = Math.min(buckets - 1, Math.floor((xs[i] - x0) / width));
    if (b !== bucket) {
      flush();
      bucket = b;
      lo = hi = i;
    } else {
      if (ys[i] < ys[lo]) lo = i;
      if (ys[i] > ys[hi]) hi = i;
    }
  }
  flush();
  return out;
}

/**
 * TensorBoard's smoothing: last = last·w + (1 − w)·v, shown debiased as last / (1 − wⁿ)
 * (tensorboard/components/vz_line_chart2/line-chart.ts resmoothDataset).
 */
export function debiasedEma(ys: ArrayLike<number>, weight: number): Float64Array {
  const out = new Float64Array(ys.length);
  let last = 0, debias = 1;
  for (let i = 0; i < ys.length; i++) {
    last = last * weight + (1 - weight) * ys[i];
    debias *= weight;
    out[i] = last / (1 - debias);
  }
  return out;
}
