// Where a run's numbers go (rank 0 only): metrics.jsonl, one JSON object per line — a step record
// per step, an eval record ({"eval": name, "kind": "lm" | "mc", ...}) per set and evaluation — and,
// unless monitor.tensorboard is off, the same scalars as TensorBoard events in the run folder.
import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { MetricsRecord } from "./records.ts";
import { TensorBoardWriter } from "./tensorboard.ts";

/** TensorBoard tag of each step field that is charted (the rest stay in metrics.jsonl only). */
const STEP_TAGS: Record<string, string> = {
  loss: "train/loss", ce_loss: "train/ce_loss", z_loss: "train/z_loss", grad_norm: "train/grad_norm", lr: "train/lr",
  step_skipped: "train/step_skipped", tokens_per_s: "throughput/tokens_per_s", mfu: "throughput/mfu",
  mem_peak_bytes: "memory/device_peak_bytes", rss_bytes: "memory/host_rss_bytes",
};
/** eval fields charted, under eval/<name>/<field> */
const EVAL_FIELDS = ["loss", "ce_loss", "z_loss", "ppl", "acc_raw", "acc_per_token", "acc_per_char", "acc_uncond"];

export class RunMetrics {
  readonly path: string;
  private readonly tb: TensorBoardWriter | null;

  constructor(runDir: string, opts: { tensorboard: boolean }) {
    this.path = join(runDir, "metrics.jsonl");
    this.tb = opts.tensorboard ? new TensorBoardWriter(runDir) : null;
  }

  write(records: MetricsRecord[]): void {
    if (records.length === 0) return;
    appendFileSync(this.path, records.map((r) => JSON.stringify(r) + "\n").join(""));
    if (!this.tb) return;
    const byStep = new Map<number, [string, number][]>();
    for (const r of records) {
      const name = typeof r.eval === "string" ? r.eval : null;
      const scalars = byStep.get(r.step) ?? [];
      for (const [k, v] of Object.entries(r)) {
        if (typeof v !== "number") continue;
        const tag = name === null ? STEP_TAGS[k] : EVAL_FIELDS.includes(k) ? `eval/${name}/${k}` : undefined;
        if (tag) scalars.push([tag, v]);
      }
      byStep.set(r.step, scalars);
    }
    for (const [step, scalars] of byStep) this.tb.scalars(step, scalars);
  }

  close(): void {
    this.tb?.close();
  }
}

/**
 * Append one evaluation made outside a run (`olmo eval --record DIR`, the rehearsal's soup) to
 * DIR/metrics.jsonl, creating DIR: `olmo report` then draws it beside the runs, e.g. a soup's
 * held-out loss as one point next to its ingredients' curves.
 */
export function recordEval(dir: string, record: MetricsRecord & { eval: string; kind: "lm" | "mc" }): void {
  mkdirSync(dir, { recursive: true });
  appendFileSync(join(dir, "metrics.jsonl"), JSON.stringify(record) + "\n");
}
