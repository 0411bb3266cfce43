// Run a command on this machine as if some system libraries were not installed: in a private mount
// namespace, the library folder is overlaid with whiteouts of those files (an overlayfs "deleted"
// entry, a 0:0 character device), so the real dynamic loader really finds nothing — no edited
// binary, no fake loader. Needs root (unshare -m, mount); returns a reason to skip otherwise.
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DEBIAN_PACKAGE_OF } from "../../src/native/system-libs.ts";

const LIB_DIR = "/usr/lib/x86_64-linux-gnu";

/** null when hiding works here, else why not */
export function hidingUnavailable(): string | null {
  if (process.getuid?.() !== 0) return "needs root (unshare -m and an overlay mount)";
  const p = Bun.spawnSync(["unshare", "-m", "sh", "-c", `mount -t tmpfs tmpfs ${tmpdir()}`], { stderr: "pipe" });
  return p.exitCode === 0 ? null : `unshare -m / mount not permitted here: ${p.stderr.toString().trim()}`;
}

/** Run `cmd` with every file of LIB_DIR named `<soname>` or `<soname>.*` hidden. */
export function runWithoutLibraries(sonames: string[], cmd: string[], opts: { cwd?: string; env?: Record<string, string | undefined> } = {}) {
  const d = mkdtempSync(join(tmpdir(), "olmo-hide-"));
  try {
    mkdirSync(join(d, "upper"));
    mkdirSync(join(d, "work"));
    const hidden = readdirSync(LIB_DIR).filter((f) => sonames.some((s) => f === s || f.startsWith(`${s}.`)));
    // the tools by their full paths: the command's own environment may have no PATH to them
    const tool = (name: string) => Bun.which(name) ?? name;
    const script = [
      ...hidden.map((f) => `${tool("mknod")} ${join(d, "upper", f)} c 0 0`),
      `${tool("mount")} -t overlay overlay -o lowerdir=${LIB_DIR},upperdir=${join(d, "upper")},workdir=${join(d, "work")} ${LIB_DIR}`,
      `exec "$@"`,
    ].join(" && ");
    const p = Bun.spawnSync([tool("unshare"), "-m", tool("sh"), "-c", script, "sh", ...cmd], { cwd: opts.cwd, env: opts.env as Record<string, string>, stdout: "pipe", stderr: "pipe" });
    return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString(), hidden };
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}

/**
 * The system libraries a user may lack that the built CPU library loads: its GEMM library (oneDNN's
 * libdnnl.so.2 or OpenBLAS' libopenblas.so.0, whichever the build linked: cuda/build.ts) and OpenMP,
 * each with the Debian package that the one-line error names (src/native/system-libs.ts).
 */
export function cpuLibraryNeeds(lib = resolve(import.meta.dir, "../../build/libolmo_cpu.so")): { soname: string; pkg: string }[] {
  const ldd = Bun.spawnSync(["ldd", lib], { stdout: "pipe", stderr: "pipe" }).stdout.toString();
  return ["libdnnl.so.2", "libopenblas.so.0", "libgomp.so.1"].filter((s) => ldd.includes(`${s} =>`)).map((soname) => ({ soname, pkg: DEBIAN_PACKAGE_OF[soname] }));
}
