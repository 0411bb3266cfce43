// The ONLY module that imports bun:ffi. It knows the symbol table of cuda/include/olmo.h, loads
// libolmo_cpu.so or libolmo_cuda.so, checks the ABI version and turns a nonzero status into an
// Error carrying olmo_last_error().
import { dlopen, FFIType, ptr, CString, toArrayBuffer, type Pointer } from "bun:ffi";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { dependencyAdvice, dependencyProblem } from "./system-libs.ts";

const { i32, i64_fast, f32, ptr: P, cstring, void: VOID } = FFIType;

export const ABI_VERSION = 4;
export const DTYPE_F32 = 0;
export const DTYPE_BF16 = 1;

const symbols = {
  olmo_abi_version: { args: [], returns: i32 },
  olmo_last_error: { args: [], returns: cstring },
  olmo_init: { args: [i32], returns: i32 },
  olmo_device_count: { args: [P], returns: i32 },
  olmo_device_name: { args: [P, i64_fast], returns: i32 },
  olmo_device_memory: { args: [P, P], returns: i32 },
  olmo_host_register: { args: [P, i64_fast], returns: i32 },
  olmo_host_unregister: { args: [P], returns: i32 },
  olmo_act_dtype: { args: [], returns: i32 },
  olmo_set_num_threads: { args: [i32], returns: i32 },
  olmo_synchronize: { args: [], returns: i32 },
  olmo_alloc: { args: [P, i64_fast], returns: i32 },
  olmo_free: { args: [P], returns: i32 },
  olmo_memcpy_h2d: { args: [P, P, i64_fast], returns: i32 },
  olmo_memcpy_d2h: { args: [P, P, i64_fast], returns: i32 },
  olmo_memcpy_d2d: { args: [P, P, i64_fast], returns: i32 },
  olmo_memset: { args: [P, i32, i64_fast], returns: i32 },
  olmo_fill_f32: { args: [P, f32, i64_fast], returns: i32 },
  olmo_cast_f32_to_act: { args: [P, P, i64_fast], returns: i32 },
  olmo_cast_act_to_f32: { args: [P, P, i64_fast], returns: i32 },
  olmo_add: { args: [P, P, P, i64_fast], returns: i32 },
  olmo_scale_f32: { args: [P, f32, i64_fast], returns: i32 },
  olmo_embedding_forward: { args: [P, P, P, i64_fast, i64_fast, i64_fast], returns: i32 },
  olmo_embedding_backward: { args: [P, P, P, i64_fast, i64_fast, i64_fast], returns: i32 },
  olmo_rmsnorm_forward: { args: [P, P, P, P, i64_fast, i64_fast, f32], returns: i32 },
  olmo_rmsnorm_backward: { args: [P, P, P, P, P, P, i64_fast, i64_fast], returns: i32 },
  olmo_rope_forward: { args: [P, P, P, P, i64_fast, i64_fast, i64_fast, i64_fast], returns: i32 },
  olmo_rope_backward: { args: [P, P, P, P, i64_fast, i64_fast, i64_fast, i64_fast], returns: i32 },
  olmo_attention_forward: { args: [P, P, P, P, P, i64_fast, i64_fast, i64_fast, i64_fast, i64_fast], returns: i32 },
  olmo_attention_backward: {
    args: [P, P, P, P, P, P, P, P, P, i64_fast, i64_fast, i64_fast, i64_fast, i64_fast], returns: i32,
  },
  olmo_attention_decode: { args: [P, P, P, P, i64_fast, i64_fast, i64_fast, i64_fast, i64_fast, i64_fast], returns: i32 },
  olmo_swiglu_forward: { args: [P, P, i64_fast, i64_fast], returns: i32 },
  olmo_swiglu_backward: { args: [P, P, P, i64_fast, i64_fast], returns: i32 },
  olmo_matmul: { args: [P, P, P, i64_fast, i64_fast, i64_fast, i32, i32, f32], returns: i32 },
  olmo_matmul_f32: { args: [P, P, P, i64_fast, i64_fast, i64_fast, i32, i32, f32], returns: i32 },
  olmo_cross_entropy: { args: [P, P, P, P, i64_fast, i64_fast, f32, f32], returns: i32 },
  olmo_row_sumsq: { args: [P, P, i64_fast, i64_fast], returns: i32 },
  olmo_rmsnorm_apply: { args: [P, P, P, P, P, i64_fast, i64_fast, i64_fast, f32], returns: i32 },
  olmo_rmsnorm_bwd_dot: { args: [P, P, P, P, P, i64_fast, i64_fast], returns: i32 },
  olmo_rmsnorm_bwd_finish: { args: [P, P, P, P, P, P, P, i64_fast, i64_fast, i64_fast], returns: i32 },
  olmo_ce_stats: { args: [P, P, P, P, P, i64_fast, i64_fast, i64_fast, i64_fast], returns: i32 },
  olmo_ce_finish: { args: [P, P, P, P, P, P, i64_fast, i64_fast, i64_fast, i64_fast, f32, f32], returns: i32 },
  olmo_embedding_forward_range: { args: [P, P, P, i64_fast, i64_fast, i64_fast, i64_fast, i64_fast], returns: i32 },
  olmo_embedding_backward_range: { args: [P, P, P, i64_fast, i64_fast, i64_fast, i64_fast, i64_fast], returns: i32 },
  olmo_norm_squared: { args: [P, P, i64_fast, i32], returns: i32 },
  olmo_adamw: {
    args: [P, P, P, P, P, i64_fast, f32, f32, f32, f32, f32, f32, f32, f32], returns: i32,
  },
  olmo_event_create: { args: [P], returns: i32 },
  olmo_event_destroy: { args: [P], returns: i32 },
  olmo_event_record: { args: [P], returns: i32 },
  olmo_event_elapsed_ms: { args: [P, P, P], returns: i32 },
  olmo_comm_unique_id: { args: [P], returns: i32 },
  olmo_comm_init: { args: [P, P, i32, i32], returns: i32 },
  olmo_comm_destroy: { args: [P], returns: i32 },
  olmo_comm_all_reduce: { args: [P, P, P, i64_fast, i32, i32], returns: i32 },
  olmo_comm_all_gather: { args: [P, P, P, i64_fast, i32], returns: i32 },
  olmo_comm_reduce_scatter: { args: [P, P, P, i64_fast, i32, i32], returns: i32 },
  olmo_comm_broadcast: { args: [P, P, i64_fast, i32, i32], returns: i32 },
  olmo_stop_signals_install: { args: [P, i32, P, P], returns: i32 },
  olmo_stop_signals_release: { args: [], returns: i32 },
} as const;

