// olmo import-hf DIR --out CKPT_DIR [--compress]: an HF Olmo2 folder -> a native checkpoint
// holding weights only (no optimizer state, step 0), to start or continue training from.
import { resolve } from "node:path";
import { HfSource } from "../../checkpoint/hf/folder.ts";
import { checkFreshOutDir } from "../../output-dir.ts";
import { NativeWriter } from "../../checkpoint/native/write.ts";
import { copyModel } from "../../checkpoint/soup.ts";
import { UserError } from "../../errors.ts";
import { type CommandSpec, req } from "../args.ts";
import { byteProgress } from "../text.ts";

export const importHfCommand: CommandSpec = {
  name: "import-hf",
  summary: "Make a native checkpoint (weights only) from a Hugging Face OLMo-2 folder",
  usage: "olmo import-hf DIR --out CKPT_DIR [--compress]",
  options: [
    { name: "out", type: "string", help: "checkpoint directory to create (new or empty)", metavar: "CKPT_DIR" },
    { name: "compress", type: "boolean", help: "lz4-compress the tensor files" },
  ],
  async run(args) {
    if (args.positional.length !== 1) throw new UserError(`import-hf takes one DIR, got ${args.positional.length}`);
    const out = resolve(req<string>(args, "out", "import-hf"));
    checkFreshOutDir(out, "import-hf");
    const src = new HfSource(args.positional[0]);
    const p = byteProgress("import-hf");
    const sink = new NativeWriter(out, src.config, {
      compress: !!args.opts.compress,
      meta: { trainState: { step: 0, tokensProcessed: 0, importedFrom: resolve(args.positional[0]) } },
    });
    try {
      copyModel(src, sink, p.cb); // publishes the checkpoint whole, or removes it on failure
    } finally {
      p.bar?.done();
      src.close();
    }
    console.log(`imported ${args.positional[0]} -> ${out} (${src.specs.length} tensors, weights only)`);
  },
};
