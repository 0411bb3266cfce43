// olmo export-olmo-core CKPT --out DIR: a native checkpoint -> an OLMo-core step folder
// (model_and_optim/ for torch.distributed.checkpoint.load and OLMo-core's load_model_and_optim_state,
// train/rank0.pt, config.json). For a checkpoint a run wrote, what OLMo-core needs of that run
// (param groups, trainer state, config) comes from its run config; an import not trained since is
// written back as it came.
import { checkFreshOutDir } from "../../output-dir.ts";
import { NativeReader } from "../../checkpoint/native/read.ts";
import type { OlmoCoreRunSettings } from "../../checkpoint/olmo-core/config.ts";
import { exportOlmoCore } from "../../checkpoint/olmo-core/export.ts";
import { RunConfigSchema, globalBatchTokens, totalSteps } from "../../config/schema.ts";
import { presetVocabSize, tokenizerIds } from "../../data/tokenizers.ts";
import { UserError } from "../../errors.ts";
import { lrAt } from "../../optim/schedule.ts";
import { type CommandSpec, req } from "../args.ts";
import { checkpointArg } from "../checkpoint-arg.ts";
import { byteProgress } from "../text.ts";

/** The run that wrote the checkpoint, as OLMo-core sees it, at its step; undefined without a run config. */
function runSettingsOf(ckpt: string): OlmoCoreRunSettings | undefined {
  const r = new NativeReader(ckpt);
  r.close();
  const parsed = RunConfigSchema.safeParse(r.meta.runConfig);
  if (!parsed.success) return undefined;
  const c = parsed.data, o = c.optim, d = c.data;
  const step = typeof r.meta.trainState?.step === "number" ? (r.meta.trainState.step as number) : 0;
  const ids = tokenizerIds(d.tokenizer, d.eosTokenId, d.padTokenId);
  return {
    paramGroups: { lr: lrAt(o.schedule, step, o.lr, totalSteps(c)), initialLr: o.lr, betas: [o.beta1, o.beta2], eps: o.eps, weightDecay: o.weightDecay },
    schedule: o.schedule, maxGradNorm: o.maxGradNorm, zLossMult: o.zLossMult,
    skipStep: o.skipSteps ? { window: o.skipStepWindow, sigmas: o.skipStepSigmas } : null,
    maxSteps: totalSteps(c), sequenceLength: c.train.seqLen, maxTargetSequenceLength: d.maxTargetSeqLen ?? null,
    globalBatchTokens: globalBatchTokens(c), dataSeed: d.seed, dtype: d.dtype,
    tokenizer: { identifier: d.tokenizer, vocabSize: presetVocabSize(d.tokenizer) ?? c.model.vocabSize, eosTokenId: ids?.eos ?? null, padTokenId: ids?.pad ?? null },
  };
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
      r = exportOlmoCore(ckpt, out, { run: runSettingsOf(ckpt), onProgress: p.cb });
    } finally {
      p.bar?.done();
    }
    console.log(`exported ${ckpt} -> ${out} (${r.items} items, ${(r.bytes / 1e6).toFixed(1)} MB${r.optimizer ? ", with optimizer state" : ", weights only"})`);
  },
};
