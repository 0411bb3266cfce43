// olmo soup CKPT CKPT... --out DIR [--weights w1,...] [--format hf|native] [--dtype bf16|fp32]
// Weighted average of N checkpoints (native or HF), streamed tensor by tensor in fp32.
import { resolve } from "node:path";
import { HfSink } from "../../checkpoint/hf/folder.ts";
import { checkFreshOutDir } from "../../output-dir.ts";
import { NativeWriter } from "../../checkpoint/native/write.ts";
import { openSource, soup, soupWeights } from "../../checkpoint/soup.ts";
import type { TensorSink, TensorSource } from "../../checkpoint/source.ts";
import { UserError } from "../../errors.ts";
import { type CommandSpec, parseDtype, req } from "../args.ts";
import { checkpointArg } from "../checkpoint-arg.ts";
import { byteProgress } from "../text.ts";

export const soupCommand: CommandSpec = {
  name: "soup",
  summary: "Average checkpoints tensor by tensor (fp32, streaming): how OLMo-2's final models are made",
  usage: "olmo soup CKPT CKPT... --out DIR [--weights w1,w2,...] [--format hf|native] [--dtype bf16|fp32]",
  options: [
    { name: "out", type: "string", help: "output folder (new or empty)", metavar: "DIR" },
    { name: "weights", type: "list", help: "one weight per checkpoint, normalized to sum 1 (default: uniform)", metavar: "W,W,..." },
    { name: "format", type: "string", help: "output format: hf or native (default: the first input's format)", metavar: "FMT" },
    { name: "dtype", type: "string", help: "HF output dtype: bf16 or fp32", default: "bf16", metavar: "DTYPE" },
    { name: "compress", type: "boolean", help: "native output: lz4-compress the tensor files" },
  ],
  async run(args) {
    if (args.positional.length < 2) throw new UserError(`soup: needs at least 2 checkpoints, got ${args.positional.length} (a soup of one is a copy; use export-hf)`);
    const out = resolve(req<string>(args, "out", "soup"));
    const weightsRaw = args.opts.weights as string[] | undefined;
    const weights = weightsRaw?.map((w) => {
      const x = Number(w);
      if (w.trim() === "" || !Number.isFinite(x)) throw new UserError(`soup: --weights must be numbers, got "${w}"`);
      return x;
    });
    const norm = soupWeights(args.positional.length, weights);
    const fmt = args.opts.format as string | undefined;
    if (fmt !== undefined && fmt !== "hf" && fmt !== "native") throw new UserError(`soup: --format must be hf or native, got "${fmt}"`);
    const dtype = parseDtype(args.opts.dtype as string, "soup");
    checkFreshOutDir(out, "soup");
    const paths = args.positional.map(checkpointArg);
    const sources: TensorSource[] = [];
    const p = byteProgress("soup");
    try {
      for (const path of paths) sources.push(openSource(path));
      const format = fmt ?? sources[0].kind;
      const sink: TensorSink = format === "hf"
        ? new HfSink(out, sources[0].config, { dtype })
        : new NativeWriter(out, sources[0].config, {
            compress: !!args.opts.compress,
            meta: { trainState: { ...sources[0].trainState, soup: { sources: paths.map((x) => resolve(x)), weights: norm } } },
          });
      soup(sources, sink, norm, p.cb); // publishes the output whole, or removes it on failure
      console.log(`souped ${paths.length} checkpoints (weights ${norm.map((w) => +w.toFixed(6)).join(", ")}) -> ${out} (${format})`);
    } finally {
      p.bar?.done();
      for (const s of sources) s.close();
    }
  },
};
