// olmo generate CKPT|HF_DIR --prompt TEXT [--max-tokens N --temperature T --top-p P --seed S]
// KV-cached sampling (src/model/decode.ts), streamed to stdout as it is produced. Pieces are the
// new suffix of the decoded text of all generated ids (a multi-byte UTF-8 character split across
// tokens is held back until complete). Stops at EOS 100257, --max-tokens, or the model's maxSeqLen.
import { writeSync } from "node:fs";
import { createBackend } from "../../backend/native-backend.ts";
import { resolveRuntime } from "../runtime.ts";
import { openSource } from "../../checkpoint/soup.ts";
import { DOLMA2_EOS_ID, cl100k } from "../../data/prepare.ts";
import { UserError } from "../../errors.ts";
import { generateIds } from "../../model/decode.ts";
import { ParamStore } from "../../model/param-store.ts";
import { type CommandSpec, req } from "../args.ts";
import { checkpointArg } from "../checkpoint-arg.ts";

export const generateCommand: CommandSpec = {
  name: "generate",
  summary: "Sample text from a checkpoint or HF folder (KV cache, temperature + top-p), streamed",
  usage: "olmo generate CKPT|HF_DIR|RUN_DIR --prompt TEXT [--max-tokens N] [--temperature T] [--top-p P] [--seed S]",
  options: [
    { name: "prompt", type: "string", help: "text to continue (tokenized with cl100k_base / dolma2)", metavar: "TEXT" },
    { name: "max-tokens", type: "number", help: "most new tokens (also capped by the model's maxSeqLen)", default: 64, metavar: "N" },
    { name: "temperature", type: "number", help: "softmax temperature; 0 = greedy", default: 0.8, metavar: "T" },
    { name: "top-p", type: "number", help: "nucleus sampling: keep the most likely tokens up to this probability mass, in (0, 1]", default: 0.95, metavar: "P" },
    { name: "seed", type: "number", help: "sampler seed (the same seed reproduces the same text)", default: 0, metavar: "S" },
  ],
  async run(args) {
    if (args.positional.length !== 1) {
      throw new UserError(`generate takes one checkpoint or HF folder path, got ${args.positional.length ? args.positional.join(" ") : "none"}`);
    }
    const path = checkpointArg(args.positional[0]);
    const prompt = req<string>(args, "prompt", "generate");
    const maxTokens = args.opts["max-tokens"] as number;
    const temperature = args.opts.temperature as number;
    const topP = args.opts["top-p"] as number;
    const seed = args.opts.seed as number;
    if (prompt.length === 0) throw new UserError("generate: --prompt is empty");
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new UserError(`generate: --max-tokens must be an integer >= 1, got ${maxTokens}`);
    if (!(temperature >= 0)) throw new UserError(`generate: --temperature must be >= 0 (0 = greedy), got ${temperature}`);
    if (!(topP > 0 && topP <= 1)) throw new UserError(`generate: --top-p must be in (0, 1], got ${topP}`);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new UserError(`generate: --seed must be an integer in [0, 2^32), got ${seed}`);

    const src = openSource(path);
    let store: ParamStore;
    const cfg = src.config;
    const enc = await cl100k();
    const promptIds = enc.encode(prompt, "all");
    try {
      if (promptIds.length < 1) throw new UserError("generate: --prompt encodes to no tokens");
      if (promptIds.length >= cfg.maxSeqLen) {
        throw new UserError(`generate: the prompt is ${promptIds.length} tokens; the model's maxSeqLen ${cfg.maxSeqLen} leaves no room for a new token`);
      }
      const bad = promptIds.find((id) => id >= cfg.vocabSize);
      if (bad !== undefined) throw new UserError(`generate: prompt token id ${bad} is outside this model's vocabulary (vocabSize ${cfg.vocabSize}); generate uses the cl100k_base/dolma2 tokenizer`);
      const rt = resolveRuntime();
      const be = createBackend(rt.backend, { threads: rt.threads });
      store = new ParamStore(be, cfg);
      store.fillEach((s, out) => src.read(s.name, out));
    } finally {
      src.close();
    }

    const generated: number[] = [];
    let printed = "";
    const emit = (final: boolean) => {
      const text = enc.decode(generated.filter((id) => id !== DOLMA2_EOS_ID));
      // hold back a trailing incomplete UTF-8 sequence (decoded as U+FFFD) until it completes
      const stable = final ? text : text.replace(/\uFFFD+$/, "");
      if (stable.length > printed.length) {
        writeSync(1, stable.slice(printed.length));
        printed = stable;
      }
    };
    const t0 = performance.now();
    let tFirst = 0;
    try {
      generateIds(store, cfg, promptIds, { maxTokens, temperature, topP, seed, eos: DOLMA2_EOS_ID }, (id) => {
        if (!tFirst) tFirst = performance.now();
        generated.push(id);
        emit(false);
      });
    } finally {
      store.free();
    }
    const t1 = performance.now();
    emit(true);
    writeSync(1, "\n");
    const secs = (t1 - t0) / 1000;
    const stop = generated.at(-1) === DOLMA2_EOS_ID ? "eos" : generated.length >= maxTokens ? "max-tokens" : "maxSeqLen";
    const decodeRate = generated.length > 1 ? (generated.length - 1) / ((t1 - tFirst) / 1000) : 0;
    console.error(`generate: ${generated.length} tokens in ${secs.toFixed(2)} s (${(generated.length / secs).toFixed(1)} tokens/s; ` +
      `decode ${decodeRate.toFixed(1)} tokens/s after a ${promptIds.length}-token prefill; stop: ${stop}; backend ${store.backend.name})`);
  },
};
