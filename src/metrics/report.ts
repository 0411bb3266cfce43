// `olmo report RUN_DIR...`: one self-contained HTML page per set of runs (no network: the data is
// inlined as JSON and a small inline script, report-client.ts, draws SVG charts) with every run's
// curves overlaid — the loss with its EMA over the per-step values and the skipped steps marked,
// gradient norm, LR, throughput, MFU, device and host memory, and one chart per eval set and task —,
// a table of the final eval numbers, each run's resolved config and its checkpoints with the
// tokens each actually saw. The script marks what it drew (data-drawn-points on each curve,
// data-rendered on <body>) so a headless browser can check the page rather than just its source.
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { listCheckpoints, parseCheckpointName } from "../checkpoint/naming.ts";
import { UserError } from "../errors.ts";
import { parseJson } from "../input.ts";
import { CLIENT_SCRIPT } from "./report-client.ts";

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
  mfu?: number;
  mem_peak_bytes?: number;
  rss_bytes?: number;
  /** derived on reading: the two memory fields in MiB */
  mem_peak_mib?: number;
  rss_mib?: number;
}

/** An evaluation record: {"step", "eval": set or task, "kind": "lm" | "mc", ...}. */
export interface EvalRow {
  step: number;
  eval: string;
  kind: "lm" | "mc";
  loss?: number;
  ce_loss?: number;
  z_loss?: number;
  ppl?: number;
  n_tokens?: number;
  acc_raw?: number;
  acc_per_token?: number;
  acc_per_char?: number;
  acc_uncond?: number;
  n_questions?: number;
}

export interface RunReport {
  name: string;
  dir: string;
  /** one row per step, ascending; a resumed run's re-done steps keep their last record */
  metrics: MetricRow[];
  /** eval records, by step then file order; one per (set, step), the last kept */
  evals: EvalRow[];
  config: Record<string, unknown> | null;
  /** tokens: what the run had trained on at that step (its step record), null where unknown */
  checkpoints: { name: string; step: number; tokensB: number | null; tokens: number | null; time: string }[];
}

export interface Chart {
  /** element id suffix */
  id: string;
  /** field of the step rows, or of the eval rows of `eval` */
  key: string;
  eval?: string;
  title: string;
  unit: string;
  log: boolean;
  /** the y axis starts at 0 when every value is ≥ 0 */
  zeroBased: boolean;
  /** EMA weight of the smoothed line over the per-step one */
  smoothing?: number;
  /** step-row flag whose steps are marked */
  mark?: string;
}

/** TensorBoard's smoothing slider at 0.9: the loss of one small batch is mostly noise */
export const LOSS_SMOOTHING = 0.9;
const MC_CHART_METRIC = "acc_per_char";

/** The charts of a set of runs: the loss, one per eval set and task, then the other training ones that have data. */
export function chartsFor(runs: RunReport[]): Chart[] {
  const base: Chart[] = [
    { id: "loss", key: "loss", title: "Loss", unit: `loss (CE + z-loss); bold: EMA ${LOSS_SMOOTHING}; ✕ skipped step`, log: false, zeroBased: false, smoothing: LOSS_SMOOTHING, mark: "step_skipped" },
    { id: "grad_norm", key: "grad_norm", title: "Gradient norm", unit: "global L2 norm (before clipping)", log: true, zeroBased: true },
    { id: "lr", key: "lr", title: "Learning rate", unit: "lr", log: false, zeroBased: true },
    { id: "tokens_per_s", key: "tokens_per_s", title: "Throughput", unit: "tokens / s", log: false, zeroBased: true },
    { id: "mfu", key: "mfu", title: "MFU", unit: "model FLOPs / device peak (dense bf16)", log: false, zeroBased: true },
    { id: "mem_peak_mib", key: "mem_peak_mib", title: "Device memory", unit: "MiB allocated, peak per step", log: false, zeroBased: true },
    { id: "rss_mib", key: "rss_mib", title: "Host memory", unit: "MiB resident (RSS)", log: false, zeroBased: true },
  ];
  const kept = base.filter((c) => c.id === "loss" || runs.some((r) => drawablePoints(r, c) > 0));
  const sets = new Map<string, "lm" | "mc">();
  for (const r of runs) for (const e of r.evals) if (!sets.has(e.eval)) sets.set(e.eval, e.kind);
  const evalCharts = [...sets].map(([name, kind], i): Chart => kind === "lm"
    ? { id: `eval-${i}`, key: "loss", eval: name, title: `Eval: ${name}`, unit: "loss (CE + z-loss)", log: false, zeroBased: false }
    : { id: `eval-${i}`, key: MC_CHART_METRIC, eval: name, title: `Eval: ${name}`, unit: "accuracy (per-character normalization)", log: false, zeroBased: true });
  return [kept[0], ...evalCharts, ...kept.slice(1)];
}

