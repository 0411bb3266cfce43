// Real TensorBoard for the tests that read our event files with it: a python3 that imports
// tensorboard, named by OLMO_TENSORBOARD_PYTHON or found as python3 on PATH (`pip install
// tensorboard` in a venv, then point OLMO_TENSORBOARD_PYTHON at its python). Where there is none,
// tensorboardStatus() says why and those tests skip with that reason.
let status: true | string | undefined;

export const TENSORBOARD_PYTHON = process.env.OLMO_TENSORBOARD_PYTHON || "python3";

/** true when `TENSORBOARD_PYTHON` imports tensorboard, else why not. */
export function tensorboardStatus(): true | string {
  if (status !== undefined) return status;
  const r = runTensorboardPython(["-c", "import tensorboard; print(tensorboard.__version__)"]);
  status = r.code === 0 ? true : `no python with tensorboard (${TENSORBOARD_PYTHON}: ${(r.err || r.out).trim().split("\n").pop() || `exit ${r.code}`}); set OLMO_TENSORBOARD_PYTHON`;
  return status;
}

export function runTensorboardPython(args: string[]) {
  try {
    const p = Bun.spawnSync([TENSORBOARD_PYTHON, ...args], { stdout: "pipe", stderr: "pipe", timeout: 120_000 });
    return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
  } catch (e) {
    return { code: -1, out: "", err: String(e) };
  }
}
