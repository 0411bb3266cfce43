// Text → OLMo token files: tokenize each document with cl100k_base (the base of OLMo-2's dolma2
// vocabulary: ids < 100257 coincide; tiktoken's split rule, see cl100k.ts), append EOS 100257, and
// write raw uint32 files
// part-00000.npy, part-00001.npy, … of at most maxFileTokens tokens. The files are written into a
// temporary folder and moved into the output when all are complete (src/output-dir.ts), so a
// failure or a crash never leaves part files that a rerun would refuse. Documents stay whole
// within a file unless one alone exceeds the limit.
import { closeSync, createReadStream, existsSync, openSync, readdirSync, readFileSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { createGunzip } from "node:zlib";
import { UserError } from "../errors.ts";
import { parseJson } from "../input.ts";
import { stageOutputDir } from "../output-dir.ts";
import { DOLMA2_EOS } from "../model/config.ts";
import { BpeEncoder } from "./bpe.ts";
import { cl100kTable } from "./cl100k.ts";
import { type TxtSplit, splitText } from "./txt-documents.ts";

export const DOLMA2_EOS_ID = DOLMA2_EOS;
export const DEFAULT_MAX_FILE_TOKENS = 1 << 28; // 1 GiB of uint32 per file

export interface PrepareOptions {
  maxFileTokens?: number;
  eosId?: number;
  /** called after each document: documents and tokens so far */
  onDocument?: (documents: number, tokens: number) => void;
}

export interface PrepareResult {
  files: { path: string; tokens: number }[];
  documents: number;
  tokens: number;
}

let encoder: BpeEncoder | null = null;

/** The cl100k_base encoder: js-tiktoken's tables, tiktoken's split rule (cl100k.ts), our near-linear merges (bpe.ts); built once (~0.2 s). */
export async function cl100k(): Promise<BpeEncoder> {
  if (!encoder) {
    // js-tiktoken's ranks with tiktoken's own split rule (cl100k.ts), merged in near-linear time (bpe.ts)
    encoder = new BpeEncoder(cl100kTable());
  }
  return encoder;
}

/** Tokenize documents into part-NNNNN.npy files in outDir (which must hold no part files yet). */
export async function prepareDocuments(docs: Iterable<string> | AsyncIterable<string>, outDir: string, opts: PrepareOptions = {}): Promise<PrepareResult> {
  const maxFile = opts.maxFileTokens ?? DEFAULT_MAX_FILE_TOKENS;
  if (!Number.isInteger(maxFile) || maxFile < 1) throw new UserError(`--max-file-tokens must be a positive integer, got ${maxFile}`);
  const eos = opts.eosId ?? DOLMA2_EOS_ID;
  if (existsSync(outDir) && statSync(outDir).isDirectory() && readdirSync(outDir).some((f) => /^part-\d+\.npy$/.test(f))) {
    throw new UserError(`${outDir} already holds part-*.npy token files; use an empty output folder`);
  }
  const enc = await cl100k();
  const out = stageOutputDir(outDir, "prepare", { merge: true });
  const result: PrepareResult = { files: [], documents: 0, tokens: 0 };
  // Buffered writer: tokens accumulate in a 4 MiB staging array, flushed to the open temp file.
  const stage = new Uint32Array(1 << 20);
  let staged = 0, fd = -1, fileTokens = 0, name = "";
  const flush = () => {
    if (staged) writeSync(fd, new Uint8Array(stage.buffer, 0, staged * 4));
    staged = 0;
  };
  const openNext = () => {
    name = `part-${String(result.files.length).padStart(5, "0")}.npy`;
    fd = openSync(join(out.dir, name), "w");
    fileTokens = 0;
  };
  const closeCurrent = () => {
    flush();
    closeSync(fd);
    result.files.push({ path: join(outDir, name), tokens: fileTokens });
    fd = -1;
  };
  const push = (ids: ArrayLike<number>) => {
    let i = 0;
    while (i < ids.length) {
      if (fd < 0 || fileTokens === maxFile) {
        if (fd >= 0) closeCurrent();
        openNext();
      }
      const n = Math.min(ids.length - i, maxFile - fileTokens, stage.length - staged);
      for (let k = 0; k < n; k++) stage[staged + k] = ids[i + k];
      staged += n;
      fileTokens += n;
      i += n;
      if (staged === stage.length) flush();
    }
  };
  try {
  for await (const doc of docs) {
    if (typeof doc !== "string") throw new UserError(`document ${result.documents + 1} is not a string`);
    // Special-token text such as "<|endoftext|>" inside a document is ordinary text, not EOS.
    const ids = enc.encode(doc, [], []);
    ids.push(eos);
    // Keep the document whole in one file when it fits in a fresh one.
    if (fd >= 0 && fileTokens + ids.length > maxFile && ids.length <= maxFile) closeCurrent();
    push(ids);
    result.documents++;
    result.tokens += ids.length;
    opts.onDocument?.(result.documents, result.tokens);
  }
  if (fd >= 0) closeCurrent();
  out.commit();
  } catch (e) {
    if (fd >= 0) closeSync(fd);
    out.abort();
    throw e;
  }
  return result;
}

/** Sum of input sizes in bytes (for a progress bar over the inputs as read). */
export function inputBytes(paths: string[]): number {
  return paths.reduce((a, p) => a + statInput(p), 0);
}

function statInput(p: string): number {
  if (!existsSync(p)) throw new UserError(`input not found: ${p}`);
  const st = statSync(p);
  if (!st.isFile()) throw new UserError(`${p}: not a file (give .txt, .jsonl or .jsonl.gz files)`);
  return st.size;
}

/** How readDocuments reads its inputs. */
export interface ReadOptions {
  /** .txt files: split at blank lines (default), one document per line, or the whole file (txt-documents.ts) */
  txt?: TxtSplit;
  /** after each input: how many documents it gave */
  onInput?: (path: string, documents: number) => void;
}

/**
 * Documents from input files: a .txt file is split into documents (ReadOptions.txt); .jsonl /
 * .jsonl.gz give one document per line from its string `text` field (blank lines skipped). onBytes
 * reports input bytes read (compressed bytes for .gz), so progress follows the disk.
 */
export async function* readDocuments(paths: string[], onBytes?: (bytes: number) => void, opts: ReadOptions = {}): AsyncGenerator<string> {
  if (paths.length === 0) throw new UserError("prepare: no input files given");
  for (const p of paths) {
    statInput(p);
    if (!/\.(txt|jsonl|jsonl\.gz)$/.test(p)) throw new UserError(`${p}: unsupported input (give .txt, .jsonl or .jsonl.gz)`);
  }
  for (const p of paths) {
    if (p.endsWith(".txt")) {
      const buf = readFileSync(p);
      onBytes?.(buf.length);
      const docs = splitText(new TextDecoder("utf-8", { fatal: false }).decode(buf), opts.txt ?? "paragraphs");
      yield* docs;
      opts.onInput?.(p, docs.length);
      continue;
    }
    const raw = createReadStream(p);
    raw.on("data", (c) => onBytes?.(c.length));
    let input: NodeJS.ReadableStream = raw;
    if (p.endsWith(".gz")) {
      const gz = createGunzip();
      raw.pipe(gz);
      input = gz;
    }
    const lines = createInterface({ input, crlfDelay: Infinity });
    let lineNo = 0, documents = 0;
    try {
      for await (const line of lines) {
        lineNo++;
        if (line.trim() === "") continue;
        let obj: unknown;
        try {
          obj = parseJson(line);
        } catch {
          throw new UserError(`${p}:${lineNo}: not valid JSON (expected one {"text": ...} object per line)`);
        }
        const text = (obj as { text?: unknown } | null)?.text;
        if (typeof text !== "string") throw new UserError(`${p}:${lineNo}: no string "text" field`);
        documents++;
        yield text;
      }
      opts.onInput?.(p, documents);
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(`${p}: cannot read (${(e as Error).message})`);
    } finally {
      raw.destroy();
    }
  }
}
