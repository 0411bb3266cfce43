// Which fields of a run config change what the steps after a resume compute — the one list, beside
// the schema, that the resume check reads. A resume under different values would silently switch
// the run onto another curve (a longer cosine schedule moves the LR of every step left), so each
// such change is refused in one line naming it, old → new, until the user accepts it explicitly.
// Every field of the schema is classified here (a test checks that none is forgotten):
//   computes  the update of every later step (optimizer, schedule, batch): accept with --accept-change
//   length    the run's length (train.steps, also when it comes from budgetTokens): only while the LR
//             schedule spans the run (cosine/linear without tMaxSteps), then as `computes`
//   data      the data order: not compared here — the data position's rule (src/data/resume.ts, after
//             OLMo-core's loader) decides when the run is loaded: other files are refused (but not the
//             same data under another root), another data.seed continues the checkpoint's order with a
//             `data:` line, as OLMo-core does; data.ignoreFingerprintMismatch accepts other data
// train.seqLen is `computes`: a resume under another instance length is what OLMo-core allows (the
// order of max-target chunks continues at the same token), but it changes every later step's
// batches, so it is not silent here — accepted with --accept-change, then the data rule applies.
//   model     the weights' shapes: a checkpoint of another model is refused when it is loaded
//   free      logging, evaluation, checkpointing, performance knobs, where the run's files go
import { CONFIG_FIELDS } from "./fields.ts";
import { type RunConfig, totalSteps } from "./schema.ts";

export type ResumeRule = "computes" | "length" | "data" | "model" | "free";

/** By field path or section prefix (the longest match wins). */
const RULES: Record<string, ResumeRule> = {
  name: "free", runDir: "free", stage: "free", ingredient: "free", backend: "free", threads: "free",
  model: "model", "model.initStd": "free", "model.maxSeqLen": "free", // init only; the RoPE table's length (train.seqLen is what is computed)
  data: "data", "data.allowRepetition": "free", "data.ignoreFingerprintMismatch": "free",
  "train.seqLen": "computes", "train.globalBatchInstances": "computes",
  "train.steps": "length", "train.budgetTokens": "length",
  // micro-batches and recompute give the same gradients (any layout resumes any checkpoint); initSeed only initializes
  "train.microBatchInstances": "free", "train.recompute": "free", "train.initSeed": "free",
  "train.logEvery": "free", "train.samplePrompt": "free", "train.sampleTokens": "free",
  optim: "computes",
  checkpoint: "free", eval: "free", monitor: "free",
};

export function resumeRule(path: string): ResumeRule | undefined {
  for (let p = path; p; p = p.includes(".") ? p.slice(0, p.lastIndexOf(".")) : "") if (p in RULES) return RULES[p];
  return undefined;
}

/** Fields with no rule (a new schema field must be classified above). */
export function unclassifiedFields(): string[] {
  return CONFIG_FIELDS.map((f) => f.path).filter((p) => resumeRule(p) === undefined);
}

/**
 * What a checkpoint says about the run that wrote it, as field path → value: every field of a native
 * checkpoint's saved run config (`train.steps` the run's length in steps, however it was given), or
 * the few an OLMo-core checkpoint carries.
 */
export type SavedSettings = Record<string, unknown>;

export function settingsOf(cfg: RunConfig | Record<string, unknown>): SavedSettings {
  const out: SavedSettings = {};
  for (const f of CONFIG_FIELDS) {
    let v: unknown = cfg;
    for (const k of f.path.split(".")) v = v !== null && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined;
    out[f.path] = v;
  }
  const c = cfg as RunConfig;
  try {
    out["train.steps"] = totalSteps(c);
  } catch {
    // a saved config without a length: nothing to compare
  }
  return out;
}

export interface ResumeChange {
  path: string;
  was: unknown;
  now: unknown;
  rule: "computes" | "length";
}

/** Whether the LR at a step depends on the run's length (the schedule ends at the last step). */
function scheduleSpansRun(s: SavedSettings): boolean {
  return s["optim.schedule.kind"] !== "constant" && s["optim.schedule.tMaxSteps"] === undefined;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The changes from `saved` to `now` that alter what the resumed steps compute (only fields `saved` has). */
export function resumeChanges(saved: SavedSettings, now: RunConfig): ResumeChange[] {
  const cur = settingsOf(now);
  const spans = scheduleSpansRun(cur) || ("optim.schedule.kind" in saved && scheduleSpansRun(saved));
  const out: ResumeChange[] = [];
  for (const [path, was] of Object.entries(saved)) {
    const rule = resumeRule(path);
    if ((rule !== "computes" && rule !== "length") || same(was, cur[path])) continue;
    if (path === "train.budgetTokens") continue; // its effect is train.steps (the length in steps)
    if (rule === "length" && !spans) continue;
    out.push({ path, was, now: cur[path], rule });
  }
  return out;
}

const show = (v: unknown) => (v === undefined ? "(unset)" : typeof v === "string" ? v : JSON.stringify(v));

/** The one-line refusal of a resume under changes not accepted by --accept-change, or null. */
export function resumeRefusal(from: string, changes: ResumeChange[], now: RunConfig, accepted: readonly string[]): string | null {
  const open = changes.filter((c) => !accepted.includes(c.path));
  if (!open.length) return null;
  const listed = open.map((c) => `${c.path} ${show(c.was)} → ${show(c.now)}${c.rule === "length" ? ` (the ${now.optim.schedule.kind} schedule spans the run: the LR of every step left changes)` : ""}`);
  return `${from} was trained with other settings: ${listed.join(", ")}; resuming would change what the next steps compute. ` +
    `To continue with the new values add --accept-change=${open.map((c) => c.path).join(",")}; to keep the run as it was, drop the changes (or train elsewhere with --run-dir)`;
}

/** "train.steps 60 → 400, optim.lr 0.001 → 0.002" (for the resume line). */
export function describeChanges(changes: ResumeChange[]): string {
  return changes.map((c) => `${c.path} ${show(c.was)} → ${show(c.now)}`).join(", ");
}
