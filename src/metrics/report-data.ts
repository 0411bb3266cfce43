// The charts of `olmo report` and the data the page draws for them, built on the server side from
// each run's history (metrics-history.ts): per chart one shared x array (the steps any run drew) and
// per run its series over it (null where that run has no point), at most 2 × BUCKETS points a
// series (downsample.ts: min and max per bucket, so spikes survive). This is what keeps a 1M-step
// run's page to a few hundred KB and its drawing to one pass of uPlot.
import { debiasedEma, minMaxPerBucket, type Points } from "./downsample.ts";
import type { MetricsHistory } from "./metrics-history.ts";

/** buckets per series: ~2 points per pixel column of a 540-pixel chart, at most 2 × this many points */
export const BUCKETS = 1000;
/** TensorBoard's smoothing slider at 0.9: the loss of one small batch is mostly noise */
export const LOSS_SMOOTHING = 0.9;
const MC_CHART_METRIC = "acc_per_char";
const MIB = 2 ** 20;

export interface Chart {
  /** element id suffix */
  id: string;
  /** field of the step records, or of the eval records of `eval` */
  key: string;
  eval?: string;
  title: string;
  unit: string;
  log: boolean;
  /** the y axis starts at 0 when every value is ≥ 0 */
  zeroBased: boolean;
  /** values are divided by this (bytes → MiB) */
  divisor?: number;
  /** EMA weight of the smoothed line drawn over the per-step one */
  smoothing?: number;
  /** step-record flag whose steps are marked */
  mark?: string;
}

/** What the charts need of a run. */
export interface ChartedRun {
  name: string;
  color: string;
  history: MetricsHistory;
}

export type SeriesKind = "line" | "raw" | "ema" | "marks" | "eval";

export interface PageSeries {
  run: number;
  kind: SeriesKind;
  label: string;
  color: string;
  y: (number | null)[];
}

export interface PageChart extends Chart {
  x: number[];
  series: PageSeries[];
  /** per run: the values the history holds for this chart (before thinning) */
  values: number[];
}

/** The charts of a set of runs: the loss, one per eval set and task, then the other training ones that have data. */
export function chartsFor(runs: Pick<ChartedRun, "history">[]): Chart[] {
  const base: Chart[] = [
    { id: "loss", key: "loss", title: "Loss", unit: `loss (CE + z-loss); bold: EMA ${LOSS_SMOOTHING}; red: skipped step`, log: false, zeroBased: false, smoothing: LOSS_SMOOTHING, mark: "step_skipped" },
    { id: "grad_norm", key: "grad_norm", title: "Gradient norm", unit: "global L2 norm (before clipping)", log: true, zeroBased: true },
    { id: "lr", key: "lr", title: "Learning rate", unit: "lr", log: false, zeroBased: true },
    { id: "tokens_per_s", key: "tokens_per_s", title: "Throughput", unit: "tokens / s", log: false, zeroBased: true },
    { id: "mfu", key: "mfu", title: "MFU", unit: "model FLOPs / device peak (dense bf16)", log: false, zeroBased: true },
    { id: "mem_peak_mib", key: "mem_peak_bytes", divisor: MIB, title: "Device memory", unit: "MiB allocated, peak per step", log: false, zeroBased: true },
    { id: "rss_mib", key: "rss_bytes", divisor: MIB, title: "Host memory", unit: "MiB resident (RSS)", log: false, zeroBased: true },
  ];
  const kept = base.filter((c) => c.id === "loss" || runs.some((r) => hasPoints(r, c)));
  const sets = new Map<string, "lm" | "mc">();
  for (const r of runs) for (const e of r.history.evals) if (!sets.has(e.eval)) sets.set(e.eval, e.kind);
  const evalCharts = [...sets].map(([name, kind], i): Chart => kind === "lm"
    ? { id: `eval-${i}`, key: "loss", eval: name, title: `Eval: ${name}`, unit: "loss (CE + z-loss)", log: false, zeroBased: false }
    : { id: `eval-${i}`, key: MC_CHART_METRIC, eval: name, title: `Eval: ${name}`, unit: "accuracy (per-character normalization)", log: false, zeroBased: true });
  return [kept[0], ...evalCharts, ...kept.slice(1)];
}

