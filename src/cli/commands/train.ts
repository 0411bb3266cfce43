// olmo train [CONFIG] [--a.b=value ...] [--print-config]
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { createBackend } from "../../backend/native-backend.ts";
import { applyOverrides, loadConfig, validateConfig } from "../../config/load.ts";
import type { RunConfig } from "../../config/schema.ts";
import { PREEMPTED_EXIT_CODE, UserError } from "../../errors.ts";
import { readRankEnv, tensorParallel } from "../../parallel/env.ts";
import { planRun } from "../../train/plan.ts";
import { type CommandSpec, type ParsedArgs, parseArgs } from "../args.ts";
import { describeRuntime, resolveRuntime } from "../runtime.ts";
import { configFieldLines } from "../config-help.ts";
import { formatPlan } from "./plan.ts";
import { configField } from "../../config/fields.ts";
import { nearestConfigPath } from "../overrides.ts";
import { didYouMean } from "../suggest.ts";
// also bundled, so a compiled binary (no configs/ folder beside it) still has its default run
import tinyConfig from "../../../configs/tiny.ts";

export const DEFAULT_CONFIG = resolve(import.meta.dir, "../../../configs/tiny.ts");

/** The run config of `olmo train [CONFIG] [--a.b=value ...]`, and where it came from. */
async function trainConfig(args: ParsedArgs): Promise<{ cfg: RunConfig; source: string }> {
  if (args.positional.length > 1) throw new UserError(`train takes one CONFIG, got ${args.positional.join(" ")}`);
  const source = args.positional[0] ?? DEFAULT_CONFIG;
  const cfg = args.positional[0] !== undefined || existsSync(DEFAULT_CONFIG)
    ? await loadConfig(source, args.overrides)
    : validateConfig(applyOverrides(tinyConfig, args.overrides), "configs/tiny.ts (embedded)", args.overrides);
  return { cfg, source: args.positional[0] ?? "configs/tiny.ts" };
}

/** --accept-change FIELDS: config field paths (refused with the nearest one when they are not). */
function acceptedChanges(args: ParsedArgs): string[] {
  const fields = (args.opts["accept-change"] as string[] | undefined) ?? [];
  for (const f of fields) {
    if (!configField(f)) throw new UserError(`train: --accept-change ${f} is not a config field${didYouMean(nearestConfigPath(f))}`);
  }
  return fields;
}

/** --print-config: the resolved config and the plan of this layout, then exit (nothing opened or written). */
async function printConfig(cfg: RunConfig, runDir: string, runtime: string, acceptChanges: string[]): Promise<void> {
  const tp = tensorParallel(), world = readRankEnv().world;
  const { resumePreview } = await import("../../train/checkpointing/restore.ts");
  console.log(JSON.stringify(cfg, null, 2));
  console.log(`run folder ${runDir}; ${runtime}`);
  console.log(resumePreview(cfg, runDir, acceptChanges));
  console.log(formatPlan(planRun(cfg, { layout: { gpus: world, tp, dp: world / tp } })));
}

export const trainCommand: CommandSpec = {
  name: "train",
  summary: "Train a model from a config (default: the embedded tiny run on the Brown corpus)",
  usage: "olmo train [CONFIG] [--a.b=value ...]",
  options: [
    { name: "run-dir", type: "string", help: "run folder (default: runs/<name>)", metavar: "DIR" },
    { name: "quiet", type: "boolean", help: "no per-step log lines (metrics.jsonl is still written)" },
    { name: "stop-after", type: "number", help: "stop after this step (the schedule still spans the whole run); resume later", metavar: "STEP" },
    { name: "accept-change", type: "list", help: "resume although these config fields changed since the checkpoint (e.g. train.steps,optim.lr); each change is refused otherwise", metavar: "FIELDS" },
    { name: "print-config", type: "boolean", help: "print the resolved config (CONFIG with the overrides) and its plan, then exit without training" },
    { name: "dry-run", type: "boolean", help: "the same as --print-config (OLMo-core's name)" },
  ],
  overrides: true,
  helpExtra: async (argv) => {
    const args = parseArgs(trainCommand, argv);
    const { cfg, source } = await trainConfig(args);
    const overridden = args.overrides.length > 0;
    return [
      `config fields (--a.b=VALUE; JSON values: numbers, true/false, ["a","b"]; a bare --a.b of a true/false field is true); ` +
        `values shown are ${source}'s${overridden ? " with the command line's overrides" : ""}:`,
      ...configFieldLines(cfg),
    ];
  },
  async run(args) {
    const { cfg } = await trainConfig(args);
    const acceptChanges = acceptedChanges(args);
    const stopAfter = args.opts["stop-after"] as number | undefined;
    if (stopAfter !== undefined && !(Number.isSafeInteger(stopAfter) && stopAfter >= 1)) throw new UserError(`train: --stop-after must be a step number >= 1, got ${stopAfter}`);
    const runDir = (args.opts["run-dir"] as string | undefined) ?? cfg.runDir ?? `runs/${cfg.name}`;
    // command line > environment > config (src/cli/runtime.ts)
    const given = (k: string) => args.overrides.some(([key]) => key === k);
    const rt = resolveRuntime({
      cli: { backend: given("backend") ? cfg.backend : undefined, threads: given("threads") ? cfg.threads : undefined },
      config: { backend: cfg.backend, threads: cfg.threads },
    });
    if (args.opts["print-config"] || args.opts["dry-run"]) return printConfig(cfg, runDir, describeRuntime(rt), acceptChanges);
    // one process per GPU: a rank of a launched job trains on GPU LOCAL_RANK of its node
    const { localRank } = readRankEnv();
    const be = createBackend(rt.backend, { threads: rt.threads, localRank });
    // loaded on demand: training pulls in the tokenizer and data code, which other commands never need
    const { runTraining } = await import("../../train/run.ts");
    const outcome = await runTraining(be, cfg, runDir, { quiet: !!args.opts.quiet, stopAfterStep: stopAfter, runtime: describeRuntime(rt), acceptChanges });
    // stopped by a preemption signal, with a checkpoint to resume from: a distinct code for schedulers
    return outcome.stoppedBy ? PREEMPTED_EXIT_CODE : 0;
  },
};
