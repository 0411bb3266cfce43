// The system libraries our native libraries link against, and the Debian/Ubuntu package of each
// (checked with `dpkg -S` / `apt-cache show` on Debian bookworm), so that a library the loader
// cannot find or read is reported as the package to install, not as a build problem. A compiled
// `olmo` binary carries libolmo_cpu.so but not these: they must be on the machine.
// (libopenblas0 is a metapackage: libopenblas0-pthread, -openmp or -serial provides libopenblas.so.0.)

/** soname → Debian package */
export const DEBIAN_PACKAGE_OF: Readonly<Record<string, string>> = {
  "libopenblas.so.0": "libopenblas0", // the CPU library's BLAS (cblas_sgemm)
  "libgomp.so.1": "libgomp1", // OpenMP of the CPU library (gcc -fopenmp)
  "libdnnl.so.2": "libdnnl2", // oneDNN 2.x (bookworm's onednn): the CPU library's GEMM when built with it
  "libOpenCL.so.1": "ocl-icd-libopencl1", // a dependency of Debian's libdnnl2
  "libstdc++.so.6": "libstdc++6", // the CUDA library (nvcc's host code is C++)
  "libgcc_s.so.1": "libgcc-s1",
  "libm.so.6": "libc6",
  "libc.so.6": "libc6",
};

/** The packages a machine needs to run the CPU library (README's install line says the same). */
export const CPU_RUNTIME_PACKAGES = ["libopenblas0", "libgomp1"];

/**
 * What dlopen's message says about a dependency of `ours` (the libolmo_*.so being loaded): the
 * library it could not find, or found but could not load. null when the message is about `ours` itself.
 */
export function dependencyProblem(dlopenMessage: string, ours: string): { soname: string; path: string; missing: boolean; why: string } | null {
  // glibc: "<file>: cannot open shared object file: No such file or directory", "<file>: file too short", "<file>: invalid ELF header"
  for (const m of dlopenMessage.matchAll(/(?:^|[\s"])([^\s":]+\.so(?:\.\d+)*): ([^:;]+)/g)) {
    const [, path, why] = m;
    if (path === ours || path.endsWith(`/${ours.split("/").at(-1)}`)) continue;
    const soname = path.split("/").at(-1)!;
    return { soname, path, missing: why.startsWith("cannot open shared object file"), why: why.trim() };
  }
  return null;
}

/** One line for a dependency the loader could not find or read: the package to (re)install. */
export function dependencyAdvice(p: { soname: string; path: string; missing: boolean; why: string }): string {
  const pkg = DEBIAN_PACKAGE_OF[p.soname];
  if (p.missing) {
    return `it needs ${p.soname}, which is not installed${pkg ? `: install it with apt-get install ${pkg} (Debian/Ubuntu; elsewhere the package that provides ${p.soname})` : " (install the package that provides it)"}`;
  }
  return `its dependency ${p.path} cannot be loaded (${p.why})${pkg ? `: reinstall it with apt-get install --reinstall ${pkg} (Debian/Ubuntu)` : ""}`;
}