const drawableIn = (c: Pick<Chart, "log">) => (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && (!c.log || v > 0);

/** Whether a step chart has anything to draw for a run (eval charts are made only for sets that ran). */
function hasPoints(run: Pick<ChartedRun, "history">, c: Chart): boolean {
  return run.history.steps.column(c.key)?.some(drawableIn(c)) ?? false;
}

/** Every drawable point of a chart for a run: finite values (> 0 on a log scale), by step. */
export function pointsOf(run: Pick<ChartedRun, "history">, c: Chart): Points {
  const drawable = drawableIn(c);
  const out: Points = { x: [], y: [] };
  if (c.eval) {
    for (const e of run.history.evals) {
      const v = e.eval === c.eval ? (e as unknown as Record<string, unknown>)[c.key] : undefined;
      if (drawable(v)) {
        out.x.push(e.step);
        out.y.push(v);
      }
    }
    return out;
  }
  const col = run.history.steps.column(c.key);
  if (!col) return out;
  const steps = run.history.steps.steps, d = c.divisor ?? 1;
  for (let i = 0; i < col.length; i++) {
    if (drawable(col[i])) {
      out.x.push(steps[i]);
      out.y.push(col[i] / d);
    }
  }
  return out;
}

/** The steps a run's `mark` flag is 1 on, at the chart's value. */
function marksOf(run: ChartedRun, c: Chart): Points {
  const flag = c.mark ? run.history.steps.column(c.mark) : undefined;
  const col = run.history.steps.column(c.key);
  const out: Points = { x: [], y: [] };
  if (!flag || !col) return out;
  const steps = run.history.steps.steps;
  for (let i = 0; i < flag.length; i++) {
    if (flag[i] === 1 && Number.isFinite(col[i])) {
      out.x.push(steps[i]);
      out.y.push(col[i]);
    }
  }
  return out;
}

/** One chart's page data: its series thinned, on one shared x. */
export function chartData(c: Chart, runs: ChartedRun[]): PageChart {
  const raw: { run: number; kind: SeriesKind; label: string; color: string; pts: Points }[] = [];
  const values: number[] = [];
  runs.forEach((r, i) => {
    const all = pointsOf(r, c);
    values.push(all.x.length);
    if (c.eval) {
      raw.push({ run: i, kind: "eval", label: r.name, color: r.color, pts: minMaxPerBucket(all.x, all.y, BUCKETS) });
      return;
    }
    raw.push({ run: i, kind: c.smoothing ? "raw" : "line", label: r.name, color: r.color, pts: minMaxPerBucket(all.x, all.y, BUCKETS) });
    if (c.smoothing && all.x.length > 1) {
      raw.push({ run: i, kind: "ema", label: `${r.name} (EMA ${c.smoothing})`, color: r.color, pts: minMaxPerBucket(all.x, debiasedEma(all.y, c.smoothing), BUCKETS) });
    }
    const marks = marksOf(r, c);
    if (marks.x.length) raw.push({ run: i, kind: "marks", label: `${r.name}: skipped`, color: "#d00", pts: minMaxPerBucket(marks.x, marks.y, BUCKETS) });
  });
  const x = [...new Set(raw.flatMap((s) => s.pts.x))].sort((a, b) => a - b);
  const at = new Map(x.map((v, i) => [v, i]));
  const series = raw.map((s): PageSeries => {
    const y: (number | null)[] = new Array(x.length).fill(null);
    s.pts.x.forEach((step, k) => (y[at.get(step)!] = s.pts.y[k]));
    return { run: s.run, kind: s.kind, label: s.label, color: s.color, y };
  });
  return { ...c, x, series, values };
}
