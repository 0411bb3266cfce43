// olmo data order: the global instance order (numpy PCG64-compatible, as OLMo-core).
// olmo data inspect: which instances (file, offset) and tokens a training step saw.
import { UserError } from "../../errors.ts";
import { DOLMA2_VOCAB } from "../../model/config.ts";
import { loadConfig } from "../../config/load.ts";
import { globalBatchTokens } from "../../config/schema.ts";
import { cl100k, type Dataset, DataLoader, globalOrder, openDataset, type TokenDtype } from "../../data/index.ts";
import { embeddedBrownSplit } from "../../data/brown/files.ts";
import { type CommandSpec, type ParsedArgs, req } from "../args.ts";

function int(args: ParsedArgs, name: string, cmd: string, min = 0): number {
  const v = args.opts[name] as number;
  if (!Number.isSafeInteger(v) || v < min) throw new UserError(`${cmd}: --${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

/**
 * Token ids as text: runs of ids the cl100k_base encoder knows are decoded together (a character may
 * span tokens); an id it does not know (dolma2's padding, ids past the vocabulary) shows as ⟨id N⟩.
 */
function decodeForDisplay(enc: { decode(ids: number[]): string }, ids: number[]): string {
  let out = "", run: number[] = [];
  const flush = () => {
    if (run.length) out += enc.decode(run);
    run = [];
  };
  for (const id of ids) {
    if (enc.decode([id]) === "") {
      flush();
      out += `⟨id ${id}⟩`;
    } else run.push(id);
  }
  flush();
  return out;
}

export const dataOrderCommand: CommandSpec = {
  name: "data order",
  summary: "Print the global instance order (np.random.PCG64(seed+epoch) shuffle, as OLMo-core) as one JSON array",
  usage: "olmo data order --instances N --seed S [--epoch E] [--chunk C] [--head K]",
  options: [
    { name: "instances", type: "number", help: "number of instances in the dataset", metavar: "N" },
    { name: "seed", type: "number", help: "data-order seed", metavar: "S" },
    { name: "epoch", type: "number", help: "epoch (1-based)", default: 1, metavar: "E" },
    { name: "chunk", type: "number", help: "instances per shuffled chunk (max_target_seq_len / seq_len)", default: 1, metavar: "C" },
    { name: "head", type: "number", help: "print only the first K entries", metavar: "K" },
  ],
  async run(args) {
    if (args.positional.length) throw new UserError(`data order takes no positional arguments, got "${args.positional[0]}"`);
    req(args, "instances", "data order");
    req(args, "seed", "data order");
    const order = globalOrder(int(args, "instances", "data order"), int(args, "seed", "data order"), int(args, "epoch", "data order", 1), int(args, "chunk", "data order", 1));
    const head = args.opts.head === undefined ? order.length : int(args, "head", "data order");
    const out = order.subarray(0, Math.min(head, order.length));
    // Joined by hand: JSON.stringify of a 10^8-element array would build a huge JS array first.
    const parts: string[] = [];
    for (let i = 0; i < out.length; i += 1 << 16) parts.push(Array.prototype.join.call(out.subarray(i, i + (1 << 16)), ","));
    process.stdout.write(`[${parts.join(",")}]\n`);
  },
};

export const dataInspectCommand: CommandSpec = {
  name: "data inspect",
  summary: "Show which instances (file, token offset) and first tokens the global batch of step N contains",
  usage: "olmo data inspect CONFIG --step N [--a.b=value ...] | olmo data inspect (--data FILES | --mix FILE --base-dir DIR) --seq-len T --global-batch-tokens B --seed S --step N [--tokens K]",
  options: [
    { name: "data", type: "list", help: "comma-separated token files", metavar: "FILES" },
    { name: "mix", type: "string", help: "OLMo mix file (label,relative/path lines)", metavar: "FILE" },
    { name: "base-dir", type: "string", help: "base folder for mix paths", default: ".", metavar: "DIR" },
    { name: "dtype", type: "string", help: "token dtype uint16|uint32 (default: from --vocab-size)", metavar: "DTYPE" },
    { name: "vocab-size", type: "number", help: "vocabulary size (dolma2: 100278)", default: DOLMA2_VOCAB, metavar: "V" },
    { name: "seq-len", type: "number", help: "sequence length", metavar: "T" },
    { name: "max-target-seq-len", type: "number", help: "OLMo-core max_target_sequence_length (stage 1: 8192)", metavar: "T" },
    { name: "global-batch-tokens", type: "number", help: "global batch in tokens", metavar: "B" },
    { name: "seed", type: "number", help: "data-order seed", metavar: "S" },
    { name: "step", type: "number", help: "training step (1-based: step 1 sees global batch 0)", metavar: "N" },
    { name: "dp-world", type: "number", help: "also show which DP rank gets each instance", default: 1, metavar: "W" },
    { name: "tokens", type: "number", help: "tokens shown per instance", default: 8, metavar: "K" },
    { name: "allow-repetition", type: "boolean", help: "allow steps beyond the first epoch" },
    { name: "text", type: "boolean", help: "also show each instance's tokens decoded (cl100k_base / dolma2), as a quoted string" },
    { name: "json", type: "boolean", help: "print one JSON object instead of a table" },
  ],
  overrides: true,
  async run(args) {
    const cmd = "data inspect";
    req(args, "step", cmd);
    if (args.positional.length > 1) throw new UserError(`${cmd}: takes one CONFIG, got ${args.positional.join(" ")}`);
    let ds: Dataset, loader: DataLoader;
    const dpWorld = int(args, "dp-world", cmd, 1);
    if (args.positional.length === 1) {
      // the run's own data, order and batch size, exactly as `olmo train CONFIG` would read them
      const cfg = await loadConfig(args.positional[0], args.overrides);
      const d = cfg.data;
      const paths = d.embedded ? [(await embeddedBrownSplit(undefined, (l) => console.error(l))).train] : d.paths;
      ds = openDataset({ paths, mixFile: d.mixFile, baseDir: d.baseDir, tokenizer: d.tokenizer, dtype: d.dtype, vocabSize: cfg.model.vocabSize,
        seqLen: cfg.train.seqLen, maxTargetSeqLen: d.maxTargetSeqLen });
      loader = new DataLoader(ds, { globalBatchTokens: globalBatchTokens(cfg), seed: d.seed, dpWorld, allowRepetition: d.allowRepetition });
    } else {
      for (const n of ["seq-len", "global-batch-tokens", "seed"]) req(args, n, cmd);
      if (!args.opts.data && !args.opts.mix) throw new UserError(`${cmd}: give a run CONFIG, or --data FILES or --mix FILE`);
      ds = openDataset({
        paths: args.opts.data as string[] | undefined, mixFile: args.opts.mix as string | undefined, baseDir: args.opts["base-dir"] as string,
        dtype: args.opts.dtype as TokenDtype | undefined, vocabSize: int(args, "vocab-size", cmd, 1), seqLen: int(args, "seq-len", cmd, 1),
        maxTargetSeqLen: args.opts["max-target-seq-len"] === undefined ? undefined : int(args, "max-target-seq-len", cmd, 1),
      });
      loader = new DataLoader(ds, { globalBatchTokens: int(args, "global-batch-tokens", cmd, 1), seed: int(args, "seed", cmd), dpWorld, allowRepetition: !!args.opts["allow-repetition"] });
    }
    const step = int(args, "step", cmd, 1);
    const { epoch, instanceIds } = loader.globalBatch(step - 1);
    const K = Math.min(int(args, "tokens", cmd), ds.seqLen);
    const buf = new Int32Array(ds.seqLen);
    const enc = args.opts.text ? await cl100k() : null;
    const rows = Array.from(instanceIds, (id, col) => {
      const loc = ds.locate(id);
      ds.readInstance(id, buf, 0);
      const tokens = Array.from(buf.subarray(0, K));
      return { instance: id, rank: col % dpWorld, file: loc.path, label: loc.label, tokenOffset: loc.tokenOffset, tokens, ...(enc ? { text: decodeForDisplay(enc, tokens) } : {}) };
    });
    if (args.opts.json) {
      console.log(JSON.stringify({ step, globalBatch: step - 1, epoch, seed: loader.seed, instances: rows }));
      return;
    }
    console.log(`step ${step} (global batch ${step - 1}, epoch ${epoch}, seed ${loader.seed}): ${rows.length} instances of ${ds.seqLen} tokens; ` +
      `${ds.numInstances} instances, ${loader.batchesPerEpoch} batches per epoch`);
    for (const r of rows) {
      console.log(`  #${r.instance}${dpWorld > 1 ? ` rank ${r.rank}` : ""}  ${r.label ? `${r.label} ` : ""}${r.file} @${r.tokenOffset}  [${r.tokens.join(", ")}${K < ds.seqLen ? ", …" : ""}]`);
      if (r.text !== undefined) console.log(`      ${JSON.stringify(r.text)}${K < ds.seqLen ? " …" : ""}`);
    }
  },
};
