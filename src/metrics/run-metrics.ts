// Where a run's numbers go (rank 0 only): metrics.jsonl, one JSON object per line — a step record
// per step, an eval record ({"eval": name, "kind": "lm" | "mc", ...}) per set and evaluation — and,
// unless monitor.tensorboard is off, the same scalars as TensorBoard events in the run folder.
// Nothing is written until the first record: a finished run started again leaves both as they
// were. A run that starts again over records of an earlier attempt marks where its history
// resumes: a restart marker in metrics.jsonl (metrics-log.ts; the readers drop what it supersedes)
// and the older event files cut to the resumed step (tensorboard.ts).
import { mkdirSync } from "node:fs";
import { appendRecords, describeRepair, hasRecords, metricsPath, restartMarker, type RestartMarker } from "./metrics-log.ts";
import type { MetricsRecord } from "./records.ts";
import { TensorBoardWriter } from "./tensorboard.ts";
import { scalarsOf } from "./tensorboard-tags.ts";

export interface RunMetricsOptions {
  tensorboard: boolean;
  /** the step the run starts after: 0 for a fresh run, the checkpoint's step for a resumed one */
  resumedAfter: number;
  /** ranks of the run (tp × dp): OLMo-core's per-device throughput */
  devices: number;
  /** the resolved config (TensorBoard's text summary) */
  config?: unknown;
  /** where notes about repaired files go (a run's log) */
  log?: (line: string) => void;
}

export class RunMetrics {
  readonly path: string;
  private readonly tb: TensorBoardWriter | null;
  private started = false;

  constructor(runDir: string, private readonly opts: RunMetricsOptions) {
    this.path = metricsPath(runDir);
    this.tb = opts.tensorboard
      ? new TensorBoardWriter(runDir, {
        resumedAfter: opts.resumedAfter, config: opts.config,
        onCut: (file, n) => opts.log?.(`TensorBoard: ${file}: cut ${n} event${n === 1 ? "" : "s"} past step ${opts.resumedAfter} (an earlier attempt's, superseded by this one)`),
      })
      : null;
  }

  write(records: MetricsRecord[]): void {
    if (records.length === 0) return;
    const lines: (MetricsRecord | RestartMarker)[] = [];
    if (!this.started) {
      this.started = true;
      if (hasRecords(this.path)) lines.push(restartMarker(this.opts.resumedAfter));
    }
    lines.push(...records);
    const repair = appendRecords(this.path, lines);
    if (repair) this.opts.log?.(describeRepair(this.path, repair));
    if (!this.tb) return;
    const byStep = new Map<number, [string, number][]>();
    for (const r of records) byStep.set(r.step, [...(byStep.get(r.step) ?? []), ...scalarsOf(r, this.opts.devices)]);
    for (const [step, scalars] of byStep) this.tb.scalars(step, scalars);
  }

  close(): void {
    this.tb?.close();
  }
}

/**
 * Append one evaluation made outside a run (`olmo eval --record DIR`, the rehearsal's soup) to
 * DIR/metrics.jsonl, creating DIR: `olmo report` then draws it beside the runs, e.g. a soup's
 * held-out loss as one point next to its ingredients' curves. Returns a note when the file's torn
 * tail had to be repaired first.
 */
export function recordEval(dir: string, record: MetricsRecord & { eval: string; kind: "lm" | "mc" }): string | null {
  mkdirSync(dir, { recursive: true });
  const path = metricsPath(dir);
  const repair = appendRecords(path, [record]);
  return repair ? describeRepair(path, repair) : null;
}
