// `olmo report RUN_DIR...`: one self-contained HTML page per set of runs (no network: the data is
// inlined as JSON and a small inline script draws SVG charts) with the loss, gradient-norm, LR and
// throughput curves of every run overlaid, each run's resolved config and its checkpoints.
// The script marks what it drew (data-drawn-points on each curve, data-rendered on <body>) so a
// headless browser can check the page rather than just its source.
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { listCheckpoints, parseCheckpointName } from "../checkpoint/naming.ts";
import { UserError } from "../errors.ts";

export interface MetricRow {
  step: number;
  loss: number;
  ce_loss?: number;
  z_loss?: number;
  grad_norm?: number;
  lr?: number;
  tokens?: number;
  tokens_per_s?: number;
  ms?: number;
  tokens_processed?: number;
  time_s?: number;
  /** 1 when the skip rule rejected the step's update */
  step_skipped?: number;
}

export interface RunReport {
  name: string;
  dir: string;
  /** one row per step, ascending; a resumed run's re-done steps keep their last record */
  metrics: MetricRow[];
  config: Record<string, unknown> | null;
  checkpoints: { name: string; step: number; tokensB: number | null; time: string }[];
}

/** The charts: metric key, title, y-axis label, log scale. */
export const CHARTS = [
  { key: "loss", title: "Loss", unit: "loss (CE + z-loss)", log: false },
  { key: "grad_norm", title: "Gradient norm", unit: "global L2 norm (before clipping)", log: true },
  { key: "lr", title: "Learning rate", unit: "lr", log: false },
  { key: "tokens_per_s", title: "Throughput", unit: "tokens / s", log: false },
] as const;

export function readRun(dir: string): RunReport {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError(`report: run folder not found: ${dir}`);
  const metricsPath = join(dir, "metrics.jsonl");
  if (!existsSync(metricsPath)) throw new UserError(`report: ${dir} has no metrics.jsonl (not a run folder: olmo train writes one per step)`);
  const byStep = new Map<number, MetricRow>();
  const lines = readFileSync(metricsPath, "utf8").split("\n");
  for (const [i, line] of lines.entries()) {
    if (!line.trim()) continue;
    let row: MetricRow;
    try {
      row = JSON.parse(line);
    } catch {
      // the last line of a killed run may be cut short; anything else is a damaged file
      if (i >= lines.length - 2) continue;
      throw new UserError(`report: ${metricsPath}:${i + 1}: not a JSON line`);
    }
    if (!row || typeof row !== "object" || !Number.isInteger(row.step)) throw new UserError(`report: ${metricsPath}:${i + 1}: no integer "step"`);
    byStep.set(row.step, row);
  }
  const metrics = [...byStep.values()].sort((a, b) => a.step - b.step);
  let config: Record<string, unknown> | null = null;
  const cfgPath = join(dir, "config.json");
  if (existsSync(cfgPath)) {
    try {
      config = JSON.parse(readFileSync(cfgPath, "utf8"));
    } catch {
      throw new UserError(`report: ${cfgPath} is not valid JSON`);
    }
  }
  const checkpoints = listCheckpoints(dir).map((c) => ({
    name: c.name, step: c.step, tokensB: parseCheckpointName(c.name)?.tokensB ?? null, time: new Date(c.mtimeMs).toISOString(),
  }));
  const base = basename(resolve(dir));
  const name = config && typeof config.name === "string" && config.name !== base ? `${config.name} (${base})` : base;
  return { name, dir: resolve(dir), metrics, config, checkpoints };
}

/** Number of points a chart draws for a run: the steps whose value is finite (and > 0 on a log scale). */
export function drawablePoints(run: RunReport, key: string, log: boolean): number {
  return run.metrics.filter((m) => {
    const v = (m as unknown as Record<string, unknown>)[key];
    return typeof v === "number" && Number.isFinite(v) && (!log || v > 0);
  }).length;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];

function summary(r: RunReport): string {
  const last = r.metrics[r.metrics.length - 1];
  const first = r.metrics[0];
  const fmt = (x: number | undefined, d = 4) => (x === undefined || !Number.isFinite(x) ? "—" : x.toFixed(d));
  const tps = r.metrics.length ? r.metrics.reduce((a, m) => a + (m.tokens_per_s ?? 0), 0) / r.metrics.length : NaN;
  return `<td>${esc(r.name)}</td><td>${r.metrics.length}</td><td>${last ? last.step : "—"}</td><td>${fmt(first?.loss)}</td><td>${fmt(last?.loss)}</td>` +
    `<td>${last?.tokens_processed ?? "—"}</td><td>${fmt(tps, 0)}</td><td>${last?.time_s !== undefined ? fmt(last.time_s, 1) : "—"}</td>` +
    `<td class="skipped">${skippedSteps(r)}</td><td>${r.checkpoints.length}</td>`;
}

