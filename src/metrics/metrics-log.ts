// metrics.jsonl: a run's numbers as one JSON object per line, only ever appended (rank 0 writes it;
// `olmo eval --record` appends to a folder's). Three kinds of line:
//   a step record     {"step": 7, "loss": …, "lr": …, …}                (src/metrics/records.ts)
//   an eval record    {"step": 7, "eval": "heldout", "kind": "lm", …}
//   a restart marker  {"step": 3, "restart": true}   the run started again after step 3: what an
//                     earlier attempt recorded past step 3 is not the run's history any more
// The file stays append-only (nothing abandoned is erased); readers apply the markers
// (metrics-history.ts). This file owns the writers' rule: before anything is appended the file must
// end in "\n". A crash or a full disk can leave the last line cut short; appending after it would
// glue the next record onto it and damage both. So every append first looks at the tail: a last
// line that holds a whole record only lost its "\n" (it gets one), anything else is a torn record
// and is cut off (its numbers were never whole).
import { closeSync, fstatSync, ftruncateSync, fsyncSync, openSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { parseJson } from "../input.ts";
import type { MetricsRecord } from "./records.ts";

export const METRICS_FILE = "metrics.jsonl";
export const metricsPath = (dir: string): string => join(dir, METRICS_FILE);

/** The marker a run appends when it starts again after `step` over a non-empty metrics.jsonl. */
export interface RestartMarker {
  step: number;
  restart: true;
}
export const restartMarker = (step: number): RestartMarker => ({ step, restart: true });
export const isRestartMarker = (r: object): boolean => (r as { restart?: unknown }).restart === true;

/** A line that is one whole record: a JSON object with an integer "step". */
export function parseRecord(line: string): MetricsRecord | null {
  let v: unknown;
  try {
    v = parseJson(line);
  } catch {
    return null;
  }
  return v !== null && typeof v === "object" && !Array.isArray(v) && Number.isInteger((v as { step?: unknown }).step) ? (v as MetricsRecord) : null;
}

/** What the tail check found: a whole last record given its "\n", or a torn one cut off. */
export interface TailRepair {
  kind: "completed" | "cut";
  bytes: number;
}

const SCAN_BYTES = 64 * 1024;
/** a torn tail longer than this is not read back to see whether it is whole: no record is that long */
const MAX_RECORD_BYTES = 1 << 20;

/** Make the file behind `fd` (opened for appending) end in "\n" or be empty; null when it already did. */
export function repairTail(fd: number): TailRepair | null {
  const size = fstatSync(fd).size;
  if (size === 0) return null;
  const last = Buffer.alloc(1);
  readSync(fd, last, 0, 1, size - 1);
  if (last[0] === 0x0a) return null;
  // the start of the last line: just after the last "\n", scanning back one chunk at a time
  let lineStart = 0;
  const chunk = Buffer.alloc(SCAN_BYTES);
  for (let end = size; end > 0; ) {
    const start = Math.max(0, end - SCAN_BYTES);
    readSync(fd, chunk, 0, end - start, start);
    const at = chunk.subarray(0, end - start).lastIndexOf(0x0a);
    if (at >= 0) {
      lineStart = start + at + 1;
      break;
    }
    end = start;
  }
  const tailBytes = size - lineStart;
  if (tailBytes <= MAX_RECORD_BYTES) {
    const tail = Buffer.alloc(tailBytes);
    readSync(fd, tail, 0, tailBytes, lineStart);
    if (parseRecord(tail.toString("utf8")) !== null) {
      writeSync(fd, "\n");
      return { kind: "completed", bytes: tailBytes };
    }
  }
  ftruncateSync(fd, lineStart);
  fsyncSync(fd);
  return { kind: "cut", bytes: tailBytes };
}

/** The line a writer prints about a repaired tail. */
export function describeRepair(path: string, r: TailRepair): string {
  return r.kind === "completed"
    ? `${path}: its last record had lost its line end (a crash while appending); completed it`
    : `${path}: its last line was cut short (a crash or a full disk while appending); dropped those ${r.bytes} bytes, no whole record was in them`;
}

/** Append records (one line each) after making sure the file ends in "\n"; returns the repair made, if any. */
export function appendRecords(path: string, records: (MetricsRecord | RestartMarker)[]): TailRepair | null {
  if (records.length === 0) return null;
  const fd = openSync(path, "a+");
  try {
    const repair = repairTail(fd);
    writeSync(fd, records.map((r) => JSON.stringify(r) + "\n").join(""));
    return repair;
  } finally {
    closeSync(fd);
  }
}

/** Whether metrics.jsonl exists with something in it (a run writing into it again marks its restart). */
export function hasRecords(path: string): boolean {
  try {
    const fd = openSync(path, "r");
    try {
      return fstatSync(fd).size > 0;
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}
