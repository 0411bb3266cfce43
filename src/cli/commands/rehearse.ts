// olmo rehearse [--small] [--out DIR]   (bun run rehearse)
// The whole OLMo-2 recipe at toy scale on the CPU: stage 1 → three stage-2 ingredients → soup →
// HF export → held-out loss of each, derived from the shipped configs (src/recipe/rehearse.ts).
import { existsSync, readdirSync, rmSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { createBackend } from "../../backend/native-backend.ts";
import { resolveRuntime } from "../runtime.ts";
import { validateConfig } from "../../config/load.ts";
import { UserError } from "../../errors.ts";
import { writeFileAtomic } from "../../output-dir.ts";
import type { CommandSpec } from "../args.ts";

/**
 * The shipped recipe, imported (not read from a path) so a compiled `dist/olmo` carries it too.
 * Loaded on demand: other commands never pay for it.
 */
async function shippedRecipe() {
  const mods = await Promise.all([
    import("../../../configs/stage1.ts"), import("../../../configs/stage2-ingredient1.ts"),
    import("../../../configs/stage2-ingredient2.ts"), import("../../../configs/stage2-ingredient3.ts"),
  ]);
  const [stage1, ...ingredients] = mods.map((m, i) => validateConfig(m.default, i === 0 ? "configs/stage1.ts" : `configs/stage2-ingredient${i}.ts`));
  return { stage1, ingredients };
}
/** marks a folder as a rehearsal's, so a rerun may clear it (and nothing else) */
const MARKER = ".olmo-rehearsal";

/** A fresh work folder: new, empty, or a previous rehearsal's (cleared — a stale run folder would be resumed). */
export function prepareWorkDir(dir: string): void {
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    if (!existsSync(join(dir, MARKER))) throw new UserError(`rehearse: --out ${dir} is not empty and not a previous rehearsal; pick a new folder`);
    rmSync(dir, { recursive: true, force: true });
  }
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(join(dir, MARKER), "written by olmo rehearse; the folder is cleared on the next rehearsal\n", "rehearse: marker");
}

export const rehearseCommand: CommandSpec = {
  name: "rehearse",
  summary: "Rehearse the OLMo-2 recipe at toy scale on the CPU: stage 1 → 3 ingredients → soup → HF export → eval",
  usage: "olmo rehearse [--small] [--out DIR] [--verbose]",
  options: [
    { name: "small", type: "boolean", help: "the seconds-long form the tests run" },
    { name: "out", type: "string", help: "work folder (cleared if it holds a previous rehearsal)", default: "runs/rehearse", metavar: "DIR" },
    { name: "verbose", type: "boolean", help: "show the training runs' own log lines" },
  ],
  async run(args) {
    if (args.positional.length) throw new UserError(`rehearse takes no positional arguments, got ${args.positional.join(" ")}`);
    const { REHEARSAL_SCALES, formatRehearsal, rehearse } = await import("../../recipe/rehearse.ts");
    const recipe = await shippedRecipe();
    const out = resolve(args.opts.out as string);
    prepareWorkDir(out);
    const be = createBackend("cpu", { threads: resolveRuntime().threads });
    const scale = REHEARSAL_SCALES[args.opts.small ? "small" : "full"];
    const m = scale.model;
    console.log(`rehearsal of configs/stage1.ts + stage2-ingredient{1,2,3}.ts + soup at toy scale (d ${m.dModel}, ${m.nLayers} layers, ` +
      `vocab ${recipe.stage1.model.vocabSize}, ${scale.globalBatchInstances}×${scale.seqLen} tokens/step) on ${be.name} → ${out}`);
    const log = (l: string) => console.log(l);
    const r = await rehearse(be, recipe, { scale, workDir: out, log, trainLog: args.opts.verbose ? log : undefined });
    console.log("");
    console.log(formatRehearsal(r));
    console.log(`\n${r.rows.length} models evaluated on ${scale.evalInstances}×${scale.seqLen} held-out tokens (every 25th Brown document, never trained on), ` +
      `from their HF exports under ${join(out, "hf")}; ${r.seconds.toFixed(1)} s`);
  },
};