/** The steps the skip rule rejected: how many, and the first few ("—" for runs without the rule). */
function skippedSteps(r: RunReport): string {
  if (!r.metrics.some((m) => m.step_skipped !== undefined)) return "—";
  const steps = r.metrics.filter((m) => m.step_skipped === 1).map((m) => m.step);
  return steps.length === 0 ? "0" : `${steps.length} (${steps.slice(0, 5).join(", ")}${steps.length > 5 ? ", …" : ""})`;
}

export function renderReport(runs: RunReport[], opts: { title?: string; generatedAt?: Date } = {}): string {
  const title = opts.title ?? `olmo report: ${runs.map((r) => r.name).join(", ")}`;
  const data = {
    runs: runs.map((r, i) => ({ name: r.name, color: COLORS[i % COLORS.length], metrics: r.metrics })),
    charts: CHARTS,
  };
  const json = JSON.stringify(data).replace(/</g, "\\u003c").replace(/\u2028|\u2029/g, "");
  const charts = CHARTS.map((c) => {
    const expected = runs.map((r) => drawablePoints(r, c.key, c.log));
    return `<figure class="chart" id="chart-${c.key}" data-metric="${c.key}" data-series="${runs.length}" data-points="${expected.join(",")}">` +
      `<figcaption>${esc(c.title)}<span class="unit">${esc(c.unit)}${c.log ? ", log scale" : ""}</span></figcaption><svg viewBox="0 0 560 300" role="img" aria-label="${esc(c.title)}"></svg></figure>`;
  }).join("\n");
  const runSections = runs.map((r, i) => `<section class="run" data-run="${i}">
<h2><span class="swatch" style="background:${COLORS[i % COLORS.length]}"></span>${esc(r.name)}</h2>
<p class="path">${esc(r.dir)}</p>
<h3>Checkpoints (${r.checkpoints.length})</h3>
${r.checkpoints.length ? `<table class="ckpts"><tr><th>name</th><th>step</th><th>tokens</th><th>saved</th></tr>${r.checkpoints.map((c) =>
    `<tr><td>${esc(c.name)}</td><td>${c.step}</td><td>${c.tokensB ?? "?"}B</td><td>${esc(c.time)}</td></tr>`).join("")}</table>` : "<p>none</p>"}
<details${runs.length === 1 ? " open" : ""}><summary>Resolved config</summary><pre>${esc(r.config ? JSON.stringify(r.config, null, 2) : "(no config.json)")}</pre></details>
</section>`).join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="generator" content="olmo-bun report">
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:20px 0 4px}h3{font-size:14px;margin:10px 0 4px}
.meta,.path,.unit{color:#666;font-size:12px}.unit{margin-left:8px;font-weight:normal}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
.grid{display:grid;grid-template-columns:repeat(2,minmax(0,560px));gap:16px}
figure{margin:0;border:1px solid #e4e4e4;border-radius:6px;padding:8px}figcaption{font-weight:600;margin-bottom:4px}
svg{width:100%;height:auto;display:block}.axis{stroke:#999;stroke-width:1}.grid-line{stroke:#eee;stroke-width:1}
svg text{font-size:11px;fill:#555}.legend{margin:8px 0}.legend span{margin-right:16px;white-space:nowrap}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;vertical-align:-1px}
pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:400px;font-size:12px}
</style></head>
<body data-rendered="false" data-runs="${runs.length}">
<h1>${esc(title)}</h1>
<p class="meta">generated ${esc((opts.generatedAt ?? new Date()).toISOString())} by olmo report · x axis: optimizer step</p>
<table class="summary"><tr><th>run</th><th>steps logged</th><th>last step</th><th>first loss</th><th>last loss</th><th>tokens</th><th>mean tok/s</th><th>time (s)</th><th>skipped steps</th><th>checkpoints</th></tr>
${runs.map((r) => `<tr>${summary(r)}</tr>`).join("\n")}</table>
<div class="legend">${runs.map((r, i) => `<span><span class="swatch" style="background:${COLORS[i % COLORS.length]}"></span>${esc(r.name)}</span>`).join("")}</div>
<div class="grid">
${charts}
</div>
${runSections}
<script type="application/json" id="olmo-data">${json}</script>
<script>
${CLIENT_SCRIPT}
</script>
</body></html>
`;
}

// Draws each chart into its <svg>: axes with ~5 ticks, one polyline per run. Plain DOM, no library.
const CLIENT_SCRIPT = String.raw`(function () {
  var data = JSON.parse(document.getElementById("olmo-data").textContent);
  var NS = "http://www.w3.org/2000/svg", W = 560, H = 300, L = 62, R = 12, T = 10, B = 34;
  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function fmt(v) {
    var a = Math.abs(v);
    if (a === 0) return "0";
    if (a >= 1e5 || a < 1e-2) return v.toExponential(1);
    return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(a >= 1 ? 2 : 3);
  }
  function ticks(lo, hi, n) {
    if (hi === lo) return [lo];
    var step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n)));
    var err = (hi - lo) / n / step;
    step *= err >= 7.5 ? 10 : err >= 3.5 ? 5 : err >= 1.5 ? 2 : 1;
    var out = [];
    for (var t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(+t.toPrecision(12));
    return out;
  }
  // log scale (y is log10 of the value): 1, 2, 5 × 10^k inside the range, thinned to at most 7
  function logTicks(lo, hi) {
    var out = [];
    for (var k = Math.floor(lo) - 1; k <= Math.ceil(hi); k++) {
      [1, 2, 5].forEach(function (m) {
        var t = k + Math.log10(m);
        if (t >= lo && t <= hi) out.push(t);
      });
    }
    if (out.length < 2) return ticks(lo, hi, 4);
    var every = Math.ceil(out.length / 7);
    return out.filter(function (_, i) { return i % every === 0; });
  }
  data.charts.forEach(function (c) {
    var fig = document.getElementById("chart-" + c.key), svg = fig.querySelector("svg");
    var series = data.runs.map(function (r) {
      return { run: r, pts: r.metrics.filter(function (m) {
        var v = m[c.key];
        return typeof v === "number" && isFinite(v) && (!c.log || v > 0);
      }).map(function (m) { return [m.step, c.log ? Math.log10(m[c.key]) : m[c.key]]; }) };
    });
    var all = [].concat.apply([], series.map(function (s) { return s.pts; }));
    if (!all.length) {
      el("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, svg).textContent = "no data";
    }
    var xs = all.map(function (p) { return p[0]; }), ys = all.map(function (p) { return p[1]; });
    var x0 = Math.min.apply(null, xs.concat([1])), x1 = Math.max.apply(null, xs.concat([x0 + 1]));
    var y0 = Math.min.apply(null, ys.length ? ys : [0]), y1 = Math.max.apply(null, ys.length ? ys : [1]);
    if (y1 === y0) { y0 -= Math.abs(y0) * 0.05 || 1; y1 += Math.abs(y1) * 0.05 || 1; }
    var pad = (y1 - y0) * 0.04; y0 -= pad; y1 += pad;
    if (!c.log && c.key !== "loss" && y0 < 0 && Math.min.apply(null, ys.length ? ys : [0]) >= 0) y0 = 0;
    var sx = function (x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
    var sy = function (y) { return T + (1 - (y - y0) / (y1 - y0)) * (H - T - B); };
    var yt = c.log ? logTicks(y0, y1) : ticks(y0, y1, 5);
    yt.forEach(function (t) {
      if (t < y0 || t > y1) return;
      el("line", { x1: L, x2: W - R, y1: sy(t), y2: sy(t), "class": "grid-line" }, svg);
      el("text", { x: L - 6, y: sy(t) + 4, "text-anchor": "end" }, svg).textContent = fmt(c.log ? Math.pow(10, t) : t);
    });
    ticks(x0, x1, 6).forEach(function (t) {
      if (t < x0 || t > x1) return;
      el("text", { x: sx(t), y: H - B + 16, "text-anchor": "middle" }, svg).textContent = String(Math.round(t));
    });
    el("line", { x1: L, x2: L, y1: T, y2: H - B, "class": "axis" }, svg);
    el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, "class": "axis" }, svg);
    el("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, svg).textContent = "step";
    series.forEach(function (s, i) {
      var pts = s.pts.map(function (p) { return sx(p[0]).toFixed(2) + "," + sy(p[1]).toFixed(2); });
      var line = el(pts.length === 1 ? "circle" : "polyline", pts.length === 1
        ? { cx: pts[0].split(",")[0], cy: pts[0].split(",")[1], r: 3, fill: s.run.color }
        : { points: pts.join(" "), fill: "none", stroke: s.run.color, "stroke-width": 1.6, "stroke-linejoin": "round" }, svg);
      line.setAttribute("class", "curve");
      line.setAttribute("data-run", String(i));
      line.setAttribute("data-drawn-points", String(pts.length));
      el("title", {}, line).textContent = s.run.name + ": " + s.pts.length + " points";
    });
    fig.setAttribute("data-drawn", "true");
  });
  document.body.setAttribute("data-rendered", "true");
})();`;
