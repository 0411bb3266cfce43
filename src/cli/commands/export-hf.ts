// olmo export-hf CKPT --out DIR [--dtype bf16|fp32] [--max-shard-gb 5]
import { UserError } from "../../errors.ts";
import { HfSink } from "../../checkpoint/hf/folder.ts";
import { checkFreshOutDir } from "../../output-dir.ts";
import { copyModel, openSource } from "../../checkpoint/soup.ts";
import { type CommandSpec, parseDtype, req } from "../args.ts";
import { checkpointArg } from "../checkpoint-arg.ts";
import { byteProgress } from "../text.ts";

export const exportHfCommand: CommandSpec = {
  name: "export-hf",
  summary: "Write a checkpoint as a Hugging Face Olmo2ForCausalLM folder (sharded safetensors, config.json, the dolma2 tokenizer)",
  usage: "olmo export-hf CKPT --out DIR [--dtype bf16|fp32] [--max-shard-gb 5]",
  options: [
    { name: "out", type: "string", help: "output folder (new or empty)", metavar: "DIR" },
    { name: "dtype", type: "string", help: "stored dtype: bf16 or fp32", default: "bf16", metavar: "DTYPE" },
    { name: "max-shard-gb", type: "number", help: "largest safetensors shard in GB", default: 5, metavar: "GB" },
  ],
  async run(args) {
    if (args.positional.length !== 1) throw new UserError(`export-hf takes one CKPT, got ${args.positional.length}`);
    const out = req<string>(args, "out", "export-hf");
    const dtype = parseDtype(args.opts.dtype as string, "export-hf");
    const gb = args.opts["max-shard-gb"] as number;
    if (!(gb > 0)) throw new UserError(`export-hf: --max-shard-gb must be > 0, got ${gb}`);
    checkFreshOutDir(out, "export-hf");
    const ckpt = checkpointArg(args.positional[0]);
    const src = openSource(ckpt);
    const p = byteProgress("export-hf");
    let tokenizer = false;
    try {
      const sink = new HfSink(out, src.config, { dtype, maxShardBytes: gb * 1e9 });
      tokenizer = sink.tokenizer;
      copyModel(src, sink, p.cb);
    } finally {
      p.bar?.done();
      src.close();
    }
    const tok = tokenizer ? "dolma2 tokenizer" : `no tokenizer: dolma2's ids do not fit the model's ${src.config.vocabSize}-token vocabulary`;
    console.log(`exported ${ckpt} -> ${out} (${dtype}, ${src.specs.length} tensors, ${tok})`);
  },
};