export type NativeSymbols = ReturnType<typeof dlopen<typeof symbols>>["symbols"];
export type LibraryKind = "cpu" | "cuda";

/** Raised when a native call returns a nonzero status. */
export class NativeError extends Error {
  constructor(readonly fn: string, readonly status: number, detail: string) {
    super(`${fn} failed (status ${status}): ${detail}`);
    this.name = "NativeError";
  }
}

/** Raised when the native library cannot be found or loaded: a setup problem, not a bug. */
export class NativeLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NativeLoadError";
  }
}

export interface NativeLibrary {
  kind: LibraryKind;
  path: string;
  sym: NativeSymbols;
  /** Throw NativeError(fn, status, olmo_last_error()) when status != 0. */
  check(fn: string, status: number): void;
  lastError(): string;
  close(): void;
}

const repoRoot = resolve(import.meta.dir, "../..");

/** Libraries embedded in a compiled `olmo` binary (src/cli/compiled-main.ts registers them). */
const embedded = new Map<LibraryKind, string>();
export function registerEmbeddedLibrary(kind: LibraryKind, path: string): void {
  embedded.set(kind, path);
}

/** Where each library is looked for: $OLMO_NATIVE_DIR, the copy embedded in a compiled binary, <repo>/build, next to the binary. */
export function librarySearchPaths(kind: LibraryKind): string[] {
  const file = `libolmo_${kind}.so`;
  const dirs = [process.env.OLMO_NATIVE_DIR, join(repoRoot, "build"), join(process.execPath, "..")];
  const paths = dirs.filter((d): d is string => !!d).map((d) => join(d, file));
  const e = embedded.get(kind);
  if (e) paths.splice(process.env.OLMO_NATIVE_DIR ? 1 : 0, 0, e);
  return paths;
}

