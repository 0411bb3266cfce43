// The embedded corpus split by document into a training part and a held-out part, by one fixed
// rule: of the Brown documents in file order (ca01 … cr09, 0-based index i), those with
// i % 25 === 24 are held out — 20 of 500, one in 25, spread over all 15 genres — and the other 480
// are trained on. A document is its tokens through its EOS (prepare appends one to each), so the
// split works on the tokenized cache, the same in a compiled binary. Written once next to the
// token cache (temporary names, renamed, the manifest last) and reused while the parts it was
// cut from are unchanged.
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../../errors.ts";
import { parseJson } from "../../input.ts";
import { writeFileAtomic } from "../../output-dir.ts";

export const HELDOUT_EVERY = 25;
export const isHeldOut = (documentIndex: number): boolean => documentIndex % HELDOUT_EVERY === HELDOUT_EVERY - 1;

export interface CorpusSplit {
  train: string;
  heldout: string;
  documents: number;
  heldoutDocuments: number;
  trainTokens: number;
  heldoutTokens: number;
}

const MANIFEST = "split.json";

/** A raw uint32 token file, copied so its alignment never depends on Buffer pooling. */
export function readU32(path: string): Uint32Array {
  const b = readFileSync(path);
  return new Uint32Array(new Uint8Array(b).buffer, 0, Math.floor(b.byteLength / 4));
}

/** Document boundaries [start, end) of a token array: each document ends with (and includes) EOS. */
export function documentBounds(tokens: Uint32Array, eos: number): [number, number][] {
  const out: [number, number][] = [];
  let start = 0;
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] !== eos) continue;
    out.push([start, i + 1]);
    start = i + 1;
  }
  return out;
}

/** Split the tokenized corpus (its part files, in order) into dir/train.npy and dir/heldout.npy. */
export function splitByDocument(parts: string[], dir: string, eos: number): CorpusSplit {
  const source = parts.map((p) => ({ path: p, bytes: statSync(p).size }));
  const manifestPath = join(dir, MANIFEST);
  if (existsSync(manifestPath)) {
    let m: (CorpusSplit & { source: typeof source; every: number }) | null = null;
    try {
      m = parseJson(readFileSync(manifestPath, "utf8")) as CorpusSplit & { source: typeof source; every: number };
    } catch {
      m = null; // a damaged manifest (a cache cut short): split again
    }
    if (m && m.every === HELDOUT_EVERY && JSON.stringify(m.source) === JSON.stringify(source) && existsSync(m.train) && existsSync(m.heldout)) {
      return { train: m.train, heldout: m.heldout, documents: m.documents, heldoutDocuments: m.heldoutDocuments, trainTokens: m.trainTokens, heldoutTokens: m.heldoutTokens };
    }
  }
  const chunks = parts.map(readU32);
  const all = new Uint32Array(chunks.reduce((a, c) => a + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  const docs = documentBounds(all, eos);
  if (docs.length < HELDOUT_EVERY) throw new UserError(`the embedded corpus has ${docs.length} documents, too few to hold one in ${HELDOUT_EVERY} out`);
  const parts2 = { train: [] as Uint32Array[], heldout: [] as Uint32Array[] };
  docs.forEach(([s, e], i) => (isHeldOut(i) ? parts2.heldout : parts2.train).push(all.subarray(s, e)));
  mkdirSync(dir, { recursive: true });
  const write = (name: string, pieces: Uint32Array[]): { path: string; tokens: number } => {
    const n = pieces.reduce((a, p) => a + p.length, 0);
    const out = new Uint32Array(n);
    let k = 0;
    for (const p of pieces) {
      out.set(p, k);
      k += p.length;
    }
    const path = join(dir, name);
    writeFileAtomic(path, new Uint8Array(out.buffer, out.byteOffset, out.byteLength), "embedded corpus split");
    return { path, tokens: n };
  };
  const train = write("train.npy", parts2.train), heldout = write("heldout.npy", parts2.heldout);
  const split: CorpusSplit = {
    train: train.path, heldout: heldout.path, documents: docs.length, heldoutDocuments: parts2.heldout.length,
    trainTokens: train.tokens, heldoutTokens: heldout.tokens,
  };
  writeFileAtomic(manifestPath, JSON.stringify({ ...split, every: HELDOUT_EVERY, source }, null, 1) + "\n", "embedded corpus split");
  return split;
}