export function readRun(dir: string): RunReport {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError(`report: run folder not found: ${dir}`);
  const metricsPath = join(dir, "metrics.jsonl");
  if (!existsSync(metricsPath)) throw new UserError(`report: ${dir} has no metrics.jsonl (not a run folder: olmo train writes one per step)`);
  const byStep = new Map<number, MetricRow>();
  const evalsByKey = new Map<string, EvalRow>();
  const lines = readFileSync(metricsPath, "utf8").split("\n");
  for (const [i, line] of lines.entries()) {
    if (!line.trim()) continue;
    let row: MetricRow;
    try {
      row = parseJson(line) as MetricRow;
    } catch {
      // the last line of a killed run may be cut short; anything else is a damaged file
      if (i >= lines.length - 2) continue;
      throw new UserError(`report: ${metricsPath}:${i + 1}: not a JSON line`);
    }
    if (!row || typeof row !== "object" || !Number.isInteger(row.step)) throw new UserError(`report: ${metricsPath}:${i + 1}: no integer "step"`);
    const e = row as unknown as EvalRow;
    if (typeof e.eval === "string") {
      // re-keyed so a resumed run's re-done evaluation replaces the earlier one in file order
      evalsByKey.delete(`${e.eval}@${e.step}`);
      evalsByKey.set(`${e.eval}@${e.step}`, e);
      continue;
    }
    if (row.mem_peak_bytes !== undefined) row.mem_peak_mib = row.mem_peak_bytes / 2 ** 20;
    if (row.rss_bytes !== undefined) row.rss_mib = row.rss_bytes / 2 ** 20;
    byStep.set(row.step, row);
  }
  const metrics = [...byStep.values()].sort((a, b) => a.step - b.step);
  const evals = [...evalsByKey.values()].sort((a, b) => a.step - b.step);
  let config: Record<string, unknown> | null = null;
  const cfgPath = join(dir, "config.json");
  if (existsSync(cfgPath)) {
    try {
      config = parseJson(readFileSync(cfgPath, "utf8")) as Record<string, unknown>;
    } catch {
      throw new UserError(`report: ${cfgPath} is not valid JSON`);
    }
  }
  const checkpoints = listCheckpoints(dir).map((c) => ({
    name: c.name, step: c.step, tokensB: parseCheckpointName(c.name)?.tokensB ?? null,
    tokens: byStep.get(c.step)?.tokens_processed ?? null, time: new Date(c.mtimeMs).toISOString(),
  }));
  const base = basename(resolve(dir));
  const name = config && typeof config.name === "string" && config.name !== base ? `${config.name} (${base})` : base;
  return { name, dir: resolve(dir), metrics, evals, config, checkpoints };
}

