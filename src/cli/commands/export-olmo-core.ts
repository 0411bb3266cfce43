// olmo export-olmo-core CKPT --out DIR: a native checkpoint -> an OLMo-core step folder
// (model_and_optim/ for torch.distributed.checkpoint.load and OLMo-core's load_model_and_optim_state,
// train/rank0.pt, config.json). The param groups' AdamW settings come from the checkpoint's run
// config (lr: the schedule's value at the checkpoint's step), or verbatim from an imported one.
import { checkFreshOutDir } from "../../output-dir.ts";
import { NativeReader } from "../../checkpoint/native/read.ts";
import { type ParamGroupValues, exportOlmoCore } from "../../checkpoint/olmo-core/export.ts";
import { RunConfigSchema, totalSteps } from "../../config/schema.ts";
import { UserError } from "../../errors.ts";
import { lrAt } from "../../optim/schedule.ts";
import { type CommandSpec, req } from "../args.ts";
import { checkpointArg } from "../checkpoint-arg.ts";
import { byteProgress } from "../text.ts";

/** AdamW settings of the run that wrote the checkpoint, at its step; null without a run config. */
function paramGroupsOf(ckpt: string): ParamGroupValues | undefined {
  const r = new NativeReader(ckpt);
  r.close();
  const parsed = RunConfigSchema.safeParse(r.meta.runConfig);
  if (!parsed.success) return undefined;
  const c = parsed.data, o = c.optim;
  const step = typeof r.meta.trainState?.step === "number" ? (r.meta.trainState.step as number) : 0;
  return { lr: lrAt(o.schedule, step, o.lr, totalSteps(c)), initialLr: o.lr, betas: [o.beta1, o.beta2], eps: o.eps, weightDecay: o.weightDecay };
}

export const exportOlmoCoreCommand: CommandSpec = {
  name: "export-olmo-core",
  summary: "Write a native checkpoint as an OLMo-core checkpoint folder (torch.distributed.checkpoint + trainer state)",
  usage: "olmo export-olmo-core CKPT --out DIR",
  options: [{ name: "out", type: "string", help: "output step folder (new or empty)", metavar: "DIR" }],
  async run(args) {
    if (args.positional.length !== 1) throw new UserError(`export-olmo-core takes one CKPT, got ${args.positional.length}`);
    const out = req<string>(args, "out", "export-olmo-core");
    checkFreshOutDir(out, "export-olmo-core");
    const ckpt = checkpointArg(args.positional[0]);
    const p = byteProgress("export-olmo-core");
    let r;
    try {
      r = exportOlmoCore(ckpt, out, { paramGroups: paramGroupsOf(ckpt), onProgress: p.cb });
    } finally {
      p.bar?.done();
    }
    console.log(`exported ${ckpt} -> ${out} (${r.items} items, ${(r.bytes / 1e6).toFixed(1)} MB${r.optimizer ? ", with optimizer state" : ", weights only"})`);
  },
};
