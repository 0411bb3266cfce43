// The one reader of metrics.jsonl (the report, the rehearsal, anything that reads a run's numbers):
// what the file says the run's history is, as one consistent series.
//  - A damaged line (cut short by a crash or a full disk, not JSON, no integer "step") is skipped and
//    counted with its line number; the rest of the run still reads (the writers' side of the same
//    rule is in metrics-log.ts).
//  - Records of abandoned attempts are superseded: a restart marker {"step": S, "restart": true}
//    drops every earlier step and eval record past S; a step record at or below the last one read
//    drops the earlier records from its step on (files written before the markers existed, and
//    the same rule as TensorBoard's own loader: tensorflow/tensorboard data/server/reservoir.rs,
//    "a new record with step s preempts any records with steps not smaller than s").
//  - A re-done evaluation (same set, same step) replaces the earlier one.
// Step records are kept as columns (Float64Array per field, NaN where a record lacks it or wrote
// null for a non-finite value), so a 1M-step run reads in a few hundred MB at most; the file is read
// in chunks, never whole.
import { closeSync, existsSync, openSync, readSync } from "node:fs";
import { parseJson } from "../input.ts";
import { isRestartMarker, parseRecord } from "./metrics-log.ts";
import type { EvalRecord, MetricsRecord } from "./records.ts";

export interface DamagedLine {
  line: number;
  why: string;
}

/** The step records of the history, ascending by step, one column per numeric field. */
export class StepColumns {
  private stepsBuf = new Float64Array(1024);
  private readonly cols = new Map<string, Float64Array>();
  length = 0;

  get steps(): Float64Array {
    return this.stepsBuf.subarray(0, this.length);
  }
  /** The field's values (NaN where absent or non-finite), or undefined when no record has it. */
  column(key: string): Float64Array | undefined {
    return this.cols.get(key)?.subarray(0, this.length);
  }
  keys(): string[] {
    return [...this.cols.keys()];
  }
  /** index of the first record whose step is ≥ step (the steps ascend) */
  lowerBound(step: number): number {
    let lo = 0, hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.stepsBuf[mid] < step) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  /** the value of `key` at exactly `step`, or null */
  at(key: string, step: number): number | null {
    const i = this.lowerBound(step);
    const v = i < this.length && this.stepsBuf[i] === step ? this.cols.get(key)?.[i] : undefined;
    return v === undefined || Number.isNaN(v) ? null : v;
  }
  /** the last value of `key` that is a number, or null */
  last(key: string): number | null {
    const c = this.cols.get(key);
    for (let i = this.length - 1; c && i >= 0; i--) if (!Number.isNaN(c[i])) return c[i];
    return null;
  }
  truncate(n: number): void {
    this.length = Math.min(this.length, n);
  }
  push(r: MetricsRecord): void {
    if (this.length === this.stepsBuf.length) this.grow();
    const i = this.length++;
    this.stepsBuf[i] = r.step;
    for (const c of this.cols.values()) c[i] = NaN; // a re-used slot keeps nothing of a dropped record
    for (const [k, v] of Object.entries(r)) {
      if (k === "step" || (typeof v !== "number" && v !== null)) continue;
      let c = this.cols.get(k);
      if (!c) {
        c = new Float64Array(this.stepsBuf.length).fill(NaN);
        this.cols.set(k, c);
      }
      c[i] = v === null ? NaN : v;
    }
  }
  private grow(): void {
    const n = this.stepsBuf.length * 2;
    const steps = new Float64Array(n);
    steps.set(this.stepsBuf);
    this.stepsBuf = steps;
    for (const [k, c] of this.cols) {
      const w = new Float64Array(n).fill(NaN);
      w.set(c);
      this.cols.set(k, w);
    }
  }
}

export interface MetricsHistory {
  steps: StepColumns;
  /** by step, then the order they were written */
  evals: EvalRecord[];
  damaged: DamagedLine[];
  /** records of abandoned attempts left out of the history */
  superseded: number;
  /** the steps the run restarted after, in file order */
  restarts: number[];
}

const CHUNK_BYTES = 8 << 20;

export function readMetricsHistory(path: string): MetricsHistory {
  const steps = new StepColumns();
  const evals = new Map<string, EvalRecord>();
  const damaged: DamagedLine[] = [];
  const restarts: number[] = [];
  let superseded = 0;
  /** drop every record of an earlier attempt from `step` on */
  const supersedeFrom = (step: number) => {
    const keep = steps.lowerBound(step);
    superseded += steps.length - keep;
    steps.truncate(keep);
    for (const [k, e] of evals) if (e.step >= step) {
      evals.delete(k);
      superseded++;
    }
  };
  const take = (text: string, lineNo: number, terminated: boolean) => {
    if (!text.trim()) return;
    const r = parseRecord(text);
    if (!r) {
      damaged.push({ line: lineNo, why: !terminated ? "cut short (no line end)" : isJson(text) ? 'no integer "step"' : "not JSON" });
      return;
    }
    if (isRestartMarker(r)) {
      restarts.push(r.step);
      supersedeFrom(r.step + 1);
    } else if (typeof r.eval === "string") {
      const key = `${r.eval}\u0000${r.step}`;
      if (evals.delete(key)) superseded++; // re-keyed: the re-done evaluation takes its place in order
      evals.set(key, r as unknown as EvalRecord);
    } else {
      if (steps.length > 0 && steps.steps[steps.length - 1] >= r.step) supersedeFrom(r.step);
      steps.push(r);
    }
  };
  if (existsSync(path)) readLines(path, take);
  const ordered = [...evals.values()].map((e, i) => ({ e, i })).sort((a, b) => a.e.step - b.e.step || a.i - b.i).map((x) => x.e);
  return { steps, evals: ordered, damaged, superseded, restarts };
}

function isJson(text: string): boolean {
  try {
    parseJson(text);
    return true;
  } catch {
    return false;
  }
}

/** Call `take` for every line of the file, read in chunks; the last line may lack its "\n". */
function readLines(path: string, take: (text: string, lineNo: number, terminated: boolean) => void): void {
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(CHUNK_BYTES);
    let carry: Buffer = Buffer.alloc(0);
    let lineNo = 0;
    for (let pos = 0; ; ) {
      const n = readSync(fd, buf, 0, CHUNK_BYTES, pos);
      if (n === 0) break;
      pos += n;
      const data = carry.length ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n);
      let start = 0;
      for (let nl = data.indexOf(0x0a, start); nl >= 0; nl = data.indexOf(0x0a, start)) {
        take(data.toString("utf8", start, nl), ++lineNo, true);
        start = nl + 1;
      }
      carry = Buffer.from(data.subarray(start)); // a copy: buf is reused by the next read
    }
    if (carry.length) take(carry.toString("utf8"), ++lineNo, false);
  } finally {
    closeSync(fd);
  }
}

/** One line for a reader to print when a file had damaged lines: how many, and where. */
export function describeDamage(path: string, damaged: DamagedLine[]): string | null {
  if (damaged.length === 0) return null;
  const shown = damaged.slice(0, 5).map((d) => `line ${d.line}: ${d.why}`).join("; ");
  return `${path}: skipped ${damaged.length} damaged line${damaged.length === 1 ? "" : "s"} (${shown}${damaged.length > 5 ? "; …" : ""})`;
}