/** Number of points a chart draws for a run: the rows whose value is finite (and > 0 on a log scale). */
export function drawablePoints(run: RunReport, c: Pick<Chart, "key" | "eval" | "log">): number {
  const rows: object[] = c.eval ? run.evals.filter((e) => e.eval === c.eval) : run.metrics;
  return rows.filter((m) => {
    const v = (m as Record<string, unknown>)[c.key];
    return typeof v === "number" && Number.isFinite(v) && (!c.log || v > 0);
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

/** The last evaluation of every set and task, per run: the page's table of final numbers. */
function finalEvalTable(runs: RunReport[]): string {
  const names: [string, "lm" | "mc"][] = [];
  for (const r of runs) for (const e of r.evals) if (!names.some(([n]) => n === e.eval)) names.push([e.eval, e.kind]);
  if (names.length === 0) return "";
  const last = (r: RunReport, n: string) => r.evals.filter((e) => e.eval === n).at(-1);
  const f = (x: number | undefined, d = 4) => (x === undefined || !Number.isFinite(x) ? "—" : x.toFixed(d));
  const head = names.map(([n, k]) => k === "lm" ? `<th>${esc(n)}<br><span class="unit">loss · ppl · step</span></th>` :
    `<th>${esc(n)}<br><span class="unit">acc raw · per token · per char · uncond · step</span></th>`).join("");
  const body = runs.map((r) => `<tr><td>${esc(r.name)}</td>${names.map(([n, k]) => {
    const e = last(r, n);
    if (!e) return "<td>—</td>";
    return k === "lm" ? `<td class="final-eval">${f(e.loss)} · ${f(e.ppl, 1)} · ${e.step}</td>` :
      `<td class="final-eval">${f(e.acc_raw, 3)} · ${f(e.acc_per_token, 3)} · ${f(e.acc_per_char, 3)} · ${f(e.acc_uncond, 3)} · ${e.step}</td>`;
  }).join("")}</tr>`).join("\n");
  return `<h2>Final evaluation</h2>\n<table class="evals"><tr><th>run</th>${head}</tr>\n${body}</table>`;
}

const fmtInt = (n: number | null) => (n === null ? "?" : n.toLocaleString("en-US"));

export function renderReport(runs: RunReport[], opts: { title?: string; generatedAt?: Date } = {}): string {
  const title = opts.title ?? `olmo report: ${runs.map((r) => r.name).join(", ")}`;
  const chartList = chartsFor(runs);
  const data = {
    runs: runs.map((r, i) => ({ name: r.name, color: COLORS[i % COLORS.length], metrics: r.metrics, evals: r.evals })),
    charts: chartList,
  };
  const json = JSON.stringify(data).replace(/</g, "\\u003c").replace(/\u2028|\u2029/g, "");
  const charts = chartList.map((c) => {
    const expected = runs.map((r) => drawablePoints(r, c));
    return `<figure class="chart" id="chart-${c.id}" data-metric="${esc(c.eval ? `${c.eval}:${c.key}` : c.key)}" data-series="${runs.length}" data-points="${expected.join(",")}">` +
      `<figcaption>${esc(c.title)}<span class="unit">${esc(c.unit)}${c.log ? ", log scale" : ""}</span></figcaption><svg viewBox="0 0 560 300" role="img" aria-label="${esc(c.title)}"></svg></figure>`;
  }).join("\n");
  const runSections = runs.map((r, i) => `<section class="run" data-run="${i}">
<h2><span class="swatch" style="background:${COLORS[i % COLORS.length]}"></span>${esc(r.name)}</h2>
<p class="path">${esc(r.dir)}</p>
<h3>Checkpoints (${r.checkpoints.length})</h3>
${r.checkpoints.length ? `<table class="ckpts"><tr><th>name</th><th>step</th><th>tokens seen</th><th>name says</th><th>saved</th></tr>${r.checkpoints.map((c) =>
    `<tr><td>${esc(c.name)}</td><td>${c.step}</td><td class="tokens-seen">${fmtInt(c.tokens)}</td><td>${c.tokensB ?? "?"}B</td><td>${esc(c.time)}</td></tr>`).join("")}</table>
<p class="unit">the name rounds the tokens up to whole billions (OLMo's release names), so a small run's checkpoints all read 1B</p>` : "<p>none</p>"}
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
${finalEvalTable(runs)}
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
