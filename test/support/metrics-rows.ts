// A run's metrics.jsonl as the tests compare it: its history as the one reader sees it
// (src/metrics/metrics-history.ts: restart markers applied, abandoned attempts and damaged lines
// left out), as plain rows — the step records in step order (fields a record lacks left out), then
// the eval records in step order.
import { join } from "node:path";
import { readMetricsHistory } from "../../src/metrics/metrics-history.ts";

export function historyRows(runDir: string): Record<string, number | string>[] {
  const h = readMetricsHistory(join(runDir, "metrics.jsonl"));
  const s = h.steps, keys = s.keys();
  const steps = Array.from(s.steps, (step, i) => {
    const row: Record<string, number | string> = { step };
    for (const k of keys) if (!Number.isNaN(s.column(k)![i])) row[k] = s.column(k)![i];
    return row;
  });
  return [...steps, ...(h.evals as unknown as Record<string, number | string>[])];
}
