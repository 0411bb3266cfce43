// olmo report RUN_DIR [RUN_DIR...] [--out FILE]: a self-contained HTML page (no network) with the
// loss, grad-norm, LR and throughput curves of the runs overlaid, their configs and checkpoints.
// A damaged line in a run's metrics.jsonl is skipped with a warning on stderr, not a refusal.
import { existsSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { UserError } from "../../errors.ts";
import { describeDamage } from "../../metrics/metrics-history.ts";
import { metricsPath } from "../../metrics/metrics-log.ts";
import { writeFileAtomic } from "../../output-dir.ts";
import { readRun, renderReport } from "../../metrics/report.ts";
import type { CommandSpec } from "../args.ts";

export const reportCommand: CommandSpec = {
  name: "report",
  summary: "Write an HTML report (loss, grad norm, LR, throughput; config; checkpoints) of one or more runs",
  usage: "olmo report RUN_DIR [RUN_DIR...] [--out FILE] [--title TEXT]",
  options: [
    { name: "out", type: "string", help: "HTML file to write (default: RUN_DIR/report.html for one run, ./report.html for several)", metavar: "FILE" },
    { name: "title", type: "string", help: "page title (default: the run names)", metavar: "TEXT" },
  ],
  async run(args) {
    const dirs = args.positional;
    if (dirs.length === 0) throw new UserError("report: give at least one RUN_DIR (a folder with metrics.jsonl, written by olmo train)");
    const runs = dirs.map((d) => readRun(d));
    for (const r of runs) {
      const damage = describeDamage(metricsPath(r.dir), r.history.damaged);
      if (damage) console.error(`report: warning: ${damage}`);
    }
    const out = resolve((args.opts.out as string | undefined) ?? (dirs.length === 1 ? join(dirs[0], "report.html") : "report.html"));
    const parent = dirname(out);
    if (!existsSync(parent) || !statSync(parent).isDirectory()) throw new UserError(`report: --out "${out}": folder "${parent}" does not exist`);
    if (existsSync(out) && statSync(out).isDirectory()) throw new UserError(`report: --out "${out}" is a folder; give a file name`);
    const html = renderReport(runs, { title: args.opts.title as string | undefined });
    writeFileAtomic(out, html, "report: --out");
    const points = runs.reduce((a, r) => a + r.history.steps.length, 0);
    console.log(`report: ${runs.length} run${runs.length === 1 ? "" : "s"}, ${points} steps -> ${out} (${(Buffer.byteLength(html) / 1024).toFixed(0)} KiB)`);
  },
};
