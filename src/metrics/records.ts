// What a run's numbers are: one record per optimizer step (the trainer writes it, the monitors add
// to it, metrics.jsonl and TensorBoard carry it) and the general metrics.jsonl row (steps, evals).
// A leaf: the trainer, the monitors, the metrics writers and the report all read these shapes.

export interface StepRecord {
  step: number;
  loss: number;
  ce_loss: number;
  z_loss: number;
  grad_norm: number;
  lr: number;
  tokens: number;
  tokens_per_s: number;
  ms: number;
  /** 1 when the skip rule (optim.skipSteps) rejected the update, else 0 (OLMo-core's "optim/step skipped") */
  step_skipped: number;
}

export type MetricsRecord = { step: number } & Record<string, number | string>;

/** An evaluation record: {"step", "eval": set or task, "kind": "lm" | "mc", ...}. */
export interface EvalRecord {
  step: number;
  eval: string;
  kind: "lm" | "mc";
  loss?: number;
  ce_loss?: number;
  z_loss?: number;
  ppl?: number;
  n_tokens?: number;
  acc_raw?: number;
  acc_per_token?: number;
  acc_per_char?: number;
  acc_uncond?: number;
  n_questions?: number;
}
