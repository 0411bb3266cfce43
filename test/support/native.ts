// Test access to the native libraries through the real FFI path: build once per process, open a
// Backend by name, and move typed arrays to and from "device" buffers in the backend's act dtype.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { Backend, BackendName, DevPtr } from "../../src/backend/backend.ts";
import { NativeBackend, cudaUsable } from "../../src/backend/native-backend.ts";
import { librarySearchPaths, loadNative } from "../../src/native/lib.ts";
import { fromBf16Array, roundBf16Array, toBf16Array } from "./bf16.ts";
import { ensureNativeBuilt } from "./build.ts";

const root = resolve(import.meta.dir, "../..");

/**
 * true when the CUDA backend can run here, else the reason. The CUDA library is built only where a
 * GPU is present (nvcc compiles for minutes and proves nothing without one).
 */
export function cudaStatus(): true | string {
  const haveLib = librarySearchPaths("cuda").some((p) => existsSync(p));
  if (!haveLib && existsSync("/dev/nvidia0")) {
    try {
      ensureNativeBuilt("cuda");
    } catch (e) {
      return (e as Error).message.split("\n")[0];
    }
  }
  const usable = cudaUsable();
  return typeof usable === "number" ? true : usable;
}

const backends = new Map<BackendName, Backend>();

/** The backend for `name`, created once; the CPU library is built first if needed. */
export function openBackend(name: BackendName): Backend {
  let be = backends.get(name);
  if (!be) {
    if (name === "cpu") ensureNativeBuilt("cpu");
    be = new NativeBackend(loadNative(name));
    backends.set(name, be);
  }
  return be;
}

/** The loaded CPU library itself (for thread-count control in determinism tests). */
export function cpuLibrary() {
  ensureNativeBuilt("cpu");
  return loadNative("cpu");
}

/** Host staging view of n elements whose ArrayBuffer is >= 1 KiB (small arrays may move under the JIT). */
export function staging<T extends Float32Array | Uint16Array | Int32Array>(
  ctor: { new (buf: ArrayBuffer, off: number, n: number): T; BYTES_PER_ELEMENT: number }, n: number): T {
  return new ctor(new ArrayBuffer(Math.max(1024, n * ctor.BYTES_PER_ELEMENT)), 0, n);
}

/** Values as the backend's act dtype stores them (bf16-rounded on CUDA, unchanged on CPU). */
export function asAct(be: Backend, x: ArrayLike<number>): Float32Array {
  return be.actDtype === "bf16" ? roundBf16Array(x) : Float32Array.from(x);
}

/** Device buffers of one test: upload/download helpers and one free() at the end. */
export class Buffers {
  private ptrs: DevPtr[] = [];
  constructor(readonly be: Backend) {}

  private allocBytes(bytes: number): DevPtr {
    const p = this.be.alloc(bytes);
    this.ptrs.push(p);
    return p;
  }
  /** act tensor from float values (rounded to bf16 when act is bf16) */
  act(x: ArrayLike<number>): DevPtr {
    const p = this.allocBytes(x.length * this.be.actBytes);
    if (this.be.actDtype === "bf16") this.be.upload(p, toBf16Array(x, staging(Uint16Array, x.length)));
    else { const s = staging(Float32Array, x.length); s.set(x); this.be.upload(p, s); }
    return p;
  }
  f32(x: ArrayLike<number>): DevPtr {
    const p = this.allocBytes(x.length * 4);
    const s = staging(Float32Array, x.length);
    s.set(x);
    this.be.upload(p, s);
    return p;
  }
  i32(x: ArrayLike<number>): DevPtr {
    const p = this.allocBytes(x.length * 4);
    const s = staging(Int32Array, x.length);
    s.set(x);
    this.be.upload(p, s);
    return p;
  }
  /** act / f32 output buffers filled with NaN, so unwritten elements are caught */
  nanAct(n: number): DevPtr { return this.act(new Float32Array(n).fill(NaN)); }
  nanF32(n: number): DevPtr { return this.f32(new Float32Array(n).fill(NaN)); }

  readAct(p: DevPtr, n: number): Float32Array {
    this.be.synchronize();
    if (this.be.actDtype === "bf16") {
      const s = staging(Uint16Array, n);
      this.be.download(s, p);
      return fromBf16Array(s);
    }
    const s = staging(Float32Array, n);
    this.be.download(s, p);
    return Float32Array.from(s);
  }
  readF32(p: DevPtr, n: number): Float32Array {
    this.be.synchronize();
    const s = staging(Float32Array, n);
    this.be.download(s, p);
    return Float32Array.from(s);
  }
  free(): void {
    for (const p of this.ptrs) this.be.free(p);
    this.ptrs = [];
  }
}

/** Run fn with a fresh Buffers on `be`, freeing everything afterwards (also on failure). */
export function withBuffers<T>(be: Backend, fn: (b: Buffers) => T): T {
  const b = new Buffers(be);
  try {
    return fn(b);
  } finally {
    b.free();
  }
}

