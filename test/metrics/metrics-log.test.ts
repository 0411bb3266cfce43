// metrics.jsonl's two rules, each on several files of its own:
//  - writers: before appending, a torn last line (a crash or a full disk mid-append) is cut off, or
//    completed when it holds a whole record — through every writer: appendRecords, RunMetrics (olmo
//    train), recordEval (olmo eval --record);
//  - readers: a damaged line is skipped and counted (line number, why), never a refusal; records of
//    abandoned attempts are superseded (restart markers; a step record at or below the last one).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readMetricsHistory } from "../../src/metrics/metrics-history.ts";
import { appendRecords } from "../../src/metrics/metrics-log.ts";
import { recordEval, RunMetrics } from "../../src/metrics/run-metrics.ts";

const D = mkdtempSync(join(tmpdir(), "olmo-metrics-log-"));
afterAll(() => rmSync(D, { recursive: true, force: true }));
let n = 0;
/** a fresh file holding `text` */
function file(text: string | Uint8Array): string {
  const p = join(D, `m${n++}.jsonl`);
  writeFileSync(p, text);
  return p;
}
const rec = (step: number, extra: Record<string, number | string> = {}) => ({ step, loss: 10 - step / 10, ...extra });
const line = (r: object) => JSON.stringify(r) + "\n";
const lines = (p: string) => readFileSync(p, "utf8").split("\n");

describe("writers repair a torn tail before appending", () => {
  test("a record cut mid-way is dropped; the next record starts on its own line", () => {
    const p = file(line(rec(1)) + line(rec(2)) + '{"step":3,"loss":9.7,"gra');
    expect(appendRecords(p, [rec(3)])).toEqual({ kind: "cut", bytes: 25 });
    expect(lines(p)).toEqual([line(rec(1)).trim(), line(rec(2)).trim(), line(rec(3)).trim(), ""]);
  });

  test("a whole record that only lost its line end is kept", () => {
    const p = file(line(rec(1)) + JSON.stringify(rec(2)));
    expect(appendRecords(p, [rec(3)])?.kind).toBe("completed");
    expect(readMetricsHistory(p).steps.steps).toEqual(Float64Array.from([1, 2, 3]));
  });

  test("a file that is one torn line and nothing else becomes the new records alone", () => {
    const p = file('{"step":1,"lo');
    appendRecords(p, [rec(1)]);
    expect(readFileSync(p, "utf8")).toBe(line(rec(1)));
  });

  test("a cut inside a multi-byte character, JSON that is not a record, and a torn line longer than the scan chunk", () => {
    const utf8 = new TextEncoder().encode(line(rec(1)) + '{"step":2,"eval":"Ωmega"}');
    const cutInChar = file(utf8.subarray(0, utf8.length - 7)); // 'mega"}' and the second byte of "Ω" lost
    expect(utf8[utf8.length - 8]).toBe(0xce); // Ω is 0xce 0xa9
    expect(appendRecords(cutInChar, [rec(2)])?.kind).toBe("cut");
    expect(readMetricsHistory(cutInChar).damaged).toEqual([]);
    const notRecord = file(line(rec(1)) + "12345");
    expect(appendRecords(notRecord, [rec(2)])).toEqual({ kind: "cut", bytes: 5 });
    const torn = `{"step":2,"note":"${"x".repeat(200_000)}`;
    const long = file(line(rec(1)) + torn);
    expect(appendRecords(long, [rec(2)])).toEqual({ kind: "cut", bytes: torn.length });
    expect(readMetricsHistory(long).steps.length).toBe(2);
  });

  test("a file that ends in a line end, an empty file and a missing file are left as they are", () => {
    for (const text of [line(rec(1)), ""]) {
      const p = file(text);
      expect(appendRecords(p, [rec(2)])).toBeNull();
      expect(readFileSync(p, "utf8")).toBe(text + line(rec(2)));
    }
    const missing = join(D, "missing.jsonl");
    expect(appendRecords(missing, [rec(1)])).toBeNull();
    expect(readFileSync(missing, "utf8")).toBe(line(rec(1)));
  });

  test("olmo train's writer (RunMetrics) and olmo eval --record's (recordEval) both repair and say so", () => {
    const run = mkdtempSync(join(D, "run-"));
    writeFileSync(join(run, "metrics.jsonl"), line(rec(1)) + line(rec(2)) + '{"step":3,"lo');
    const notes: string[] = [];
    const m = new RunMetrics(run, { tensorboard: false, resumedAfter: 2, devices: 1, log: (l) => notes.push(l) });
    m.write([rec(3)]);
    m.close();
    expect(notes).toEqual([expect.stringMatching(/metrics\.jsonl: its last line was cut short \(a crash or a full disk while appending\); dropped those 13 bytes/)]);
    const h = readMetricsHistory(join(run, "metrics.jsonl"));
    expect({ steps: [...h.steps.steps], damaged: h.damaged, restarts: h.restarts }).toEqual({ steps: [1, 2, 3], damaged: [], restarts: [2] });

    const soup = mkdtempSync(join(D, "soup-"));
    writeFileSync(join(soup, "metrics.jsonl"), '{"step":5,"eval":"heldout","kind":"lm","loss":3');
    expect(recordEval(soup, { step: 5, eval: "heldout", kind: "lm", loss: 3.5 })).toMatch(/cut short/);
    expect(readMetricsHistory(join(soup, "metrics.jsonl")).evals.map((e) => [e.step, e.loss])).toEqual([[5, 3.5]]);
  });
});

