// `olmo report RUN_DIR...`: one self-contained HTML page per set of runs (no network: uPlot, its
// stylesheet and the data are inlined) with every run's curves overlaid — the loss with its EMA over
// the per-step values and the skipped steps marked, gradient norm, LR, throughput, MFU, device and
// host memory, and one chart per eval set and task —, a table of the final eval numbers, each run's
// resolved config and its checkpoints with the tokens each actually saw. A run's history is what
// metrics-history.ts reads: abandoned attempts left out, damaged lines skipped and counted (shown on
// the page and returned for the command to print). Long series are thinned on this side
// (report-data.ts), so the page stays small for a 1M-step run. The inline script (report-client.ts)
// marks what it drew (data-drawn on each chart, data-rendered on <body>) so a headless browser can
// check the page rather than just its source.
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { listCheckpoints, parseCheckpointName } from "../checkpoint/naming.ts";
import { UserError } from "../errors.ts";
import { parseJson } from "../input.ts";
import { metricsPath } from "./metrics-log.ts";
import { type MetricsHistory, readMetricsHistory } from "./metrics-history.ts";
import { clientScript } from "./report-client.ts";
import { chartData, chartsFor, type ChartedRun } from "./report-data.ts";
import { UPLOT } from "./uplot-assets.ts";

export interface RunReport {
  name: string;
  dir: string;
  history: MetricsHistory;
  config: Record<string, unknown> | null;
  /** tokens: what the run had trained on at that step (its step record), null where unknown */
  checkpoints: { name: string; step: number; tokensB: number | null; tokens: number | null; time: string }[];
}

