// olmo eval --from CKPT|HF_DIR (--data FILE... --seq-len T [--documents] [--max-tokens N] [--batch B] [--grad] | --task FILE.jsonl)
// The model outside a run, through the in-loop evaluators (src/eval/evaluate.ts): one line of text,
// or with --json one JSON object (the numbers exactly as metrics.jsonl holds them).
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, resolve } from "node:path";
import { createBackend } from "../../backend/native-backend.ts";
import { openSource } from "../../checkpoint/soup.ts";
import { openEvalInstances } from "../../data/eval-instances.ts";
import { DOLMA2_EOS_ID } from "../../data/index.ts";
import { readMcTask } from "../../data/mc-task.ts";
import { UserError } from "../../errors.ts";
import { resolveRuntime } from "../runtime.ts";
import { paddedVocab } from "../../model/config.ts";
import { cutInstances, evaluate, evaluateSet, evaluateTask } from "../../eval/evaluate.ts";
import { recordEval } from "../../metrics/run-metrics.ts";
import { type CommandSpec, type ParsedArgs } from "../args.ts";
import { MC_METRICS } from "../../eval/mc-eval.ts";
import { formatRate } from "../../progress.ts";
import { checkpointArg } from "../checkpoint-arg.ts";

function positiveInt(args: ParsedArgs, name: string, min: number): number | undefined {
  const v = args.opts[name] as number | undefined;
  if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new UserError(`eval: --${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

/** The result as a person reads it: perplexity and losses, or the accuracies; the throughput. */
function resultLine(name: string, r: Record<string, number>, task: boolean): string {
  const rate = r.tokens_per_s !== undefined ? `, ${formatRate(r.tokens_per_s)} tokens/s` : "";
  const time = r.ms !== undefined ? ` (${(r.ms / 1000).toFixed(2)} s${rate})` : "";
  if (task) {
    const accs = MC_METRICS.map((m) => `${m} ${(100 * r[m]).toFixed(1)}%`).join(", ");
    return `eval ${name}: ${accs} over ${r.n_questions} questions${time}`;
  }
  const grad = r.grad_norm !== undefined ? `, grad norm ${r.grad_norm.toPrecision(5)}` : "";
  const ppl = r.ppl !== undefined ? `, ppl ${r.ppl.toFixed(2)}` : "";
  return `eval ${name}: loss ${r.loss.toFixed(4)} (ce ${r.ce_loss.toFixed(4)} + z ${r.z_loss.toExponential(2)})${ppl}${grad} ` +
    `over ${r.n_tokens} tokens${r.n_instances !== undefined ? ` in ${r.n_instances} instances` : ""}${time}`;
}

export const evalCommand: CommandSpec = {
  name: "eval",
  summary: "Evaluate a checkpoint or HF model: loss / perplexity on token files, or multiple-choice accuracy",
  usage: "olmo eval --from CKPT|HF_DIR (--data FILE[,FILE...] --seq-len T [--documents [--eos ID]] [--max-tokens N] [--batch B] [--grad] | --task FILE.jsonl [--max-questions N]) [--record DIR [--name NAME]]",
  options: [
    { name: "from", type: "string", help: "native checkpoint, HF model folder (config.json + safetensors), or a run folder (its newest checkpoint)", metavar: "DIR" },
    { name: "from-hf", type: "string", help: "the same as --from (kept for older scripts)", metavar: "DIR" },
    { name: "data", type: "list", help: "raw headerless little-endian uint32 token files, one set", metavar: "FILES" },
    { name: "seq-len", type: "number", help: "tokens per instance", metavar: "T" },
    { name: "documents", type: "boolean", help: "one instance per EOS-terminated document, cut to T and padded (OLMo-core's eval layout); default: consecutive windows" },
    { name: "eos", type: "number", help: "the token that ends a document (--documents)", default: DOLMA2_EOS_ID, metavar: "ID" },
    { name: "max-tokens", type: "number", help: "evaluate at most this many tokens (instances in file order)", metavar: "N" },
    { name: "batch", type: "number", help: "instances per forward", default: 4, metavar: "B" },
    { name: "grad", type: "boolean", help: "also compute the global L2 norm of d loss / d params (all windows as one batch)" },
    { name: "z-loss", type: "number", help: "z-loss multiplier", default: 1e-5 },
    { name: "task", type: "string", help: "multiple-choice task: JSON lines {context, choices, gold[, uncond]}", metavar: "FILE" },
    { name: "max-questions", type: "number", help: "score at most the task's first N questions", metavar: "N" },
    { name: "record", type: "string", help: "also append the result as an eval record to DIR/metrics.jsonl (olmo report draws it beside runs)", metavar: "DIR" },
    { name: "name", type: "string", help: "the set's or task's name in that record (default: the file name)", metavar: "NAME" },
    { name: "json", type: "boolean", help: "print the result as one JSON object (for scripts) instead of a line of text" },
  ],
  async run(args) {
    if (args.positional.length) throw new UserError(`eval takes no positional arguments, got ${args.positional.join(" ")}`);
    const fromArg = (args.opts.from ?? args.opts["from-hf"]) as string | undefined;
    if (!fromArg) throw new UserError("eval: missing required option --from (a native checkpoint or an HF folder)");
    const dataPaths = args.opts.data as string[] | undefined;
    const taskPath = args.opts.task as string | undefined;
    if (!!dataPaths?.length === !!taskPath) throw new UserError("eval: give --data FILE (perplexity) or --task FILE.jsonl (multiple choice), one of them");
    let T = 0;
    if (dataPaths?.length) {
      const t = args.opts["seq-len"] as number | undefined;
      if (t === undefined) throw new UserError("eval: missing required option --seq-len");
      if (!Number.isInteger(t) || t < 2) throw new UserError(`eval: --seq-len must be an integer >= 2, got ${t}`);
      T = t;
      for (const p of dataPaths) {
        if (!existsSync(p)) throw new UserError(`eval: data file not found: ${p}`);
        const bytes = statSync(p).size;
        if (bytes % 4 !== 0) throw new UserError(`eval: ${p} is ${bytes} bytes, not a multiple of 4 (expected raw uint32 tokens)`);
      }
    }
    const recordDir = args.opts.record as string | undefined;
    if (recordDir && existsSync(recordDir) && !statSync(recordDir).isDirectory()) {
      throw new UserError(`eval: --record ${recordDir} is a file; give a folder (the record is appended to its metrics.jsonl)`);
    }
    const batch = positiveInt(args, "batch", 1)!;
    const maxTokens = positiveInt(args, "max-tokens", 1);
    const maxQuestions = positiveInt(args, "max-questions", 1);
    const from = checkpointArg(fromArg);
    const src = openSource(from);
    let out: Record<string, number>;
    const name = (args.opts.name as string | undefined) ?? basename(taskPath ?? dataPaths![0]).replace(/\.(jsonl|npy|u32|bin)$/, "");
    try {
      const config = src.config;
      const fill = (s: { name: string }, o: Float32Array) => src.read(s.name, o);
      const rt = resolveRuntime(); // command line > OLMO_BACKEND / OLMO_THREADS > defaults, validated
      const be = () => createBackend(rt.backend, { threads: rt.threads });
      const zLossMult = args.opts["z-loss"] as number;
      if (taskPath) {
        const questions = await readMcTask(taskPath, { vocabSize: paddedVocab(config), maxQuestions, maxSeqLen: config.maxSeqLen });
        out = { ...evaluateTask(be(), config, fill, questions) };
      } else if (args.opts.grad) {
        if (dataPaths!.length !== 1 || args.opts.documents || maxTokens !== undefined) throw new UserError("eval: --grad takes one --data file in windows, without --documents / --max-tokens");
        const buf = readFileSync(dataPaths![0]);
        const tokens = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
        const { tokens_BT, B } = cutInstances(tokens, T, paddedVocab(config), dataPaths![0]);
        if (T > config.maxSeqLen) throw new UserError(`--seq-len ${T} exceeds the model's max_position_embeddings ${config.maxSeqLen}`);
        out = { ...evaluate(be(), config, fill, tokens_BT, B, T, { zLossMult, grad: true }) };
      } else {
        const total = dataPaths!.reduce((a, p) => a + statSync(p).size / 4, 0);
        if (!args.opts.documents && dataPaths!.every((p) => statSync(p).size / 4 < T)) {
          throw new UserError(`${dataPaths!.join(", ")}: ${total} tokens is fewer than one instance of --seq-len ${T}`);
        }
        if (T > config.maxSeqLen) throw new UserError(`--seq-len ${T} exceeds the model's max_position_embeddings ${config.maxSeqLen}`);
        const set = openEvalInstances({
          paths: dataPaths!, dtype: "uint32", seqLen: T, vocabSize: paddedVocab(config), layout: args.opts.documents ? "documents" : "windows",
          eosId: positiveInt(args, "eos", 0)!, maxTokens, source: "eval",
        });
        out = { ...evaluateSet(be(), config, fill, set, { zLossMult, batch }) };
      }
      if (recordDir) {
        const step = typeof src.trainState.step === "number" ? src.trainState.step : 0;
        const repaired = recordEval(recordDir, { step, eval: name, kind: taskPath ? "mc" : "lm", ...out, checkpoint: resolve(from) });
        if (repaired) console.error(`eval: ${repaired}`);
      }
    } finally {
      src.close();
    }
    console.log(args.opts.json ? JSON.stringify(out) : resultLine(name, out, !!taskPath));
  },
};
