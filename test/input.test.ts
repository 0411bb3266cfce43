// What users hand us (src/input.ts): JSON nested past MAX_JSON_DEPTH is refused by one linear scan
// before any recursive step (stringify, msgpack, the schema) can overflow the stack on it, brackets
// inside strings do not count; a file that cannot be read says why (not found, a folder, not
// readable). Through the CLI: a deeply nested config.json, metrics line or override is never a
// stack trace.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { UserError } from "../src/errors.ts";
import { MAX_JSON_DEPTH, jsonDepth, parseJson, readInputText } from "../src/input.ts";

const root = resolve(import.meta.dir, "..");
const D = mkdtempSync(join(tmpdir(), "olmo-input-"));
afterAll(() => rmSync(D, { recursive: true, force: true }));
const deep = (n: number, open = "[", close = "]") => open.repeat(n) + close.repeat(n);

describe("parseJson", () => {
  test("nesting is measured outside strings, escapes included", () => {
    expect(jsonDepth("{}")).toBe(1);
    expect(jsonDepth('{"a":[1,{"b":[]}]}')).toBe(4);
    expect(jsonDepth('["[[[[", "\\"[[[", {"k]]": "{{"}]')).toBe(2);
    expect(jsonDepth('"\\\\"')).toBe(0);
    expect(jsonDepth(deep(100_000), 10)).toBe(11); // stops early
  });

  test(`accepts ${MAX_JSON_DEPTH} levels, refuses ${MAX_JSON_DEPTH + 1} and 100,000 with a SyntaxError, in linear time`, () => {
    expect(parseJson(deep(MAX_JSON_DEPTH))).toBeInstanceOf(Array);
    expect(() => parseJson(deep(MAX_JSON_DEPTH + 1))).toThrow(SyntaxError);
    const t0 = performance.now();
    expect(() => parseJson(`{"a":${deep(100_000, '{"x":', "}").replace(/}+$/, (m) => `1${m}`)}}`)).toThrow(/nested deeper than 512 levels/);
    expect(() => parseJson(deep(1_000_000))).toThrow(/nested deeper than 512 levels/);
    expect(performance.now() - t0).toBeLessThan(2_000);
    // what the limit protects: a value at the limit still goes through the recursive steps
    expect(JSON.stringify(parseJson(deep(MAX_JSON_DEPTH))).length).toBe(2 * MAX_JSON_DEPTH);
  });
});

describe("readInputText", () => {
  test("not found, a folder, a file: each says so", () => {
    mkdirSync(join(D, "folder"));
    writeFileSync(join(D, "file.txt"), "text");
    const why = (p: string) => {
      try {
        readInputText(p, "mix file");
        return "read";
      } catch (e) {
        expect(e).toBeInstanceOf(UserError);
        return (e as Error).message;
      }
    };
    expect(why(join(D, "nope.txt"))).toBe(`mix file not found: ${join(D, "nope.txt")}`);
    expect(why(join(D, "folder"))).toBe(`mix file ${join(D, "folder")}: is a folder, not a file`);
    expect(why(join(D, "file.txt", "below"))).toBe(`mix file not found: ${join(D, "file.txt", "below")}`);
    expect(readInputText(join(D, "file.txt"), "mix file")).toBe("text");
  });
});

describe("through the CLI: 100,000 levels are one line, never a stack trace", () => {
  const olmo = (args: string[]) => {
    const r = Bun.spawnSync([process.execPath, "src/cli/main.ts", ...args], { cwd: root, env: { ...process.env, OLMO_BACKEND: "cpu" } });
    return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };

  test("olmo report: a metrics line nested 100,000 levels deep", () => {
    const run = join(D, "run");
    mkdirSync(run);
    writeFileSync(join(run, "metrics.jsonl"), [JSON.stringify({ step: 1, loss: 2 }), `{"step":2,"x":${deep(100_000)}}`, JSON.stringify({ step: 3, loss: 1 }), ""].join("\n"));
    const r = olmo(["report", run, "--out", join(D, "report.html")]);
    // the line is refused (exit 2) or skipped with a warning (exit 0): either way one line, no RangeError
    expect(r.stderr).not.toMatch(/RangeError|Maximum call stack|^\s+at /m);
    expect(r.stderr.trim().split("\n").length).toBeLessThanOrEqual(1);
    expect([0, 2]).toContain(r.code);
  });

  test("olmo report: a run's config.json nested 100,000 levels deep", () => {
    const run = join(D, "run2");
    mkdirSync(run);
    writeFileSync(join(run, "metrics.jsonl"), `${JSON.stringify({ step: 1, loss: 2 })}\n`);
    writeFileSync(join(run, "config.json"), `{"name":"x","extra":${deep(100_000)}}`);
    const r = olmo(["report", run, "--out", join(D, "report2.html")]);
    expect({ code: r.code, lines: r.stderr.trim().split("\n").length }).toEqual({ code: 2, lines: 1 });
    expect(r.stderr).toMatch(/run2\/config\.json"? is not valid JSON/);
  });

  test("olmo train: an override nested 50,000 levels deep (an argument is at most 128 KiB) is refused in one short line", () => {
    const r = olmo(["train", "--run-dir", join(D, "runs", "deep"), "--quiet", `--train.steps=${deep(50_000)}`]);
    expect({ code: r.code, lines: r.stderr.trim().split("\n").length }).toEqual({ code: 2, lines: 1 });
    expect(r.stderr).toMatch(/--train\.steps=\[{60}… \(100000 characters\) on the command line is not valid JSON \(nested deeper than 512 levels\)/);
    expect(r.stderr.length).toBeLessThan(300);
  });
});