const loaded = new Map<string, NativeLibrary>();

/** Load (once per path) one of the two native libraries. */
export function loadNative(kind: LibraryKind, explicitPath?: string): NativeLibrary {
  const candidates = explicitPath ? [explicitPath] : librarySearchPaths(kind);
  const path = candidates.find((p) => existsSync(p));
  if (!path) {
    throw new NativeLoadError(
      `libolmo_${kind}.so not found (searched: ${candidates.join(", ")}); build it with: bun run build:native`,
    );
  }
  const cached = loaded.get(path);
  if (cached) return cached;
  let lib: ReturnType<typeof dlopen<typeof symbols>>;
  try {
    lib = dlopen(path, symbols);
  } catch (e) {
    const msg = (e as Error).message;
    // a system library it links against is missing or broken: a package to install, not a rebuild
    const dep = dependencyProblem(msg, path);
    if (dep) throw new NativeLoadError(`cannot load libolmo_${kind}.so (${path}): ${dependencyAdvice(dep)}`);
    throw new NativeLoadError(`cannot load ${path}: ${msg}; rebuild with: bun run build:native`);
  }
  const sym = lib.symbols;
  const version = sym.olmo_abi_version();
  if (version !== ABI_VERSION) {
    lib.close();
    throw new NativeLoadError(`${path} has ABI version ${version}, expected ${ABI_VERSION}; rebuild with: bun run build:native`);
  }
  const lastError = () => String(sym.olmo_last_error());
  const native: NativeLibrary = {
    kind,
    path,
    sym,
    lastError,
    check(fn, status) {
      if (status !== 0) throw new NativeError(fn, status, lastError());
    },
    close() {
      loaded.delete(path);
      lib.close();
    },
  };
  loaded.set(path, native);
  return native;
}

/** Read a NUL-terminated string the library wrote into a host buffer. */
export function readCString(buf: Uint8Array): string {
  return new CString(ptr(buf) as Pointer).toString();
}

/** Host address of a typed array (valid while the array is alive and not resized). */
export function hostPtr(a: ArrayBufferView): number {
  return ptr(a as Uint8Array) as unknown as number;
}

/**
 * A zero-copy ArrayBuffer over `bytes` bytes of host memory at `p` (the CPU library's "device"
 * memory is host memory). The library keeps ownership: the buffer gets an explicit no-op
 * deallocator (olmo_abi_version, which ignores its arguments), so the GC never frees memory it does
 * not own (a buffer from toArrayBuffer without one is freed by the GC with the ArrayBuffer); so never close() a library whose views may still be
 * collected. The view dangles once `p` is freed: use it briefly.
 */
export function hostView(lib: NativeLibrary, p: number, bytes: number): ArrayBuffer {
  if (lib.kind !== "cpu") throw new Error(`hostView: ${lib.kind} library pointers are not host memory`);
  if (!p) throw new Error("hostView: null pointer");
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new Error(`hostView: bad byte count ${bytes}`);
  if (bytes === 0) return new ArrayBuffer(0);
  const noop = (lib.sym.olmo_abi_version as unknown as { ptr: number }).ptr;
  return (toArrayBuffer as unknown as (p: Pointer, off: number, len: number, ctx: undefined, dealloc: number) => ArrayBuffer)(
    p as unknown as Pointer, 0, bytes, undefined, noop);
}
