// olmo plan CONFIG [--json] [--mfu 0.4] [--gpus N] [--tp T] [--dp D] [--a.b=value ...]
// What a run will do, from its config alone: nothing is trained, no data or device is opened.
import { existsSync } from "node:fs";
import { loadConfig, loadConfigModule } from "../../config/load.ts";
import { UserError } from "../../errors.ts";
import { type Plan, planRun } from "../../train/plan.ts";
import type { CommandSpec } from "../args.ts";

const fmtInt = (n: number) => n.toLocaleString("en-US");
const fmtLr = (x: number) => x.toExponential(4);

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

function scaled(n: number): string {
  for (const [d, u] of [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "K"]] as const) if (Math.abs(n) >= d) return `${(n / d).toFixed(2)}${u}`;
  return String(n);
}

/** Thousands of checkpoints read badly: show the first and last few and a count (--json has all). */
function checkpointLines(p: Plan, show = 4): string[] {
  const row = (c: Plan["checkpoints"][number]) => `    ${c.name.padEnd(48)} lr ${fmtLr(c.lr)}`;
  const cs = p.checkpoints;
  if (cs.length <= 2 * show + 1) return cs.map(row);
  return [...cs.slice(0, show).map(row), `    … ${fmtInt(cs.length - 2 * show)} more …`, ...cs.slice(-show).map(row)];
}

/** train.recompute: one mode, or a per-layer list summarized as counts */
function recomputeText(r: Plan["recompute"]): string {
  if (typeof r === "string") return r;
  const counts = new Map<string, number>();
  for (const m of r) counts.set(m, (counts.get(m) ?? 0) + 1);
  return `per layer (${[...counts].map(([m, n]) => `${n}× ${m}`).join(", ")})`;
}

export function formatPlan(p: Plan): string {
  const s = p.schedule, m = p.memory_per_gpu_bytes, l = p.layout;
  const sched = s.kind === "constant" ? `constant, warmup ${s.warmupSteps}` : `${s.kind}, warmup ${s.warmupSteps}, alpha ${s.alpha}, t_max ${fmtInt(s.t_max_steps)} steps`;
  return [
    `plan: ${p.name} (stage ${p.stage}${p.ingredient !== null ? `, ingredient ${p.ingredient}` : ""})`,
    `  params              ${fmtInt(p.params)} (${scaled(p.params)}); ${fmtInt(p.params_no_embedding)} without the input embedding`,
    `  FLOPs per token     ${scaled(p.flops_per_token)} (6·N_matmul + 12·L·d·T)`,
    `  steps               ${fmtInt(p.steps)} × ${fmtInt(p.global_batch_tokens)} tokens = ${scaled(p.tokens)} tokens, ${p.total_flops.toExponential(3)} FLOPs`,
    `  init                ${p.init_from ?? "from scratch"}`,
    `  LR                  ${sched}; starts at ${fmtLr(p.lr_start)}, step 1: ${fmtLr(p.lr_first_step)} → step ${fmtInt(p.steps)}: ${fmtLr(p.lr_end)}`,
    `  checkpoints         ${fmtInt(p.checkpoints.length)} written (keeps the last ${p.checkpoints_kept}):`,
    ...checkpointLines(p),
    `  final checkpoint    ${p.final_checkpoint}`,
    `  layout              ${l.gpus} GPU${l.gpus === 1 ? "" : "s"} = tp ${l.tp} × dp ${l.dp} (ZeRO-1); micro-batch ${fmtInt(l.micro_batch_tokens)} tokens, gradient accumulation ${l.grad_accum}`,
    `  memory per GPU      weights ${gib(m.weights)} + grads ${gib(m.grads)} + optimizer ${gib(m.optimizer)} + activations ${gib(m.activations)} = ${gib(m.total)}` +
      (p.fits_h100_80gb ? " (fits an 80 GB H100)" : " — does NOT fit an 80 GB H100: raise --tp / --dp or lower train.microBatchInstances"),
    `  recompute           ${recomputeText(p.recompute)}; activations with every layer at ` +
      Object.entries(p.activations_by_recompute_bytes).map(([mode, b]) => `${mode} ${gib(b)}`).join(" · "),
    `  time                ${p.est_hours.toFixed(1)} h (${(p.est_hours / 24).toFixed(1)} days) on ${l.gpus} GPU${l.gpus === 1 ? "" : "s"} at ${(p.mfu * 100).toFixed(0)}% MFU of ${(p.peak_flops_per_gpu / 1e12).toFixed(1)} TFLOP/s`,
  ].join("\n");
}

interface SoupLike {
  name?: string;
  inputs: string[];
  weights?: number[];
  out?: string;
  format?: string;
}

function printSoup(s: SoupLike, json: boolean): void {
  const n = s.inputs.length;
  const weights = s.weights ?? s.inputs.map(() => 1 / n);
  const inputs = s.inputs.map((path, i) => ({ path, weight: weights[i], exists: existsSync(path) }));
  if (json) {
    console.log(JSON.stringify({ name: s.name ?? "soup", kind: "soup", inputs, out: s.out ?? null, format: s.format ?? null }));
    return;
  }
  console.log([
    `plan: ${s.name ?? "soup"} (soup: ${s.weights ? "weighted" : "uniform"} fp32 average of ${n} checkpoints, no training)`,
    ...inputs.map((x) => `    ${x.weight.toFixed(4)} × ${x.path}${x.exists ? "" : "  (not there yet)"}`),
    `  output              ${s.out ?? "(none given)"}${s.format ? ` (${s.format})` : ""}`,
  ].join("\n"));
}

export const planCommand: CommandSpec = {
  name: "plan",
  summary: "Show what a run will do before running it: size, FLOPs, steps, LR, checkpoint names, memory per GPU, time",
  usage: "olmo plan CONFIG [--json] [--mfu 0.4] [--gpus N] [--tp T] [--dp D] [--a.b=value ...]",
  options: [
    { name: "json", type: "boolean", help: "print one JSON object (every checkpoint listed)" },
    { name: "mfu", type: "number", help: "model FLOPs utilization assumed for the time estimate", default: 0.4 },
    { name: "gpus", type: "number", help: "GPUs (default: tp × dp, or 1)", metavar: "N" },
    { name: "tp", type: "number", help: "tensor-parallel degree", default: 1, metavar: "T" },
    { name: "dp", type: "number", help: "data-parallel degree, ZeRO-1 (default: gpus / tp)", metavar: "D" },
  ],
  overrides: true,
  async run(args) {
    if (args.positional.length !== 1) throw new UserError(`plan takes one CONFIG, got ${args.positional.length ? args.positional.join(" ") : "none"}`);
    const mod = (await loadConfigModule(args.positional[0])) as unknown as Record<string, unknown>;
    // configs/soup.ts is a soup, not a run: show what it averages
    if (Array.isArray(mod.inputs) && !("model" in mod)) return printSoup(mod as unknown as SoupLike, !!args.opts.json);
    const cfg = await loadConfig(args.positional[0], args.overrides);
    const o = args.opts as Record<string, number | undefined>;
    const plan = planRun(cfg, { layout: { gpus: o.gpus, tp: o.tp, dp: o.dp }, mfu: o.mfu });
    console.log(args.opts.json ? JSON.stringify(plan) : formatPlan(plan));
  },
};
