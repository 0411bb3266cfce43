// olmo eval --from-hf DIR --data FILE --seq-len T [--grad]
import { existsSync, readFileSync, statSync } from "node:fs";
import { createBackend } from "../../backend/native-backend.ts";
import { resolveRuntime } from "../runtime.ts";
import { HfSource } from "../../checkpoint/hf.ts";
import { UserError } from "../../errors.ts";
import { paddedVocab } from "../../model/config.ts";
import { cutInstances, evaluate } from "../../train/evaluate.ts";
import { type CommandSpec, req } from "../args.ts";

export const evalCommand: CommandSpec = {
  name: "eval",
  summary: "Evaluate an HF-format OLMo-2 on a raw uint32 token file: loss (and gradient norm)",
  usage: "olmo eval --from-hf DIR --data FILE --seq-len T [--grad] [--z-loss 1e-5]",
  options: [
    { name: "from-hf", type: "string", help: "HF model folder (config.json + safetensors)", metavar: "DIR" },
    { name: "data", type: "string", help: "raw headerless little-endian uint32 token file", metavar: "FILE" },
    { name: "seq-len", type: "number", help: "tokens per instance (the tail is dropped)", metavar: "T" },
    { name: "grad", type: "boolean", help: "also compute the global L2 norm of d loss / d params" },
    { name: "z-loss", type: "number", help: "z-loss multiplier", default: 1e-5 },
  ],
  async run(args) {
    const dir = req<string>(args, "from-hf", "eval");
    const dataPath = req<string>(args, "data", "eval");
    const T = req<number>(args, "seq-len", "eval");
    if (!Number.isInteger(T) || T < 2) throw new UserError(`eval: --seq-len must be an integer >= 2, got ${T}`);
    if (!existsSync(dataPath)) throw new UserError(`eval: data file not found: ${dataPath}`);
    const bytes = statSync(dataPath).size;
    if (bytes % 4 !== 0) throw new UserError(`eval: ${dataPath} is ${bytes} bytes, not a multiple of 4 (expected raw uint32 tokens)`);
    const src = new HfSource(dir);
    const config = src.config;
    const buf = readFileSync(dataPath);
    const tokens = new Uint32Array(buf.buffer, buf.byteOffset, bytes / 4);
    const { tokens_BT, B } = cutInstances(tokens, T, paddedVocab(config), dataPath);
    const rt = resolveRuntime();
    const be = createBackend(rt.backend, { threads: rt.threads });
    let r;
    try {
      r = evaluate(be, config, (s, out) => src.read(s.name, out), tokens_BT, B, T, { zLossMult: args.opts["z-loss"] as number, grad: !!args.opts.grad });
    } finally {
      src.close();
    }
    console.log(JSON.stringify(r));
  },
};
