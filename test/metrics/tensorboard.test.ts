// TensorBoard event files: every run folder gets one per start; read back by a reader written from
// the format's specification (test/support/tfevents-reader.ts, no code shared with the writer),
// both CRCs of every record checked; the scalars are metrics.jsonl's (as float32), under our tags
// and OLMo-core's names; the resolved config is a text summary. A resumed run leaves one history
// in the folder's files (the earlier attempt's steps past the checkpoint cut, a SessionLog START);
// a finished run started again writes no file. Where a python with tensorboard is found
// (test/support/tensorboard-python.ts), TensorBoard's own loader reads the folder too.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBackend } from "../../src/backend/native-backend.ts";
import { validateConfig } from "../../src/config/load.ts";
import { runTraining } from "../../src/train/run.ts";
import { crc32c, maskedCrc32c, scalarEvent, sessionStartEvent, textEvent, tfRecord } from "../../src/metrics/tensorboard-format.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { tinyRunConfig, writeTinyTokens } from "../support/tiny-job.ts";
import { crc32cBitwise, decodeEvent, readEventFile, type TfEvent } from "../support/tfevents-reader.ts";
import { runTensorboardPython, tensorboardStatus } from "../support/tensorboard-python.ts";

let dir: string;
beforeAll(() => {
  ensureNativeBuilt("cpu");
  dir = mkdtempSync(join(tmpdir(), "olmo-tb-"));
  writeTinyTokens(join(dir, "tokens.u32"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const eventFiles = (runDir: string) => readdirSync(runDir).filter((f) => f.startsWith("events.out.tfevents.")).sort();
const readEvents = (runDir: string, f: string) => readEventFile(new Uint8Array(readFileSync(join(runDir, f))));
const metricsOf = (runDir: string) => readFileSync(join(runDir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
const tagsAt = (events: TfEvent[]) => new Map(events.filter((e) => e.scalars.length).map((e) => [e.step, new Map(e.scalars.map((s) => [s.tag, s.value]))]));
const f32 = (x: unknown) => Math.fround(x as number);

describe("CRC-32C and records", () => {
  test("check values (RFC 3720 B.4 / the iSCSI vectors), writer and reader alike", () => {
    const cases: [Uint8Array, number][] = [
      [new TextEncoder().encode("123456789"), 0xe3069283],
      [new Uint8Array(32), 0x8a9136aa],
      [new Uint8Array(32).fill(0xff), 0x62a8ab43],
      [Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
    ];
    for (const [bytes, want] of cases) expect([crc32c(bytes), crc32cBitwise(bytes)]).toEqual([want, want]);
    // TensorFlow's mask: rotate right by 15, add a constant
    expect(maskedCrc32c(new Uint8Array(0))).toBe(0xa282ead8);
  });

  test("an Event of scalars round-trips; a flipped bit fails its CRC", () => {
    const rec = tfRecord(scalarEvent(-3, 1234.5, [["a/b", 1.5], ["c", -2.25]]));
    const [ev] = readEventFile(rec);
    expect(ev).toEqual({ wallTime: 1234.5, step: -3, scalars: [{ tag: "a/b", value: 1.5 }, { tag: "c", value: -2.25 }], texts: [] });
    for (const at of [3, 10, 20, rec.length - 1]) {
      const bad = rec.slice();
      bad[at] ^= 0x10;
      expect(() => readEventFile(bad)).toThrow(/CRC mismatch|truncated/);
    }
    expect(decodeEvent(scalarEvent(7, 0, [])).scalars).toEqual([]);
  });

  test("a text summary is a DT_STRING tensor for the text plugin; a session start is SessionLog START", () => {
    const [t] = readEventFile(tfRecord(textEvent(5, 1, "config", "```json\n{\"a\": \"é\"}\n```")));
    expect(t).toMatchObject({ step: 5, scalars: [], texts: [{ tag: "config", plugin: "text", dtype: 7, strings: ["```json\n{\"a\": \"é\"}\n```"] }] });
    expect(decodeEvent(sessionStartEvent(9, 2))).toMatchObject({ step: 9, sessionStatus: 1, scalars: [], texts: [] });
  });
});

describe("a run's event file", () => {
  let runDir: string;
  let events: TfEvent[];
  let metrics: Record<string, number | string>[];
  beforeAll(async () => {
    runDir = join(dir, "run");
    const cfg = validateConfig(tinyRunConfig("tb", join(dir, "tokens.u32"), {
      train: { steps: 5 },
      checkpoint: { saveInterval: 0, keep: 3 }, // the schema's defaults: no periodic checkpoint
      top: { eval: { everySteps: 2, sets: [{ name: "held", paths: [join(dir, "tokens.u32")], instances: "windows", maxTokens: 64 }] } },
    }), "test");
    await runTraining(createBackend("cpu"), cfg, runDir, { log: () => {} });
    const files = eventFiles(runDir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^events\.out\.tfevents\.\d{10}\..+\.\d+\.0$/);
    events = readEvents(runDir, files[0]);
    metrics = metricsOf(runDir);
  }, 60_000);

  test("starts with the file-version event, a session start at step 1 and the resolved config; every record's CRCs hold", () => {
    expect(events[0].fileVersion).toBe("brain.Event:2");
    expect(events[0].wallTime).toBeGreaterThan(1.6e9);
    expect(events[1]).toMatchObject({ step: 1, sessionStatus: 1 });
    expect(events[2].texts.map((t) => [t.tag, t.plugin])).toEqual([["config", "text"]]);
    const config = JSON.parse(events[2].texts[0].strings[0].replace(/^```json\n|\n```$/g, ""));
    expect(config).toEqual(JSON.parse(readFileSync(join(runDir, "config.json"), "utf8")));
    expect(events.length).toBe(3 + 5);
  });

  test("the scalars are metrics.jsonl's: losses, LR, grad norm, throughput, memory, eval", () => {
    const byStep = tagsAt(events);
    for (const m of metrics) {
      const tags = byStep.get(m.step as number)!;
      if (m.eval === undefined) {
        for (const [field, tag] of [["loss", "train/loss"], ["ce_loss", "train/ce_loss"], ["z_loss", "train/z_loss"], ["grad_norm", "train/grad_norm"], ["lr", "train/lr"],
          ["tokens_per_s", "throughput/tokens_per_s"], ["mem_peak_bytes", "memory/device_peak_bytes"], ["rss_bytes", "memory/host_rss_bytes"], ["step_skipped", "train/step_skipped"]]) {
          expect({ step: m.step, tag, v: tags.get(tag) }).toEqual({ step: m.step, tag, v: f32(m[field]) });
        }
      } else {
        for (const f of ["loss", "ce_loss", "z_loss", "ppl"]) expect(tags.get(`eval/held/${f}`)).toBe(f32(m[f]));
      }
    }
    expect([...byStep.entries()].filter(([, t]) => t.has("eval/held/loss")).map(([s]) => s)).toEqual([2, 4, 5]);
  });

  test("the same numbers under OLMo-core's names (allenai/OLMo-core @ d7301e62), in OLMo-core's units", () => {
    const byStep = tagsAt(events);
    for (const m of metrics) {
      const tags = byStep.get(m.step as number)!;
      if (m.eval === undefined) {
        const want: Record<string, number> = {
          "train/CE loss": f32(m.ce_loss), "train/Z loss": f32(m.z_loss), "train/PPL": f32(Math.exp(m.ce_loss as number)),
          "optim/total grad norm": f32(m.grad_norm), "optim/LR (group 0)": f32(m.lr), "optim/step skipped": f32(m.step_skipped),
          "throughput/total tokens": f32(m.tokens_processed), "throughput/device/TPS": f32((m.tokens_per_s as number) / 1), // one device
        };
        for (const [tag, v] of Object.entries(want)) expect({ step: m.step, tag, v: tags.get(tag) }).toEqual({ step: m.step, tag, v });
        expect(tags.has("throughput/device/MFU")).toBe(false); // no peak FLOPs known on the CPU
      } else {
        expect([tags.get("eval/lm/held/CE loss"), tags.get("eval/lm/held/PPL")]).toEqual([f32(m.ce_loss), f32(m.ppl)]);
      }
    }
  });

  test("a finished run started again (nothing to train) writes no event file and leaves metrics.jsonl as it was", async () => {
    const before = readFileSync(join(runDir, "metrics.jsonl"));
    const cfg = validateConfig(JSON.parse(readFileSync(join(runDir, "config.json"), "utf8")), "test");
    // the finished run has a final checkpoint: its rerun resumes at step 5 of 5
    await runTraining(createBackend("cpu"), cfg, runDir, { log: () => {} });
    expect(eventFiles(runDir)).toHaveLength(1);
    expect(readFileSync(join(runDir, "metrics.jsonl")).equals(before)).toBe(true);
  }, 60_000);
});

describe("a resumed run leaves one history in its event files", () => {
  // attempt 1 trains 8 steps (checkpoints at 3 and 6, and 8 at the end) and "dies": only step 3's
  // checkpoint survives; attempt 2 resumes from it and stops after step 5
  let runDir: string;
  let files: string[];
  beforeAll(async () => {
    runDir = join(dir, "resumed");
    const cfg = validateConfig(tinyRunConfig("tb-resume", join(dir, "tokens.u32"), { train: { steps: 8 }, checkpoint: { saveInterval: 3, keep: 5 } }), "test");
    await runTraining(createBackend("cpu"), cfg, runDir, { log: () => {} });
    for (const c of readdirSync(runDir).filter((f) => /^stage1-step[68]-/.test(f))) rmSync(join(runDir, c), { recursive: true });
    await runTraining(createBackend("cpu"), cfg, runDir, { log: () => {}, stopAfterStep: 5 });
    files = eventFiles(runDir);
  }, 120_000);

  test("the first attempt's file is cut after step 3; the second starts with a session start at step 4", () => {
    expect(files).toHaveLength(2);
    const [first, second] = files.map((f) => readEvents(runDir, f));
    expect(first.filter((e) => e.scalars.length).map((e) => e.step)).toEqual([1, 2, 3]);
    expect(second[1]).toMatchObject({ step: 4, sessionStatus: 1 });
    expect(second.filter((e) => e.scalars.length).map((e) => e.step)).toEqual([4, 5]);
    // and each step's scalars are the history's: metrics.jsonl as its reader sees it
    const all = tagsAt([...first, ...second]);
    const rows = metricsOf(runDir);
    const last = new Map(rows.filter((r) => r.eval === undefined && r.restart === undefined).map((r) => [r.step, r]));
    for (const s of [1, 2, 3, 4, 5]) expect(all.get(s)!.get("train/loss")).toBe(f32(last.get(s)!.loss));
    expect(rows.filter((r) => r.restart === true)).toEqual([{ step: 3, restart: true }]);
  });

  test.skipIf(tensorboardStatus() !== true)(`TensorBoard's own loader sees steps 1..5 once each (${tensorboardStatus() === true ? "real tensorboard" : tensorboardStatus()})`, () => {
    const script = `
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "tensors": 0})
acc.Reload()
tags = acc.Tags()
print(json.dumps({"loss": [e.step for e in acc.Scalars("train/loss")], "olmo_core": [e.step for e in acc.Scalars("train/CE loss")],
  "texts": tags["tensors"], "config": [e.step for e in acc.Tensors("config")]}))`;
    const r = runTensorboardPython(["-c", script, runDir]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ loss: [1, 2, 3, 4, 5], olmo_core: [1, 2, 3, 4, 5], texts: ["config"], config: [1, 4] });
  });
});
