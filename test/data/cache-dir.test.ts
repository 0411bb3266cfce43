// Where the embedded corpus is cached: OLMO_CACHE, else $XDG_CACHE_HOME/olmo-bun (absolute only, as
// the XDG Base Directory Specification says), else ~/.cache/olmo-bun — never the folder a command runs in.
import { expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { cacheDir } from "../../src/data/cache-dir.ts";

const root = resolve(import.meta.dir, "../..");

test("OLMO_CACHE > $XDG_CACHE_HOME/olmo-bun > $HOME/.cache/olmo-bun", () => {
  expect(cacheDir({ OLMO_CACHE: "/data/cache", XDG_CACHE_HOME: "/x", HOME: "/home/u" })).toBe("/data/cache");
  expect(cacheDir({ XDG_CACHE_HOME: "/x", HOME: "/home/u" })).toBe("/x/olmo-bun");
  expect(cacheDir({ HOME: "/home/u" })).toBe("/home/u/.cache/olmo-bun");
  // an empty or relative XDG_CACHE_HOME is ignored; an empty OLMO_CACHE counts as unset
  expect(cacheDir({ XDG_CACHE_HOME: "", OLMO_CACHE: "", HOME: "/home/u" })).toBe("/home/u/.cache/olmo-bun");
  expect(cacheDir({ XDG_CACHE_HOME: "rel/cache", HOME: "/home/u" })).toBe("/home/u/.cache/olmo-bun");
  expect(cacheDir({ OLMO_CACHE: "rel", HOME: "/home/u" })).toBe(resolve("rel"));
});

test("the CLI run from another folder leaves no cache there; it lands in $HOME/.cache/olmo-bun", () => {
  const dir = mkdtempSync(join(tmpdir(), "olmo-cache-cwd-"));
  try {
    const env: Record<string, string | undefined> = { ...process.env, HOME: join(dir, "home") };
    delete env.OLMO_CACHE;
    delete env.XDG_CACHE_HOME; // (bun keeps its own cache under an empty XDG_CACHE_HOME taken as relative)
    const p = Bun.spawnSync([process.execPath, join(root, "src/cli/main.ts"), "data", "inspect", join(root, "configs/tiny.ts"), "--step", "1"],
      { cwd: dir, env, stdout: "pipe", stderr: "pipe" });
    expect(p.exitCode).toBe(0);
    expect(readdirSync(dir)).toEqual(["home"]);
    expect(readdirSync(join(dir, "home", ".cache", "olmo-bun"))).toContain("brown-cl100k");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
