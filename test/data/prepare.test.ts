// olmo prepare: text → uint32 token files; decoding the tokens gives the input back.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { cl100k, DOLMA2_EOS_ID, openDataset, prepareDocuments, readDocuments } from "../../src/data/index.ts";
import { UserError } from "../../src/errors.ts";
import { tempDir } from "./helpers.ts";

const docs = [
  "The Fulton County Grand Jury said Friday an investigation of recent primary election produced no evidence.",
  "Unicode: naïve café — 日本語 🙂\nand a literal <|endoftext|> inside text.",
  "",
  "x".repeat(50),
];

function readU32(p: string): Uint32Array {
  const b = readFileSync(p);
  return new Uint32Array(b.buffer, b.byteOffset, b.length / 4);
}

test("prepareDocuments round-trips through cl100k_base with one EOS per document, files bounded", async () => {
  const out = tempDir("olmo-prep-");
  const res = await prepareDocuments(docs, out, { maxFileTokens: 16 });
  expect(res.documents).toBe(4);
  const files = readdirSync(out).sort();
  expect(files.every((f) => /^part-\d{5}\.npy$/.test(f))).toBe(true);
  const all = files.flatMap((f) => Array.from(readU32(join(out, f))));
  expect(all.length).toBe(res.tokens);
  for (const f of files) expect(readU32(join(out, f)).length).toBeLessThanOrEqual(16);
  const enc = await cl100k();
  const back: string[] = [];
  let cur: number[] = [];
  for (const t of all) {
    if (t === DOLMA2_EOS_ID) {
      back.push(enc.decode(cur));
      cur = [];
    } else cur.push(t);
  }
  expect(back).toEqual(docs);
  // the files are valid token files for the loader
  const ds = openDataset({ paths: files.map((f) => join(out, f)), seqLen: 4, vocabSize: 100278 });
  expect(ds.numInstances).toBeGreaterThan(0);
});

test("readDocuments: .txt is one document with txt \"file\", .jsonl / .jsonl.gz one per line from `text`", async () => {
  const d = tempDir("olmo-prep-in-");
  writeFileSync(join(d, "a.txt"), docs[1]);
  const jsonl = docs.map((t) => JSON.stringify({ text: t, id: 1 })).join("\n") + "\n\n";
  writeFileSync(join(d, "b.jsonl"), jsonl);
  writeFileSync(join(d, "c.jsonl.gz"), gzipSync(jsonl));
  const got: string[] = [];
  for await (const t of readDocuments([join(d, "a.txt"), join(d, "b.jsonl"), join(d, "c.jsonl.gz")], undefined, { txt: "file" })) got.push(t);
  expect(got).toEqual([docs[1], ...docs, ...docs]);
  writeFileSync(join(d, "bad.jsonl"), '{"text": "ok"}\n{"txt": "no"}\n');
  const bad = async () => { for await (const _ of readDocuments([join(d, "bad.jsonl")])); };
  await expect(bad()).rejects.toThrow(/bad\.jsonl:2: no string "text" field/);
  const missing = async () => { for await (const _ of readDocuments([join(d, "nope.jsonl")])); };
  await expect(missing()).rejects.toBeInstanceOf(UserError);
});

test("olmo prepare CLI writes files and prints token counts", () => {
  const d = tempDir("olmo-prep-cli-");
  writeFileSync(join(d, "a.jsonl"), docs.map((t) => JSON.stringify({ text: t })).join("\n"));
  const main = resolve(import.meta.dir, "../../src/cli/main.ts");
  const r = Bun.spawnSync(["bun", main, "prepare", join(d, "a.jsonl"), "--out", join(d, "out")]);
  expect(r.exitCode).toBe(0);
  expect(r.stdout.toString()).toMatch(/prepared 4 documents, \d+ tokens/);
  const again = Bun.spawnSync(["bun", main, "prepare", join(d, "a.jsonl"), "--out", join(d, "out")]);
  expect(again.exitCode).toBe(2);
  expect(again.stderr.toString()).toMatch(/already holds part-\*\.npy/);
});
