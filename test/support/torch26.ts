// Real PyTorch 2.6 for the interoperability tests (torch.distributed.checkpoint, gloo, torchrun):
// the Debian trixie chroot that .ci/torch26.sh provisions (OLMO_TORCH26_ROOT, default /opt/torch26).
// Inside it, /host is this machine's whole tree, so every path of ours is `/host` + the path, and
// torchrun starts our ranks with `chroot /host bun ...`. Where the chroot is missing (or we are not
// root, which chroot needs), torch26Status() says why and the tests skip with that reason.
import { existsSync } from "node:fs";
import { resolve } from "node:path";

export const TORCH26_ROOT = process.env.OLMO_TORCH26_ROOT || "/opt/torch26";

let status: true | string | undefined;

/** true when real torch 2.6 runs here, else why not (for test.skipIf and its message). */
export function torch26Status(): true | string {
  if (status !== undefined) return status;
  if (!existsSync(`${TORCH26_ROOT}/usr/bin/python3`)) status = `no torch 2.6 chroot at ${TORCH26_ROOT} (bash .ci/torch26.sh provisions it)`;
  else if (process.getuid?.() !== 0) status = "the torch 2.6 chroot needs root (chroot)";
  else if (!existsSync(`${TORCH26_ROOT}/host/proc/self`)) status = `${TORCH26_ROOT}/host is not mounted (rerun bash .ci/torch26.sh after a reboot)`;
  else {
    const r = runTorch26(["-c", "import torch, torch.distributed.checkpoint; print(torch.__version__)"]);
    status = r.code === 0 && r.out.startsWith("2.6") ? true : `torch in ${TORCH26_ROOT} does not start: ${(r.err || r.out).trim().split("\n").pop()}`;
  }
  return status;
}

/** A path of this machine as the chroot sees it. */
export function inChroot(path: string): string {
  return `/host${resolve(path)}`;
}

/** Run python3 (or, with `bin`, another program) inside the chroot; USE_LIBUV=0 (Debian's torch has no libuv). */
export function runTorch26(args: string[], opts: { env?: Record<string, string>; bin?: string; timeoutMs?: number } = {}) {
  const env = { USE_LIBUV: "0", PATH: "/usr/bin:/bin:/usr/sbin:/sbin", HOME: "/root", ...opts.env };
  const p = Bun.spawnSync(["chroot", TORCH26_ROOT, "env", ...Object.entries(env).map(([k, v]) => `${k}=${v}`), opts.bin ?? "python3", ...args],
    { stdout: "pipe", stderr: "pipe", timeout: opts.timeoutMs ?? 300_000 });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}
