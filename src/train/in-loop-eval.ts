// In-loop evaluation of a training run (the `eval` config section), as OLMo-core's
// EvaluatorCallback (allenai/OLMo-core @ d7301e62 src/olmo_core/train/callbacks/evaluator_callback.py:
// every eval_interval steps, each evaluator over its whole data, metrics recorded per label) plus a
// run's first and last step. Perplexity sets run on the trainer's own model (forward only: the same
// arenas, no gradients, nothing of the training state touched, so the training curve is bitwise
// the same with and without eval); multiple-choice tasks on one [1, T] model over the same
// parameters, built once. Every set and task is opened when the run starts, so a missing file
// fails then, not at the first evaluation.
import { basename } from "node:path";
import type { RunConfig } from "../config/schema.ts";
import type { EvalSetConfig } from "../config/eval-schema.ts";
import { type EvalInstances, openEvalInstances } from "../data/eval-instances.ts";
import { readMixFile } from "../data/index.ts";
import { type McQuestion, readMcTask } from "../data/mc-task.ts";
import { UserError } from "../errors.ts";
import { Olmo2 } from "../model/olmo2.ts";
import { RankSummer } from "../parallel/comm/sum-over-ranks.ts";
import { embeddedBrownSplit } from "../data/brown/files.ts";
import { LmEvaluator, type LmEvalResult } from "../eval/lm-eval.ts";
import { MC_METRICS, type McEvalResult, McScorer, mcSeqLen } from "../eval/mc-eval.ts";
import type { MetricsRecord } from "../metrics/records.ts";
import type { Trainer } from "./trainer.ts";

export interface NamedSet {
  name: string;
  instances: EvalInstances;
}

/** The perplexity sets of a config: a mix file gives one set per label (OLMo-core's LMEvaluator reports per label). */
export async function openEvalSets(cfg: RunConfig, log: (l: string) => void, cacheDir?: string): Promise<NamedSet[]> {
  const out: NamedSet[] = [];
  const open = (name: string, paths: string[], s: EvalSetConfig) => out.push({ name, instances: openEvalInstances({
    paths, dtype: s.dtype, seqLen: cfg.train.seqLen, vocabSize: cfg.model.vocabSize, layout: s.instances, eosId: s.eosId,
    maxTokens: s.maxTokens, source: `eval set ${name}`,
  }) });
  for (const s of cfg.eval.sets) {
    if (s.embedded) open(s.name ?? s.embedded, [(await embeddedBrownSplit(cacheDir, log)).heldout], s);
    else if (s.paths?.length) open(s.name ?? basename(s.paths[0]).replace(/\.npy$/, ""), s.paths, s);
    else {
      const entries = readMixFile(s.mixFile!, s.baseDir ?? ".", s.tokenizer);
      const labels = [...new Set(entries.map((e) => e.label || basename(e.path)))];
      for (const label of labels) {
        open(s.name ? `${s.name}/${label}` : label, entries.filter((e) => (e.label || basename(e.path)) === label).map((e) => e.path), s);
      }
    }
  }
  const seen = new Set<string>();
  for (const { name } of out) {
    if (seen.has(name)) throw new UserError(`eval: two sets are named "${name}"; give each eval.sets entry its own name`);
    seen.add(name);
  }
  return out;
}

export type EvalRecord = MetricsRecord & { eval: string; kind: "lm" | "mc" };

export class InLoopEval {
  private readonly lm: LmEvaluator;
  private readonly mc: McScorer | null;
  private readonly summer: RankSummer;
  private readonly sumOverDp: (v: number[]) => number[];
  /** the latest result of each perplexity set */
  readonly last = new Map<string, LmEvalResult & { step: number }>();

