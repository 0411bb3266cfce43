// olmo export-hf CKPT --out DIR [--dtype bf16|fp32] [--max-shard-gb 5]
import { UserError } from "../../errors.ts";
import { HfSink } from "../../checkpoint/hf/folder.ts";
import { checkFreshOutDir } from "../../output-dir.ts";
import { copyModel, openSource } from "../../checkpoint/soup.ts";
import { Progress } from "../../progress.ts";
import { type CommandSpec, req } from "../args.ts";

/** bf16|fp32 (also bfloat16|float32|f32) -> our dtype name. */
export function parseDtype(v: string, cmd: string): "bf16" | "f32" {
  if (v === "bf16" || v === "bfloat16") return "bf16";
  if (v === "fp32" || v === "f32" || v === "float32") return "f32";
  throw new UserError(`${cmd}: --dtype must be bf16 or fp32, got "${v}"`);
}

/** A byte-count progress bar (MB units) for the streaming tools. */
export function byteProgress(label: string): { bar: Progress | null; cb: (done: number, total: number) => void } {
  let bar: Progress | null = null;
  return {
    get bar() { return bar; },
    cb: (done, total) => {
      bar ??= new Progress(label, Math.round(total / 1e6), "MB");
      bar.update(Math.round(done / 1e6));
    },
  };
}

export const exportHfCommand: CommandSpec = {
  name: "export-hf",
  summary: "Write a checkpoint as a Hugging Face Olmo2ForCausalLM folder (sharded safetensors + config.json)",
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
    const src = openSource(args.positional[0]);
    const p = byteProgress("export-hf");
    try {
      copyModel(src, new HfSink(out, src.config, { dtype, maxShardBytes: gb * 1e9 }), p.cb);
    } finally {
      p.bar?.done();
      src.close();
    }
    console.log(`exported ${args.positional[0]} -> ${out} (${dtype}, ${src.specs.length} tensors)`);
  },
};
