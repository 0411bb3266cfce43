// The CLI as a user meets it: `olmo --help` lists every command, `olmo <cmd> --help` every option
// with its default (train: every config field too), unknown options are errors for every command,
// --a.b=value overrides (and top-level --backend=...) are validated by the schema, --version works.
import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { formatHelp, parseArgs } from "../../src/cli/args.ts";
import { commands } from "../../src/cli/commands.ts";
import { validateConfig } from "../../src/config/load.ts";
import tiny from "../../configs/tiny.ts";

const root = resolve(import.meta.dir, "../..");

async function olmo(...args: string[]) {
  const p = Bun.spawn([process.execPath, "src/cli/main.ts", ...args], { cwd: root, stdout: "pipe", stderr: "pipe", env: { ...process.env, OLMO_BACKEND: "cpu" } });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  return { code: await p.exited, out, err };
}

/** Leaf paths of a config object: ["model.dModel", ...] */
function leaves(o: unknown, prefix = ""): string[] {
  if (!o || typeof o !== "object" || Array.isArray(o)) return [prefix];
  return Object.entries(o).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k));
}

describe("olmo --help / --version", () => {
  test("top-level help lists every command, --version, the environment", async () => {
    const r = await olmo("--help");
    expect(r.code).toBe(0);
    for (const c of commands) expect(r.out).toMatch(new RegExp(`^  ${c.name.replace(" ", " ")}\\s+\\S`, "m"));
    for (const s of ["--version", "OLMO_BACKEND", "OLMO_THREADS", "OLMO_CACHE", "OLMO_NATIVE_DIR", "OLMO_CUDA_LIB_PATH"]) expect(r.out).toContain(s);
  });

  test("--version", async () => {
    const r = await olmo("--version");
    expect(r.code).toBe(0);
    expect(r.out.trim()).toMatch(/^olmo \d+\.\d+\.\d+ \(bun \d+\.\d+\.\d+; from source\)$/);
  });

  test("every command's --help shows its usage and every option with its default", () => {
    for (const c of commands) {
      const h = formatHelp(c);
      expect(h).toStartWith(`usage: olmo ${c.name}`);
      for (const o of c.options) {
        const line = h.split("\n").find((l) => l.startsWith(`  --${o.name}`));
        expect({ cmd: c.name, option: o.name, listed: !!line }).toEqual({ cmd: c.name, option: o.name, listed: true });
        if (o.default !== undefined) expect(line).toContain(`(default: ${o.default})`);
      }
    }
  });

  test("olmo <cmd> --help exits 0 for every command (spawned)", async () => {
    const rs = await Promise.all(commands.map((c) => olmo(...c.name.split(" "), "--help")));
    for (const [i, r] of rs.entries()) expect({ cmd: commands[i].name, code: r.code, usage: r.out.startsWith(`usage: olmo ${commands[i].name}`) }).toEqual({ cmd: commands[i].name, code: 0, usage: true });
  });

  test("train --help lists every config field with the default run's value", async () => {
    const r = await olmo("train", "--help");
    const cfg = validateConfig(tiny, "configs/tiny.ts");
    for (const path of leaves(cfg)) expect(r.out).toMatch(new RegExp(`^  --${path.replace(/\./g, "\\.")}\\s`, "m"));
    expect(r.out).toMatch(/^  --optim\.lr\s+number\s+\(default: 0\.01\)$/m);
    expect(r.out).toMatch(/^  --optim\.schedule\.kind\s+cosine\|linear\|constant\s+\(default: cosine\)$/m);
    expect(r.out).toMatch(/^  --train\.budgetTokens\s+number\s+\(unset\)$/m);
    expect(r.out).toMatch(/^  --backend\s+auto\|cpu\|cuda\s+\(default: auto\)$/m);
  });
});

describe("options are strict", () => {
  test("an unknown option is a UserError for every command", () => {
    for (const c of commands) {
      for (const bad of ["--definitely-not-an-option", "-x"]) {
        let err: Error | null = null;
        try {
          parseArgs(c, [bad]);
        } catch (e) {
          err = e as Error;
        }
        expect({ cmd: c.name, bad, name: err?.name, msg: err?.message.includes(`unknown option ${bad}`) }).toEqual({ cmd: c.name, bad, name: "UserError", msg: true });
      }
    }
  });

  test("only commands with config overrides accept --a.b=value", () => {
    for (const c of commands) {
      if (c.overrides) expect(parseArgs(c, ["--optim.lr=1"]).overrides).toEqual([["optim.lr", "1"]]);
      else expect(() => parseArgs(c, ["--optim.lr=1"])).toThrow(/unknown option --optim\.lr/);
    }
  });

  test("overrides are validated by the schema and name the field; top-level fields need no dot", async () => {
    const rs = await Promise.all([
      olmo("train", "--backend=gpu"),
      olmo("train", "--train.seqLen=2048"),
      olmo("train", "--optim.schedule.kind=step"),
      olmo("train", "--threads=zero"),
      olmo("train", "--data.paths=notjson"),
    ]);
    const want = [/invalid config at backend: .*"auto"\|"cpu"\|"cuda"/, /invalid config at train\.seqLen: seqLen 2048 exceeds model\.maxSeqLen 1024/,
      /invalid config at optim\.schedule\.kind/, /invalid config at threads/, /invalid config at data\.paths/];
    for (const [i, r] of rs.entries()) {
      expect(r.code).toBe(2);
      expect(r.err.trim().split("\n")).toEqual([expect.stringMatching(want[i])]);
    }
  });
});