export function readRun(dir: string): RunReport {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError(`report: run folder not found: "${dir}"`);
  const path = metricsPath(dir);
  if (!existsSync(path)) throw new UserError(`report: "${dir}" has no metrics.jsonl (not a run folder: olmo train writes one per step)`);
  const history = readMetricsHistory(path);
  let config: Record<string, unknown> | null = null;
  const cfgPath = join(dir, "config.json");
  if (existsSync(cfgPath)) {
    try {
      config = parseJson(readFileSync(cfgPath, "utf8")) as Record<string, unknown>;
    } catch {
      throw new UserError(`report: "${cfgPath}" is not valid JSON`);
    }
  }
  const checkpoints = listCheckpoints(dir).map((c) => ({
    name: c.name, step: c.step, tokensB: parseCheckpointName(c.name)?.tokensB ?? null,
    tokens: history.steps.at("tokens_processed", c.step), time: new Date(c.mtimeMs).toISOString(),
  }));
  const base = basename(resolve(dir));
  const name = config && typeof config.name === "string" && config.name !== base ? `${config.name} (${base})` : base;
  return { name, dir: resolve(dir), history, config, checkpoints };
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
const colorOf = (i: number) => COLORS[i % COLORS.length];
const fmt = (x: number | null | undefined, d = 4) => (x === null || x === undefined || !Number.isFinite(x) ? "—" : x.toFixed(d));
const fmtInt = (n: number | null) => (n === null ? "?" : n.toLocaleString("en-US"));

function summary(r: RunReport): string {
  const s = r.history.steps, n = s.length;
  const loss = s.column("loss"), tps = s.column("tokens_per_s");
  let tpsSum = 0, tpsN = 0;
  for (let i = 0; tps && i < n; i++) if (Number.isFinite(tps[i])) (tpsSum += tps[i]), tpsN++;
  return `<td>${esc(r.name)}</td><td>${fmtInt(n)}</td><td>${n ? fmtInt(s.steps[n - 1]) : "—"}</td><td>${fmt(loss?.[0])}</td><td>${fmt(loss?.[n - 1])}</td>` +
    `<td>${s.last("tokens_processed") ?? "—"}</td><td>${fmt(tpsN ? tpsSum / tpsN : null, 0)}</td><td>${fmt(s.at("time_s", s.steps[n - 1]), 1)}</td>` +
    `<td class="skipped">${skippedSteps(r)}</td><td>${r.checkpoints.length}</td>`;
}

/** The steps the skip rule rejected: how many, and the first few ("—" for runs without the rule). */
function skippedSteps(r: RunReport): string {
  const flag = r.history.steps.column("step_skipped");
  if (!flag || flag.every((v) => Number.isNaN(v))) return "—";
  const steps: number[] = [];
  flag.forEach((v, i) => v === 1 && steps.push(r.history.steps.steps[i]));
  return steps.length === 0 ? "0" : `${steps.length} (${steps.slice(0, 5).join(", ")}${steps.length > 5 ? ", …" : ""})`;
}

/** What reading metrics.jsonl left out: abandoned attempts and damaged lines. */
function historyNote(r: RunReport): string {
  const h = r.history, parts: string[] = [];
  if (h.restarts.length) parts.push(`restarted after step${h.restarts.length === 1 ? "" : "s"} ${h.restarts.join(", ")}`);
  if (h.superseded) parts.push(`${h.superseded} record${h.superseded === 1 ? "" : "s"} of abandoned attempts left out`);
  if (h.damaged.length) parts.push(`${h.damaged.length} damaged line${h.damaged.length === 1 ? "" : "s"} skipped (${h.damaged.slice(0, 5).map((d) => `line ${d.line}: ${d.why}`).join("; ")}${h.damaged.length > 5 ? "; …" : ""})`);
  return parts.length ? `<p class="history">metrics.jsonl: ${esc(parts.join("; "))}</p>` : "";
}

/** The last evaluation of every set and task, per run: the page's table of final numbers. */
function finalEvalTable(runs: RunReport[]): string {
  const names: [string, "lm" | "mc"][] = [];
  for (const r of runs) for (const e of r.history.evals) if (!names.some(([n]) => n === e.eval)) names.push([e.eval, e.kind]);
  if (names.length === 0) return "";
  const last = (r: RunReport, n: string) => r.history.evals.filter((e) => e.eval === n).at(-1);
  const head = names.map(([n, k]) => k === "lm" ? `<th>${esc(n)}<br><span class="unit">loss · ppl · step</span></th>` :
    `<th>${esc(n)}<br><span class="unit">acc raw · per token · per char · uncond · step</span></th>`).join("");
  const body = runs.map((r) => `<tr><td>${esc(r.name)}</td>${names.map(([n, k]) => {
    const e = last(r, n);
    if (!e) return "<td>—</td>";
    return k === "lm" ? `<td class="final-eval">${fmt(e.loss)} · ${fmt(e.ppl, 1)} · ${e.step}</td>` :
      `<td class="final-eval">${fmt(e.acc_raw, 3)} · ${fmt(e.acc_per_token, 3)} · ${fmt(e.acc_per_char, 3)} · ${fmt(e.acc_uncond, 3)} · ${e.step}</td>`;
  }).join("")}</tr>`).join("\n");
  return `<h2>Final evaluation</h2>\n<table class="evals"><tr><th>run</th>${head}</tr>\n${body}</table>`;
}

function runSection(r: RunReport, i: number, open: boolean): string {
  return `<section class="run" data-run="${i}">
<h2><span class="swatch" style="background:${colorOf(i)}"></span>${esc(r.name)}</h2>
<p class="path">${esc(r.dir)}</p>
${historyNote(r)}
<h3>Checkpoints (${r.checkpoints.length})</h3>
${r.checkpoints.length ? `<table class="ckpts"><tr><th>name</th><th>step</th><th>tokens seen</th><th>name says</th><th>saved</th></tr>${r.checkpoints.map((c) =>
    `<tr><td>${esc(c.name)}</td><td>${c.step}</td><td class="tokens-seen">${fmtInt(c.tokens)}</td><td>${c.tokensB ?? "?"}B</td><td>${esc(c.time)}</td></tr>`).join("")}</table>
<p class="unit">the name rounds the tokens up to whole billions (OLMo's release names), so a small run's checkpoints all read 1B</p>` : "<p>none</p>"}
<details${open ? " open" : ""}><summary>Resolved config</summary><pre>${esc(r.config ? JSON.stringify(r.config, null, 2) : "(no config.json)")}</pre></details>
</section>`;
}

/** JSON inside <script>: no "<" (so no "</script>"), no line separators a parser could trip on. */
const inlineJson = (v: unknown) => JSON.stringify(v).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");

export function renderReport(runs: RunReport[], opts: { title?: string; generatedAt?: Date } = {}): string {
  const title = opts.title ?? `olmo report: ${runs.map((r) => r.name).join(", ")}`;
  const charted: ChartedRun[] = runs.map((r, i) => ({ name: r.name, color: colorOf(i), history: r.history }));
  const pageCharts = chartsFor(charted).map((c) => chartData(c, charted));
  const figures = pageCharts.map((c) => {
    const points = runs.map((_, i) => c.series.find((s) => s.run === i && s.kind !== "ema" && s.kind !== "marks")?.y.filter((v) => v !== null).length ?? 0);
    return `<figure class="chart" id="chart-${c.id}" data-metric="${esc(c.eval ? `${c.eval}:${c.key}` : c.key)}" data-series="${runs.length}" data-values="${c.values.join(",")}" data-points="${points.join(",")}">` +
      `<figcaption>${esc(c.title)}<span class="unit">${esc(c.unit)}${c.log ? ", log scale" : ""}</span></figcaption><div class="plot"></div></figure>`;
  }).join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="generator" content="olmo-bun report">
<style>
${UPLOT.style}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:20px 0 4px}h3{font-size:14px;margin:10px 0 4px}
.meta,.path,.unit,.history{color:#666;font-size:12px}.unit{margin-left:8px;font-weight:normal}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
.grid{display:grid;grid-template-columns:repeat(2,minmax(0,560px));gap:16px}
figure{margin:0;border:1px solid #e4e4e4;border-radius:6px;padding:8px;overflow:hidden}figcaption{font-weight:600;margin-bottom:4px}
.u-legend{font-size:11px}.legend{margin:8px 0}.legend span{margin-right:16px;white-space:nowrap}.no-data{color:#999;padding:40px;text-align:center}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;vertical-align:-1px}
pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:400px;font-size:12px}
</style></head>
<body data-rendered="false" data-runs="${runs.length}">
<h1>${esc(title)}</h1>
<p class="meta">generated ${esc((opts.generatedAt ?? new Date()).toISOString())} by olmo report · x axis: optimizer step · drag to zoom, double-click to reset</p>
<table class="summary"><tr><th>run</th><th>steps logged</th><th>last step</th><th>first loss</th><th>last loss</th><th>tokens</th><th>mean tok/s</th><th>time (s)</th><th>skipped steps</th><th>checkpoints</th></tr>
${runs.map((r) => `<tr>${summary(r)}</tr>`).join("\n")}</table>
${finalEvalTable(runs)}
<div class="legend">${runs.map((r, i) => `<span><span class="swatch" style="background:${colorOf(i)}"></span>${esc(r.name)}</span>`).join("")}</div>
<div class="grid">
${figures}
</div>
${runs.map((r, i) => runSection(r, i, runs.length === 1)).join("\n")}
<script type="application/json" id="olmo-data">${inlineJson({ charts: pageCharts })}</script>
<script>
/* uPlot ${UPLOT.version}, ${UPLOT.homepage}, inlined from its npm package:
${UPLOT.license}
*/
${UPLOT.script}
</script>
<script>
${clientScript()}
</script>
</body></html>
`;
}
