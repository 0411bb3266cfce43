// Multiple-choice scoring (src/eval/mc-eval.ts):
//  - on a model whose logits we set: with o_proj and down_proj zero every block is the identity, so
//    the logits at a position are lm_head · rmsnorm(embedding of that position's token) — a bigram
//    model written into the weights. Every continuation's log-likelihood, unconditional score and
//    the four normalizations' predictions are computed here in double and must match the scorer;
//  - the task file format and its mistakes;
//  - on a model trained on sentences whose completions the task asks for: after training it
//    answers all of them (in-loop, at the end), and `olmo eval --task` on its checkpoint gives the
//    same accuracies.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createBackend } from "../../src/backend/native-backend.ts";
import { listCheckpoints } from "../../src/checkpoint/naming.ts";
import { validateConfig } from "../../src/config/load.ts";
import { prepareDocuments } from "../../src/data/index.ts";
import { continuationChars, type McQuestion, parseMcTask, readMcTask } from "../../src/data/mc-task.ts";
import { ModelConfigSchema, paddedVocab } from "../../src/model/config.ts";
import { Olmo2 } from "../../src/model/olmo2.ts";
import { ParamStore } from "../../src/model/param-store.ts";
import { MC_METRICS, McScorer, mcSeqLen } from "../../src/eval/mc-eval.ts";
import { runTraining } from "../../src/train/run.ts";
import { ensureNativeBuilt } from "../support/build.ts";

