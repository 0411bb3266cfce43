// Find a python3 that can import the given module (the PyTorch anchor). Debian's python3-torch
// lives under /usr/bin/python3, which a pyenv shim earlier on PATH may hide.
export function findPython(module: string): string | null {
  const candidates = [process.env.OLMO_PYTHON, "python3", "/usr/bin/python3"].filter((c): c is string => !!c);
  for (const py of candidates) {
    const p = Bun.spawnSync([py, "-c", `import ${module}`], { stdout: "ignore", stderr: "ignore" });
    if (p.exitCode === 0) return py;
  }
  return null;
}
