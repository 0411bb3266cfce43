// A system library the CPU library needs that is not installed (or is damaged) is one line naming
// the Debian package to install — not "rebuild". Run for real: the libraries are hidden from the
// dynamic loader in a private mount namespace (test/support/hide-libs.ts).
import { beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { DEBIAN_PACKAGE_OF, dependencyProblem } from "../../src/native/system-libs.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { cpuLibraryNeeds, hidingUnavailable, runWithoutLibraries } from "../support/hide-libs.ts";

const root = resolve(import.meta.dir, "../..");
const why = hidingUnavailable();
beforeAll(() => ensureNativeBuilt("cpu"));

const train = [process.execPath, "src/cli/main.ts", "train", "--train.steps=1", "--run-dir=/nonexistent/never-written"];

describe("missing system libraries", () => {
  test("every library the CPU library links against (besides glibc's) has its package in the table", () => {
    const needed = Bun.spawnSync(["readelf", "-d", resolve(root, "build/libolmo_cpu.so")]).stdout.toString();
    for (const m of needed.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)) {
      if (m[1].startsWith("ld-linux")) continue;
      expect({ soname: m[1], pkg: DEBIAN_PACKAGE_OF[m[1]] ?? null }).toEqual({ soname: m[1], pkg: expect.any(String) });
    }
  });

  test("dlopen's messages are read for the dependency, never for our own library", () => {
    const ours = "/x/build/libolmo_cpu.so";
    expect(dependencyProblem(`Failed to open library "${ours}": libopenblas.so.0: cannot open shared object file: No such file or directory`, ours))
      .toEqual({ soname: "libopenblas.so.0", path: "libopenblas.so.0", missing: true, why: "cannot open shared object file" });
    expect(dependencyProblem(`Failed to open library "${ours}": ${ours}: invalid ELF header`, ours)).toBeNull();
  });

  const needs = cpuLibraryNeeds();
  test("the built CPU library loads a GEMM library and OpenMP from the system", () => {
    expect(needs.map((n) => n.soname)).toEqual([expect.stringMatching(/^lib(dnnl\.so\.2|openblas\.so\.0)$/), "libgomp.so.1"]);
  });
  for (const { soname, pkg } of needs) {
    test.skipIf(why !== null)(`without ${soname}: one line naming ${pkg}, exit 2`, () => {
      const r = runWithoutLibraries([soname], train, { cwd: root, env: { ...process.env, OLMO_BACKEND: "cpu" } });
      expect(r.hidden.length).toBeGreaterThan(0);
      expect({ code: r.code, err: r.err.trim() }).toEqual({
        code: 2,
        err: `olmo: error: cannot load libolmo_cpu.so (${resolve(root, "build/libolmo_cpu.so")}): it needs ${soname}, which is not installed: ` +
          `install it with apt-get install ${pkg} (Debian/Ubuntu; elsewhere the package that provides ${soname})`,
      });
    }, 60_000);
  }
  if (why) test.skip(`hiding libraries: ${why}`, () => {});
});
