// Temp token files for the data tests: token k of file f is (f·1000 + k) mod 50000, so any token
// tells which file and offset it came from.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function tempDir(prefix = "olmo-data-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeTokens(dir: string, name: string, tokens: ArrayLike<number>, dtype: "uint16" | "uint32" = "uint32"): string {
  const p = join(dir, name);
  writeFileSync(p, dtype === "uint32" ? Uint32Array.from(tokens) : Uint16Array.from(tokens));
  return p;
}

export function patterned(f: number, n: number): Uint32Array {
  const a = new Uint32Array(n);
  for (let k = 0; k < n; k++) a[k] = (f * 1000 + k) % 50000;
  return a;
}
