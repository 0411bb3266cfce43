// olmo import-olmo-core DIR --out CKPT_DIR [--config CFG] [--compress]: an OLMo-core step folder (or
// its model_and_optim/) -> a native checkpoint with the weights, both Adam moments, the per-tensor
// AdamW step counters and the trainer state (step, tokens, data-loader position and seed).
import { resolve } from "node:path";
import { checkFreshOutDir } from "../../output-dir.ts";
import { importOlmoCore } from "../../checkpoint/olmo-core/import.ts";
import { UserError } from "../../errors.ts";
import { type CommandSpec, req } from "../args.ts";
import { checkpointArg } from "../checkpoint-arg.ts";
import { byteProgress } from "../text.ts";

export const importOlmoCoreCommand: CommandSpec = {
  name: "import-olmo-core",
  summary: "Make a native checkpoint (weights, Adam state, trainer state) from an OLMo-core checkpoint folder",
  usage: "olmo import-olmo-core DIR --out CKPT_DIR [--config CFG] [--compress]",
  options: [
    { name: "out", type: "string", help: "checkpoint directory to create (new or empty)", metavar: "CKPT_DIR" },
    { name: "config", type: "string", help: "OLMo-core experiment config.json to take the model from (default: DIR/config.json)", metavar: "CFG" },
    { name: "compress", type: "boolean", help: "lz4-compress the tensor files" },
  ],
  async run(args) {
    if (args.positional.length !== 1) throw new UserError(`import-olmo-core takes one DIR, got ${args.positional.length}`);
    const out = resolve(req<string>(args, "out", "import-olmo-core"));
    checkFreshOutDir(out, "import-olmo-core");
    const dir = checkpointArg(args.positional[0]);
    const p = byteProgress("import-olmo-core");
    let r;
    try {
      r = importOlmoCore(dir, out, { configPath: args.opts.config as string | undefined, compress: !!args.opts.compress, onProgress: p.cb });
    } finally {
      p.bar?.done();
    }
    console.log(`imported ${dir} -> ${out} (${r.tensors} tensors${r.optimizer ? " with Adam moments and step counters" : ", weights only"}${r.step !== null ? `, trainer state at step ${r.step}` : ""})`);
  },
};