  private constructor(readonly trainer: Trainer, readonly sets: NamedSet[], readonly tasks: { name: string; questions: McQuestion[] }[]) {
    const cfg = trainer.cfg;
    this.summer = new RankSummer(trainer.backend, trainer.dpComm, 8);
    const sumOverDp = (this.sumOverDp = (v: number[]) => this.summer.sum(v));
    this.lm = new LmEvaluator(trainer.model, { zLossMult: cfg.optim.zLossMult, dpRank: trainer.dpRank, dpWorld: trainer.dpWorld, sumOverDp });
    this.mc = tasks.length === 0 ? null : new McScorer(new Olmo2(trainer.params, cfg.model, 1, mcSeqLen(tasks.flatMap((t) => t.questions), cfg.model.maxSeqLen),
      { training: false, tp: trainer.tpComm ?? undefined }));
  }

  /** What the run will evaluate, and when. */
  plan(): string {
    const cfg = this.trainer.cfg, e = cfg.eval;
    const when = [e.atStart ? "at the start" : "", e.everySteps > 0 ? `every ${e.everySteps} steps` : "", e.atEnd ? "at the end" : ""].filter(Boolean);
    const sets = this.sets.map((s) => `${s.name} (${s.instances.count} × ${cfg.train.seqLen} tokens, ${s.instances.labelTokens} scored)`);
    const tasks = this.tasks.map((t) => `${t.name} (${t.questions.length} questions)`);
    return `${[...sets, ...tasks].join(", ")} | ${when.join(", ") || "never (eval.atEnd false, everySteps 0)"}`;
  }

  /** null when the config evaluates nothing */
  static async open(trainer: Trainer, log: (l: string) => void, cacheDir?: string): Promise<InLoopEval | null> {
    const cfg = trainer.cfg;
    if (cfg.eval.sets.length === 0 && cfg.eval.tasks.length === 0) return null;
    const sets = await openEvalSets(cfg, log, cacheDir);
    const tasks: { name: string; questions: McQuestion[] }[] = [];
    for (const t of cfg.eval.tasks) {
      tasks.push({ name: t.name ?? basename(t.path).replace(/\.jsonl$/, ""), questions: await readMcTask(t.path, { vocabSize: cfg.model.vocabSize, maxQuestions: t.maxQuestions, maxSeqLen: cfg.model.maxSeqLen }) });
    }
    return new InLoopEval(trainer, sets, tasks);
  }

  /**
   * Whether step is evaluated: `first` is the run's start (step 0, or the step it resumed at), the
   * rest are steps just trained. At a resumed start only eval.atStart asks for one: the periodic and
   * final evaluations of the resumed step were made by the attempt that saved its checkpoint (they
   * come before the save), so a finished run started again evaluates (and writes) nothing.
   */
  due(step: number, first: boolean): boolean {
    const e = this.trainer.cfg.eval;
    if (first) return e.atStart;
    return (e.everySteps > 0 && step > 0 && step % e.everySteps === 0) || (e.atEnd && step === this.trainer.totalSteps);
  }

  /** Evaluate everything at `step`: a record per set and task, and a short summary for the step line. */
  run(step: number): { records: EvalRecord[]; summary: string } {
    const records: EvalRecord[] = [];
    const parts: string[] = [];
    for (const s of this.sets) {
      const r = this.lm.evaluate(s.instances);
      this.last.set(s.name, { ...r, step });
      records.push({ step, eval: s.name, kind: "lm", ...r });
      parts.push(`${s.name} ${r.loss.toFixed(4)} (ppl ${r.ppl.toPrecision(4)})`);
    }
    for (const t of this.tasks) {
      const r: McEvalResult = this.mc!.evaluate(t.questions, { dpRank: this.trainer.dpRank, dpWorld: this.trainer.dpWorld, sumOverDp: this.sumOverDp });
      records.push({ step, eval: t.name, kind: "mc", ...r });
      parts.push(`${t.name} ${MC_METRICS.map((m) => `${m.replace("acc_", "")} ${r[m].toFixed(3)}`).join(" ")}`);
    }
    return { records, summary: `eval ${parts.join(", ")}` };
  }

  free(): void {
    this.mc?.model.free();
    this.summer.free();
  }
}
