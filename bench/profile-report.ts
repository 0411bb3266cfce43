// bench:step --profile: the table of device time per kernel class (src/backend/profile.ts) with the
// share of the step and the achieved TFLOP/s (GEMMs, attention) or GB/s (everything else) next to
// the device's peak, and the peaks themselves measured in the same run where they can be:
//   FLOP/s: CUDA — the dense bf16 datasheet peak (--peak-tflops); CPU — the FMA loop (bench/cpu-peak.ts)
//   bytes/s: a STREAM-style add over 3 × 256 MiB timed with the same events (read + write counted)
import type { Backend } from "../src/backend/backend.ts";
import type { ClassTotals } from "../src/backend/profile.ts";

export interface Peaks { flops: number; flopsSource: string; bytesPerS: number; bytesSource: string }

/** best of 5 STREAM-style adds c = a + b over 256 MiB arrays (the library's own, multi-threaded on
 *  the CPU), timed with timing events: bytes read + written per second */
export function measureStreamBandwidth(be: Backend, bytes = 256 << 20): number {
  const n = Math.floor(bytes / be.actBytes);
  const a = be.alloc(bytes), b = be.alloc(bytes), c = be.alloc(bytes), e0 = be.createEvent(), e1 = be.createEvent();
  be.zero(a, bytes);
  be.zero(b, bytes);
  let best = Infinity;
  for (let i = 0; i < 6; i++) {
    be.recordEvent(e0);
    be.add(c, a, b, n);
    be.recordEvent(e1);
    const ms = be.eventElapsedMs(e0, e1);
    if (i > 0) best = Math.min(best, ms); // the first one warms up
  }
  be.destroyEvent(e0);
  be.destroyEvent(e1);
  for (const p of [a, b, c]) be.free(p);
  return (3 * n * be.actBytes) / (best / 1000);
}

export interface ProfileTable { text: string; rows: ProfileRow[] }
export interface ProfileRow { cls: string; calls_per_step: number; ms_per_step: number; share: number; tflops: number | null; gbps: number | null; of_peak: number | null }

/** steps: how many profiled steps the totals cover; stepMs: the wall time of one profiled step */
export function profileTable(totals: ClassTotals[], steps: number, stepMs: number, peaks: Peaks, timing: string): ProfileTable {
  const rows: ProfileRow[] = totals.map((t) => {
    const ms = t.ms / steps, s = t.ms / 1000;
    const tflops = t.flops > 0 && s > 0 ? t.flops / s / 1e12 : null;
    const gbps = t.flops === 0 && t.bytes > 0 && s > 0 ? t.bytes / s / 1e9 : null;
    const of = tflops !== null ? (tflops * 1e12) / peaks.flops : gbps !== null ? (gbps * 1e9) / peaks.bytesPerS : null;
    return { cls: t.cls, calls_per_step: t.calls / steps, ms_per_step: ms, share: ms / stepMs, tflops, gbps, of_peak: of };
  });
  const busy = rows.reduce((a, r) => a + r.ms_per_step, 0);
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const lines = [
    `profile: ${timing}, ${steps} step${steps === 1 ? "" : "s"} averaged; step ${stepMs.toFixed(1)} ms (with the timers), kernels ${busy.toFixed(1)} ms`,
    ["class".padEnd(22), "calls".padStart(6), "ms/step".padStart(9), "share".padStart(7), "achieved".padStart(15), "of peak".padStart(8)].join(" "),
  ];
  for (const r of rows) {
    const ach = r.tflops !== null ? `${r.tflops.toFixed(r.tflops >= 10 ? 1 : 3)} TFLOP/s` : r.gbps !== null ? `${r.gbps.toFixed(1)} GB/s` : "-";
    lines.push([r.cls.padEnd(22), r.calls_per_step.toFixed(0).padStart(6), r.ms_per_step.toFixed(2).padStart(9), pct(r.share).padStart(7),
      ach.padStart(15), (r.of_peak !== null ? pct(r.of_peak) : "-").padStart(8)].join(" "));
  }
  lines.push([`(between kernels)`.padEnd(22), "".padStart(6), (stepMs - busy).toFixed(2).padStart(9), pct((stepMs - busy) / stepMs).padStart(7)].join(" "));
  lines.push(`peaks: ${(peaks.flops / 1e12).toFixed(3)} TFLOP/s (${peaks.flopsSource}); ${(peaks.bytesPerS / 1e9).toFixed(1)} GB/s (${peaks.bytesSource})`);
  return { text: lines.join("\n"), rows };
}
