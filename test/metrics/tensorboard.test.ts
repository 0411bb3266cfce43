// TensorBoard event files: every run folder gets one; read back by a reader written from the
// format's specification (test/support/tfevents-reader.ts, no code shared with the writer), both
// CRCs of every record checked; the scalars are metrics.jsonl's (as float32).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBackend } from "../../src/backend/native-backend.ts";
import { validateConfig } from "../../src/config/load.ts";
import { runTraining } from "../../src/train/run.ts";
import { crc32c, maskedCrc32c, scalarEvent, tfRecord } from "../../src/metrics/tensorboard.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { tinyRunConfig, writeTinyTokens } from "../support/tiny-job.ts";
import { crc32cBitwise, decodeEvent, readEventFile } from "../support/tfevents-reader.ts";

let dir: string;
beforeAll(() => {
  ensureNativeBuilt("cpu");
  dir = mkdtempSync(join(tmpdir(), "olmo-tb-"));
  writeTinyTokens(join(dir, "tokens.u32"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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
    expect(ev).toEqual({ wallTime: 1234.5, step: -3, scalars: [{ tag: "a/b", value: 1.5 }, { tag: "c", value: -2.25 }] });
    for (const at of [3, 10, 20, rec.length - 1]) {
      const bad = rec.slice();
      bad[at] ^= 0x10;
      expect(() => readEventFile(bad)).toThrow(/CRC mismatch|truncated/);
    }
    expect(decodeEvent(scalarEvent(7, 0, [])).scalars).toEqual([]);
  });
});

describe("a run's event file", () => {
  let runDir: string;
  let events: ReturnType<typeof readEventFile>;
  let metrics: Record<string, number | string>[];
  beforeAll(async () => {
    runDir = join(dir, "run");
    const cfg = validateConfig(tinyRunConfig("tb", join(dir, "tokens.u32"), {
      train: { steps: 5 },
      checkpoint: { saveInterval: 0, keep: 3 }, // the schema's defaults: no periodic checkpoint
      top: { eval: { everySteps: 2, sets: [{ name: "held", paths: [join(dir, "tokens.u32")], instances: "windows", maxTokens: 64 }] } },
    }), "test");
    await runTraining(createBackend("cpu"), cfg, runDir, { log: () => {} });
    const files = readdirSync(runDir).filter((f) => f.startsWith("events.out.tfevents."));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^events\.out\.tfevents\.\d{10}\..+\.\d+\.0$/);
    events = readEventFile(new Uint8Array(readFileSync(join(runDir, files[0]))));
    metrics = readFileSync(join(runDir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  }, 60_000);

  test("starts with the file-version event; every record's CRCs hold", () => {
    expect(events[0].fileVersion).toBe("brain.Event:2");
    expect(events[0].wallTime).toBeGreaterThan(1.6e9);
    expect(events.length).toBe(1 + 5);
  });

  test("the scalars are metrics.jsonl's: losses, LR, grad norm, throughput, memory, eval", () => {
    const byStep = new Map(events.slice(1).map((e) => [e.step, new Map(e.scalars.map((s) => [s.tag, s.value]))]));
    for (const m of metrics) {
      const tags = byStep.get(m.step as number)!;
      const f32 = (x: unknown) => Math.fround(x as number);
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
});
