// What the commands print for a person reading a log: step lines end with an ETA (after everything
// the step line said before, which stays where it was); the end-of-run monitor line says when the
// spike check never armed; `olmo eval` prints a line of text (--json keeps the JSON object);
// `olmo data inspect --text` shows the decoded text; `olmo prepare` splits .txt files into documents
// and says how many.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cl100k, DOLMA2_EOS_ID } from "../../src/data/index.ts";
import { etaSeconds, stepLine } from "../../src/train/run-log.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { olmo, writeTinyJob } from "../parallel/run-compare.ts";

let dir: string, cfgPath: string, train: { code: number; out: string; err: string };
const env = { OLMO_BACKEND: "cpu" };

beforeAll(async () => {
  ensureNativeBuilt("cpu");
  ({ dir, cfgPath } = writeTinyJob("output"));
  train = await olmo(["train", cfgPath, `--run-dir=${join(dir, "run")}`, "--train.logEvery=1"], env);
  if (train.code !== 0) throw new Error(train.err);
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const STEP = /^step (\d)\/6 \| loss \d+\.\d{4} \| ce \d+\.\d{4} \| gnorm \d+\.\d{3} \| lr \d\.\d{3}e[-+]\d \| [\d.]+k? tok\/s \| \d+ ms/;

describe("step lines", () => {
  test("every step line but the last ends with an ETA; what came before is unchanged", () => {
    const steps = train.out.split("\n").filter((l) => l.startsWith("step "));
    expect(steps.map((l) => Number(STEP.exec(l)?.[1]))).toEqual([1, 2, 3, 4, 5, 6]);
    for (const l of steps.slice(0, -1)) expect(l).toMatch(/ ms \| ETA \d+s$/);
    expect(steps.at(-1)).toMatch(/ ms$/);
  });

  test("the ETA goes after a skip mark and an eval summary, and is the pace so far times the steps left", () => {
    const r = { step: 7, loss: 5, ce_loss: 5, z_loss: 0, grad_norm: 1, lr: 1e-3, tokens: 64, tokens_per_s: 100, ms: 640, step_skipped: 1 };
    expect(stepLine(7, 100, r, undefined, "eval held 5.1000 (ppl 164)", etaSeconds(70, 7, 93)))
      .toMatch(/ \| 640 ms \| skipped \(loss or grad-norm spike: no update\) \| eval held 5\.1000 \(ppl 164\) \| ETA 15m30s$/);
    expect(etaSeconds(3600, 1, 24 * 31)).toBe(3600 * 744);
  });
});

describe("the monitor line", () => {
  test("says the spike check never armed in a run shorter than its history", () => {
    expect(train.out).toMatch(/^monitor: spike check not armed: it needs 64 steps of history and this run trained 6 \| peak device memory/m);
  });

  test("says how many steps built its history when it armed during the run", async () => {
    const r = await olmo(["train", cfgPath, `--run-dir=${join(dir, "run-armed")}`, "--monitor.spikeWindow=4", "--quiet"], env);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^monitor: \d+ loss\/grad-norm spikes? \(> 6σ over the previous 4 steps; the first 2 steps built its history\) \|/m);
  }, 60_000);
});

describe("olmo eval prints a line of text; --json the object", () => {
  test("perplexity, --grad and a multiple-choice task", async () => {
    const ckpt = join(dir, "run", "stage1-step6-tokens1B");
    writeFileSync(join(dir, "task.jsonl"), `{"context":"a","choices":["b","c"],"gold":0}\n{"context":"b","choices":["c","d"],"gold":1}\n`);
    const data = ["--data", join(dir, "tokens.u32"), "--seq-len", "16"];
    const [text, json, grad, task] = await Promise.all([
      olmo(["eval", "--from", ckpt, ...data], env),
      olmo(["eval", "--from", ckpt, ...data, "--json"], env),
      olmo(["eval", "--from", ckpt, ...data, "--grad"], env),
      olmo(["eval", "--from", ckpt, "--task", join(dir, "task.jsonl")], env),
    ]);
    const o = JSON.parse(json.out);
    expect(text.out.trim()).toMatch(new RegExp(`^eval tokens: loss ${o.loss.toFixed(4)} \\(ce ${o.ce_loss.toFixed(4)} \\+ z \\d\\.\\d\\de-\\d\\), ` +
      `ppl ${o.ppl.toFixed(2)} over ${o.n_tokens} tokens in ${o.n_instances} instances \\([\\d.]+ s, [\\d.]+k? tokens/s\\)$`));
    expect(grad.out.trim()).toMatch(/^eval tokens: loss \d+\.\d{4} \(ce .*\), grad norm \d\.\d{4}\d* over 600 tokens$/);
    expect(task.out.trim()).toMatch(/^eval task: acc_raw \d+\.\d%, acc_per_token \d+\.\d%, acc_per_char \d+\.\d%, acc_uncond \d+\.\d% over 2 questions \([\d.]+ s\)$/);
  }, 60_000);
});

describe("olmo data inspect --text", () => {
  test("shows each instance's tokens decoded, as a quoted string (and in --json)", async () => {
    const args = ["data", "inspect", cfgPath, "--step", "2", "--tokens", "12", "--text"];
    const [table, json] = await Promise.all([olmo(args, env), olmo([...args, "--json"], env)]);
    expect(table.code).toBe(0);
    const enc = await cl100k();
    const rows = JSON.parse(json.out).instances as { tokens: number[]; text: string }[];
    expect(rows).toHaveLength(4);
    for (const r of rows) {
      expect(r.text).toBe(enc.decode(r.tokens));
      expect(table.out).toContain(`\n      ${JSON.stringify(r.text)} …\n`);
    }
  }, 60_000);
});

describe("olmo prepare splits .txt files into documents", () => {
  const text = "First paragraph,\nstill the first.\n\n\nSecond one.\n  \t\nThird\n";
  const cases = [
    ["paragraphs", [], ["First paragraph,\nstill the first.", "Second one.", "Third"], "3 documents (split at blank lines)"],
    ["lines", ["--txt-documents", "lines"], ["First paragraph,", "still the first.", "Second one.", "Third"], "4 documents (one per line)"],
    ["file", ["--txt-documents", "file"], [text], "1 document (the whole file)"],
  ] as const;
  for (const [name, flags, docs, said] of cases) {
    test(`${name}: each document ends with its own EOS, and the count is printed`, async () => {
      writeFileSync(join(dir, `${name}.txt`), text);
      const out = join(dir, `prep-${name}`);
      const r = await olmo(["prepare", join(dir, `${name}.txt`), "--out", out, ...flags], env);
      expect(r.code).toBe(0);
      expect(r.out).toContain(`${join(dir, `${name}.txt`)}: ${said}\n`);
      expect(r.out).toContain(`prepared ${docs.length} documents`);
      const file = readdirSync(out).find((f) => f.endsWith(".npy"))!;
      const buf = readFileSync(join(out, file));
      const ids = Array.from(new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4));
      const enc = await cl100k();
      const expected = docs.flatMap((d) => [...enc.encode(d, "all"), DOLMA2_EOS_ID]);
      expect(ids).toEqual(expected);
    }, 60_000);
  }
});