describe("readers skip and count damaged lines", () => {
  test("a torn line the old writer appended after, a non-JSON line, a record without a step and a cut last line", () => {
    const p = file(line(rec(1)) + '{"step":2,"lo' + line(rec(2)) + "garbage\n" + line({ loss: 3 }) + line(rec(3)) + '{"step":4');
    const h = readMetricsHistory(p);
    expect([...h.steps.steps]).toEqual([1, 3]);
    expect(h.damaged).toEqual([
      { line: 2, why: "not JSON" }, { line: 3, why: "not JSON" }, { line: 4, why: 'no integer "step"' }, { line: 6, why: "cut short (no line end)" },
    ]);
  });

  test("blank lines are not damage; a file of damage alone is an empty history", () => {
    expect(readMetricsHistory(file("\n\n" + line(rec(1)) + "\n")).damaged).toEqual([]);
    const h = readMetricsHistory(file("{\n[1,2]\n"));
    expect({ n: h.steps.length, damaged: h.damaged.length }).toEqual({ n: 0, damaged: 2 });
  });
});

describe("readers show one history: abandoned attempts are superseded", () => {
  const evalRec = (step: number, loss: number) => ({ step, eval: "heldout", kind: "lm", loss });

  test("Ctrl-C'd at step 24 with a checkpoint at 3: the resumed run's steps replace 4..24 and its evaluations past 3", () => {
    const first = Array.from({ length: 24 }, (_, i) => line(rec(i + 1))).join("") + line(evalRec(10, 9)) + line(evalRec(20, 8));
    const p = file(first + line({ step: 3, restart: true }) + [4, 5, 6].map((s) => line(rec(s, { loss: 1 }))).join(""));
    const h = readMetricsHistory(p);
    expect([...h.steps.steps]).toEqual([1, 2, 3, 4, 5, 6]);
    expect([...h.steps.column("loss")!.subarray(3)]).toEqual([1, 1, 1]);
    expect(h.evals).toEqual([]);
    expect({ superseded: h.superseded, restarts: h.restarts }).toEqual({ superseded: 21 + 2, restarts: [3] });
  });

  test("a marker alone (a resume that wrote nothing else yet) already supersedes; a restart from 0 drops everything", () => {
    const p = file([1, 2, 3].map((s) => line(rec(s))).join("") + line({ step: 1, restart: true }));
    expect([...readMetricsHistory(p).steps.steps]).toEqual([1]);
    const q = file([1, 2].map((s) => line(rec(s))).join("") + line(evalRec(0, 11)) + line({ step: 0, restart: true }) + line(rec(1, { loss: 5 })));
    const h = readMetricsHistory(q);
    expect({ steps: [...h.steps.steps], loss: [...h.steps.column("loss")!], evals: h.evals.length }).toEqual({ steps: [1], loss: [5], evals: 1 });
  });

  test("two restarts in a row, and a file written before markers existed (a step at or below the last one)", () => {
    const two = file([1, 2, 3, 4, 5, 6].map((s) => line(rec(s))).join("") + line({ step: 4, restart: true }) + line(rec(5, { loss: 2 })) +
      line({ step: 2, restart: true }) + line(rec(3, { loss: 3 })));
    expect([...readMetricsHistory(two).steps.steps]).toEqual([1, 2, 3]);
    expect(readMetricsHistory(two).steps.at("loss", 3)).toBe(3);
    const old = file([1, 2, 3, 4, 5].map((s) => line(rec(s))).join("") + line(evalRec(4, 7)) + [3, 4].map((s) => line(rec(s, { loss: 0.5 }))).join(""));
    const h = readMetricsHistory(old);
    expect({ steps: [...h.steps.steps], loss3: h.steps.at("loss", 3), evals: h.evals.length }).toEqual({ steps: [1, 2, 3, 4], loss3: 0.5, evals: 0 });
  });

  test("evaluations do not supersede steps (olmo eval --record of an older checkpoint into a run folder); a re-done one replaces its twin", () => {
    const p = file([1, 2, 3, 4].map((s) => line(rec(s))).join("") + line(evalRec(2, 9)) + line(evalRec(4, 8)) + line(evalRec(2, 7)));
    const h = readMetricsHistory(p);
    expect([...h.steps.steps]).toEqual([1, 2, 3, 4]);
    expect(h.evals.map((e) => [e.step, e.loss])).toEqual([[2, 7], [4, 8]]);
  });
});
