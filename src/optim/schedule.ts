// Learning-rate schedules as pure functions of the step (allenai/OLMo-core @ d7301e62,
// src/olmo_core/optim/scheduler.py: CosWithWarmup, LinearWithWarmup, ConstantScheduler). The trainer calls them with the 1-based step of the update being made.
import { z } from "zod";

export const ScheduleSchema = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("cosine"),
    warmupSteps: z.number().int().nonnegative(),
    /** final LR as a fraction of the peak */
    alpha: z.number().min(0).max(1).default(0.1),
    /** the step the cosine reaches alpha*lr; defaults to the run's total steps */
    tMaxSteps: z.number().int().positive().optional(),
  }).strict(),
  z.object({
    kind: z.literal("linear"),
    warmupSteps: z.number().int().nonnegative().default(0),
    alpha: z.number().min(0).max(1).default(0),
    tMaxSteps: z.number().int().positive().optional(),
  }).strict(),
  z.object({ kind: z.literal("constant"), warmupSteps: z.number().int().nonnegative().default(0) }).strict(),
]);
export type Schedule = z.output<typeof ScheduleSchema>;

/** CosWithWarmup: linear warmup from 0, then cosine from lr0 to alpha*lr0 at tMax. */
export function cosineWithWarmup(step: number, lr0: number, warmup: number, tMax: number, alpha: number): number {
  if (step < warmup) return (lr0 * step) / warmup;
  if (step >= tMax) return lr0 * alpha;
  const floor = alpha * lr0;
  return floor + ((lr0 - floor) * (1 + Math.cos((Math.PI * (step - warmup)) / (tMax - warmup)))) / 2;
}

/** LinearWithWarmup: linear warmup from 0, then linear from lr0 to alpha*lr0 at tMax. */
export function linearWithWarmup(step: number, lr0: number, warmup: number, tMax: number, alpha: number): number {
  if (step < warmup) return (lr0 * step) / warmup;
  if (step >= tMax) return lr0 * alpha;
  const floor = alpha * lr0;
  return lr0 - ((lr0 - floor) * (step - warmup)) / (tMax - warmup);
}

export function lrAt(schedule: Schedule, step: number, lr0: number, totalSteps: number): number {
  switch (schedule.kind) {
    case "cosine":
      return cosineWithWarmup(step, lr0, schedule.warmupSteps, schedule.tMaxSteps ?? totalSteps, schedule.alpha);
    case "linear":
      return linearWithWarmup(step, lr0, schedule.warmupSteps, schedule.tMaxSteps ?? totalSteps, schedule.alpha);
    case "constant":
      return step < schedule.warmupSteps ? (lr0 * step) / schedule.warmupSteps : lr0;
  }
}
