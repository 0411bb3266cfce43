// Which TensorBoard scalars a metrics.jsonl record becomes: our own tags, and the same numbers under
// OLMo-core's metric names, so a run overlays OLMo-core's dashboards. OLMo-core's names and units,
// read at allenai/OLMo-core @ d7301e6255e03ab6332af17b1b0c304c9d21193b:
//   train/CE loss, train/Z loss         train/trainer.py:66,68 (TRAIN_CE_LOSS_METRIC, TRAIN_Z_LOSS_METRIC)
//   train/PPL                           train/trainer.py:1131-1135: exp(CE loss), only while CE loss < 10
//   optim/step skipped                  train/trainer.py:69 (OPTIM_STEP_SKIPPED_METRIC)
//   optim/total grad norm               train/callbacks/grad_clipper.py:33 (the norm before clipping)
//   optim/LR (group 0)                  train/callbacks/scheduler.py:43 (one LR for every group here)
//   throughput/total tokens             train/callbacks/speed_monitor.py:114 (global tokens seen)
//   throughput/device/TPS               speed_monitor.py:84,118: a rank's tokens ÷ its TP/CP degree
//                                       per second, i.e. the run's tokens/s ÷ its devices
//   throughput/device/MFU               speed_monitor.py:130: a percentage (ours is a fraction)
//   eval/lm/<set>/CE loss, …/PPL        train/callbacks/evaluator_callback.py:112 (eval/<evaluator
//                                       name>/<metric>, name "lm") with eval/lm_evaluator.py:117-118
//   eval/downstream/<task> (accuracy), eval/downstream/<task> (length-normalized accuracy)
//                                       evaluator_callback.py DownstreamEvaluator.metric_type_to_label
//                                       ("acc", "len_norm"): our acc_raw and acc_per_char (the same
//                                       scores: src/eval/mc-eval.ts). Our acc_uncond is not OLMo's
//                                       "pmi_dc" (a difference, theirs a ratio) and has no OLMo name.
// Not given OLMo-core's names: device memory (OLMo-core's "system/GPU active mem (GiB)" is torch's
// peak since the start of training, ours the allocator's peak within each step).
import type { MetricsRecord } from "./records.ts";

export type Scalar = [tag: string, value: number];

/** Our own tag of each step field that is charted (the rest stay in metrics.jsonl only). */
const STEP_TAGS: Record<string, string> = {
  loss: "train/loss", ce_loss: "train/ce_loss", z_loss: "train/z_loss", grad_norm: "train/grad_norm", lr: "train/lr",
  step_skipped: "train/step_skipped", tokens_per_s: "throughput/tokens_per_s", mfu: "throughput/mfu",
  mem_peak_bytes: "memory/device_peak_bytes", rss_bytes: "memory/host_rss_bytes",
};
/** eval fields charted, under eval/<name>/<field> */
const EVAL_FIELDS = ["loss", "ce_loss", "z_loss", "ppl", "acc_raw", "acc_per_token", "acc_per_char", "acc_uncond"];

/** OLMo-core's perplexity is only logged while the CE loss is below this (trainer.py:1134) */
const OLMO_CORE_PPL_BELOW = 10;

const num = (r: MetricsRecord, k: string): number | undefined => (typeof r[k] === "number" ? (r[k] as number) : undefined);

/** The scalars of one metrics.jsonl record; `devices`: the run's ranks (tp × dp), for per-device throughput. */
export function scalarsOf(r: MetricsRecord, devices: number): Scalar[] {
  const out: Scalar[] = [];
  const add = (tag: string, v: number | undefined) => {
    if (v !== undefined) out.push([tag, v]);
  };
  if (typeof r.eval === "string") {
    for (const f of EVAL_FIELDS) add(`eval/${r.eval}/${f}`, num(r, f));
    if (r.kind === "lm") {
      add(`eval/lm/${r.eval}/CE loss`, num(r, "ce_loss"));
      add(`eval/lm/${r.eval}/PPL`, num(r, "ppl"));
    } else if (r.kind === "mc") {
      add(`eval/downstream/${r.eval} (accuracy)`, num(r, "acc_raw"));
      add(`eval/downstream/${r.eval} (length-normalized accuracy)`, num(r, "acc_per_char"));
    }
    return out;
  }
  for (const [field, tag] of Object.entries(STEP_TAGS)) add(tag, num(r, field));
  const ce = num(r, "ce_loss");
  add("train/CE loss", ce);
  add("train/Z loss", num(r, "z_loss"));
  if (ce !== undefined && ce < OLMO_CORE_PPL_BELOW) add("train/PPL", Math.exp(ce));
  add("optim/total grad norm", num(r, "grad_norm"));
  add("optim/LR (group 0)", num(r, "lr"));
  add("optim/step skipped", num(r, "step_skipped"));
  add("throughput/total tokens", num(r, "tokens_processed"));
  const tps = num(r, "tokens_per_s");
  add("throughput/device/TPS", tps === undefined ? undefined : tps / devices);
  const mfu = num(r, "mfu");
  add("throughput/device/MFU", mfu === undefined ? undefined : 100 * mfu);
  return out;
}
