// Build a native library once per test process if it is missing or stale (cuda/build.ts decides).
import { resolve } from "node:path";

const built = new Set<string>();

export function ensureNativeBuilt(kind: "cpu" | "cuda"): void {
  if (built.has(kind)) return;
  const root = resolve(import.meta.dir, "../..");
  const p = Bun.spawnSync([process.execPath, "cuda/build.ts", kind], { cwd: root, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`native build failed:\n${p.stderr.toString()}${p.stdout.toString()}`);
  built.add(kind);
}
