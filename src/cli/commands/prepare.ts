// olmo prepare INPUT... --out DIR: text → uint32 OLMo token files (cl100k_base + EOS per document).
import { UserError } from "../../errors.ts";
import { DEFAULT_MAX_FILE_TOKENS, DOLMA2_EOS_ID, inputBytes, prepareDocuments, readDocuments } from "../../data/index.ts";
import { describeSplit, TXT_SPLITS, txtSplit } from "../../data/txt-documents.ts";
import { formatRate, Progress } from "../../progress.ts";
import { type CommandSpec, req } from "../args.ts";

export const prepareCommand: CommandSpec = {
  name: "prepare",
  summary: "Tokenize .txt / .jsonl / .jsonl.gz (text field) into uint32 OLMo token files (cl100k/dolma2, EOS per document)",
  usage: "olmo prepare INPUT... --out DIR [--max-file-tokens N] [--txt-documents paragraphs|lines|file]",
  options: [
    { name: "out", type: "string", help: "output folder for part-NNNNN.npy (new or without part files)", metavar: "DIR" },
    { name: "max-file-tokens", type: "number", help: "largest token file, in tokens", default: DEFAULT_MAX_FILE_TOKENS, metavar: "N" },
    { name: "txt-documents", type: "string", help: `how a .txt file splits into documents (each ends with EOS): ${TXT_SPLITS.join(", ")} (at blank lines, one per line, the whole file)`,
      default: "paragraphs", metavar: "HOW" },
  ],
  async run(args) {
    const out = req<string>(args, "out", "prepare");
    const txt = txtSplit(args.opts["txt-documents"] as string, "prepare: --txt-documents");
    if (args.positional.length === 0) throw new UserError("prepare: give at least one INPUT file (.txt, .jsonl, .jsonl.gz)");
    const total = inputBytes(args.positional);
    const bar = new Progress("prepare", Math.max(1, Math.round(total / 1e6)), "MB");
    const tty = !!process.stderr.isTTY;
    const t0 = performance.now();
    let read = 0, lastLine = 0;
    const onBytes = (n: number) => {
      read += n;
      bar.update(Math.round(read / 1e6));
      // Without a terminal: a plain progress line at most every 10 s.
      const now = performance.now();
      if (!tty && now - lastLine > 10_000) {
        lastLine = now;
        console.error(`prepare: ${(read / 1e6).toFixed(1)}/${(total / 1e6).toFixed(1)} MB read`);
      }
    };
    let res;
    const perInput: string[] = [];
    const onInput = (path: string, n: number) => perInput.push(`${path}: ${path.endsWith(".txt") ? describeSplit(n, txt) : `${n} document${n === 1 ? "" : "s"} (one per JSON line)`}`);
    try {
      res = await prepareDocuments(readDocuments(args.positional, onBytes, { txt, onInput }), out, { maxFileTokens: args.opts["max-file-tokens"] as number });
    } finally {
      bar.done();
    }
    const s = (performance.now() - t0) / 1000;
    for (const line of perInput) console.log(line);
    for (const f of res.files) console.log(`${f.path}\t${f.tokens} tokens`);
    console.log(`prepared ${res.documents} documents, ${res.tokens} tokens (uint32, EOS ${DOLMA2_EOS_ID}) in ${res.files.length} files, ${s.toFixed(1)} s (${formatRate(res.tokens / Math.max(s, 1e-9))} tokens/s)`);
  },
};