const root = resolve(import.meta.dir, "../..");
let dir: string;
beforeAll(() => {
  ensureNativeBuilt("cpu");
  dir = mkdtempSync(join(tmpdir(), "olmo-mc-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Deterministic uniform numbers in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

describe("scoring on a model whose logits are set", () => {
  const C = 16;
  const cfg = ModelConfigSchema.parse({ dModel: C, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnHidden: 32, vocabSize: 256, maxSeqLen: 64 });
  const V = paddedVocab(cfg);
  const rand = rng(7);
  // lm_head[j, c]: the logit of token j after a token of class c = id mod C is lm_head[j, c] / rms(e_c)
  const W = Float64Array.from({ length: V * C }, () => 2 * rand() - 1);
  const scale = 1 / Math.sqrt(1 / C + cfg.normEps);
  const logp = (prev: number, next: number): number => {
    const c = prev % C;
    let m = -Infinity;
    for (let j = 0; j < V; j++) m = Math.max(m, W[j * C + c] * scale);
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp(W[j * C + c] * scale - m);
    return W[next * C + c] * scale - (m + Math.log(s));
  };
  const ll = (prefix: number[], cont: number[]) => cont.reduce((a, t, j) => a + logp(j === 0 ? prefix[prefix.length - 1] : cont[j - 1], t), 0);

  let scorer: McScorer, store: ParamStore;
  const questions: McQuestion[] = Array.from({ length: 24 }, () => {
    const tok = () => 1 + Math.floor(rand() * 250);
    const n = 2 + Math.floor(rand() * 3);
    return {
      context: Array.from({ length: 1 + Math.floor(rand() * 6) }, tok),
      uncond: [tok()],
      choices: Array.from({ length: n }, () => ({ tokens: Array.from({ length: 1 + Math.floor(rand() * 4) }, tok), chars: 1 + Math.floor(rand() * 20) })),
      gold: Math.floor(rand() * n),
    };
  });
  beforeAll(() => {
    store = new ParamStore(createBackend("cpu"), cfg);
    store.fillEach((s, out) => {
      if (s.name === "model.embed_tokens.weight") {
        out.fill(0);
        for (let t = 0; t < V; t++) out[t * C + (t % C)] = 1;
      } else if (s.name === "lm_head.weight") out.set(W);
      else if (/o_proj|down_proj/.test(s.name)) out.fill(0); // each block: x + norm(0) = x
      else if (s.init === "ones") out.fill(1);
      else for (let i = 0; i < out.length; i++) out[i] = 0.1 * (2 * rand() - 1);
    });
    scorer = new McScorer(new Olmo2(store, cfg, 1, mcSeqLen(questions, cfg.maxSeqLen), { training: false }));
  });
  afterAll(() => {
    scorer.model.free();
    store.free();
  });

  test("each choice's Σ log p given the context and given the unconditional prompt", () => {
    for (const q of questions) {
      const s = scorer.scores(q);
      q.choices.forEach((c, i) => {
        expect(s.logp[i]).toBeCloseTo(ll(q.context, c.tokens), 4);
        expect(s.logpUncond[i]).toBeCloseTo(ll(q.uncond, c.tokens), 4);
      });
    }
  });

  test("accuracy under each normalization: raw, per token, per character, unconditional (PMI)", () => {
    const argmax = (xs: number[]) => xs.indexOf(Math.max(...xs));
    const want: Record<string, number> = Object.fromEntries(MC_METRICS.map((m) => [m, 0]));
    for (const q of questions) {
      const raw = q.choices.map((c) => ll(q.context, c.tokens));
      const unc = q.choices.map((c) => ll(q.uncond, c.tokens));
      const pred = {
        acc_raw: argmax(raw),
        acc_per_token: argmax(raw.map((x, i) => x / q.choices[i].tokens.length)),
        acc_per_char: argmax(raw.map((x, i) => x / q.choices[i].chars)),
        acc_uncond: argmax(raw.map((x, i) => x - unc[i])),
      };
      for (const m of MC_METRICS) want[m] += pred[m] === q.gold ? 1 / questions.length : 0;
    }
    const got = scorer.evaluate(questions);
    expect(got.n_questions).toBe(questions.length);
    for (const m of MC_METRICS) expect({ m, acc: got[m] }).toEqual({ m, acc: expect.closeTo(want[m], 12) as unknown as number });
    // the normalizations really disagree on this task, so each is tested for itself
    expect(new Set(MC_METRICS.map((m) => want[m].toFixed(6))).size).toBeGreaterThan(2);
  });

  test("a context longer than the model is cut from the left (the continuation stays whole)", () => {
    const short = scorer.logLikelihood([5, 9], [17, 33]);
    const long = scorer.logLikelihood([...Array.from({ length: 100 }, (_, i) => 1 + (i % 200)), 5, 9], [17, 33]);
    expect(long).toBeCloseTo(short, 5); // only the last context token matters in this model
    expect(short).toBeCloseTo(ll([9], [17, 33]), 4);
  });
});

describe("task files", () => {
  test("parsed with their line numbers; characters exclude one leading space", () => {
    const qs = parseMcTask(`{"context":"Q","choices":[" a b"," c"],"gold":1}\n\n{"context":"R","choices":["x","y"],"gold":0,"uncond":"Answer:"}\n`, "t.jsonl");
    expect(qs.map((q) => [q.line, q.gold, q.uncond])).toEqual([[1, 1, undefined], [3, 0, "Answer:"]]);
    expect([continuationChars(" a b"), continuationChars("x"), continuationChars(" é")]).toEqual([3, 1, 1]);
  });

  test("mistakes name the file and line", () => {
    const bad: [string, RegExp][] = [
      ["not json", /t\.jsonl:1: not a JSON line/],
      [`{"choices":["a","b"],"gold":0}`, /t\.jsonl:1: "context" must be a non-empty string/],
      [`{"context":"q","choices":["a"],"gold":0}`, /"choices" must be a list of at least 2/],
      [`{"context":"q","choices":["a"," "],"gold":0}`, /"choices" must be a list of at least 2 strings with text/],
      [`{"context":"q","choices":["a","b"],"gold":2}`, /"gold" must be the index of the right choice, 0…1; got 2/],
      ["", /t\.jsonl: no questions/],
    ];
    for (const [text, re] of bad) expect(() => parseMcTask(text, "t.jsonl")).toThrow(re);
  });
});

describe("a model trained on what the task asks", () => {
  const facts = [["France", "Paris"], ["Italy", "Rome"], ["Germany", "Berlin"], ["Spain", "Madrid"]];
  const caps = facts.map((f) => ` ${f[1]}`);
  let taskPath: string, runDir: string;
  const metrics = () => readFileSync(join(runDir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));

  beforeAll(async () => {
    const rand = rng(3);
    const sentences = Array.from({ length: 600 }, () => facts[Math.floor(rand() * facts.length)]).map(([c, k]) => `The capital of ${c} is ${k}.`);
    const prep = await prepareDocuments([sentences.join(" ")], join(dir, "facts"), {});
    taskPath = join(dir, "capitals.jsonl");
    writeFileSync(taskPath, facts.map(([c], i) => JSON.stringify({ context: `The capital of ${c} is`, choices: caps, gold: i, uncond: "The capital of" })).join("\n") + "\n");
    expect((await readMcTask(taskPath, { vocabSize: 100278 })).length).toBe(4);
    runDir = join(dir, "run");
    const cfg = validateConfig({
      name: "capitals",
      model: { dModel: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnHidden: 64, vocabSize: 100278, maxSeqLen: 64 },
      data: { paths: prep.files.map((f) => f.path), seed: 1, allowRepetition: true },
      train: { seqLen: 32, globalBatchInstances: 4, microBatchInstances: 4, steps: 160, logEvery: 1000 },
      optim: { lr: 1e-2, schedule: { kind: "cosine", warmupSteps: 5, alpha: 0.1 } },
      checkpoint: { saveInterval: 0, keep: 1 },
      eval: { atStart: true, atEnd: true, tasks: [{ path: taskPath }] },
      backend: "cpu",
    }, "test");
    await runTraining(createBackend("cpu"), cfg, runDir, { log: () => {} });
  }, 300_000);

  test("the in-loop task before and after: every question answered after training", () => {
    const ev = metrics().filter((r) => r.eval === "capitals");
    expect(ev.map((r) => [r.step, r.kind, r.n_questions])).toEqual([[0, "mc", 4], [160, "mc", 4]]);
    expect(ev[1]).toMatchObject({ acc_raw: 1, acc_per_token: 1, acc_per_char: 1 });
  });

  test("olmo eval --task on the final checkpoint gives the in-loop accuracies", () => {
    const ckpt = listCheckpoints(runDir).pop()!.path;
    const p = Bun.spawnSync([process.execPath, "src/cli/main.ts", "eval", "--from", ckpt, "--task", taskPath, "--json"], { cwd: root, env: { ...process.env, OLMO_BACKEND: "cpu", OLMO_THREADS: "1" } });
    expect(p.stderr.toString()).toBe("");
    const out = JSON.parse(p.stdout.toString());
    const last = metrics().filter((r) => r.eval === "capitals").pop();
    for (const m of [...MC_METRICS, "n_questions"]) expect({ m, v: out[m] }).toEqual({ m, v: last[m] });
  });
});

test("a choice longer than the model's context is refused when the task is read, naming the line (not a crash at the first eval)", async () => {
  const d = mkdtempSync(join(tmpdir(), "olmo-mc-long-"));
  try {
    const f = join(d, "long.jsonl");
    writeFileSync(f, [JSON.stringify({ context: "A", choices: ["b", "c"], gold: 0 }),
      JSON.stringify({ context: "A", choices: ["b", "the cat sat on the mat and looked out of the window"], gold: 0 })].join("\n") + "\n");
    await expect(readMcTask(f, { vocabSize: 100278, maxSeqLen: 8 })).rejects.toThrow(`${f}:2: choice 1 is 12 tokens, longer than the model's context of 8 (model.maxSeqLen)`);
    expect(await readMcTask(f, { vocabSize: 100278, maxSeqLen: 64 })).toHaveLength(2);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
