// Read-only memory maps of files we only read (token files, cached data orders). Bun.mmap opens
// its file read-write whatever the mapping (O_RDWR: EROFS on a read-only mount, EPERM on an
// immutable file, EACCES on a file of another owner), which is exactly how clusters keep their
// datasets; here the file is opened O_RDONLY and mapped PROT_READ | MAP_PRIVATE through libc's
// mmap(2). The mapping is unmapped when its ArrayBuffer is collected: JavaScriptCore calls the
// buffer's deallocator as f(bytes, context), and with munmap as f and the length as context that
// is munmap(bytes, length).
import { FFIType, dlopen, toArrayBuffer, type Pointer } from "bun:ffi";
import { closeSync, fstatSync, openSync } from "node:fs";

const PROT_READ = 1;
const MAP_PRIVATE = 2; // both the same on Linux and macOS

const libcSymbols = {
  mmap: { args: [FFIType.ptr, FFIType.u64_fast, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i64_fast], returns: FFIType.i64_fast },
  munmap: { args: [FFIType.ptr, FFIType.u64_fast], returns: FFIType.i32 },
} as const;

let libc: ReturnType<typeof dlopen<typeof libcSymbols>> | null = null;
const openLibc = () => (libc ??= dlopen(process.platform === "darwin" ? "libSystem.B.dylib" : "libc.so.6", libcSymbols));

/**
 * The whole file at `path` as a read-only byte view (empty for an empty file). Opening errors are
 * the OS's (ENOENT, EACCES, ...), with their code; writing into the view is a fault, never a change
 * of the file.
 */
export function mapFileReadOnly(path: string): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const bytes = fstatSync(fd).size;
    if (bytes === 0) return new Uint8Array(0);
    const { mmap, munmap } = openLibc().symbols;
    const at = Number(mmap(null, bytes, PROT_READ, MAP_PRIVATE, fd, 0));
    if (at === -1 || at === 0) throw Object.assign(new Error(`mmap of ${JSON.stringify(path)} (${bytes} bytes) failed`), { code: "EMMAP", path });
    const unmap = (munmap as unknown as { ptr: number }).ptr;
    const buf = (toArrayBuffer as unknown as (p: Pointer, off: number, len: number, ctx: number, dealloc: number) => ArrayBuffer)(
      at as unknown as Pointer, 0, bytes, bytes, unmap);
    return new Uint8Array(buf);
  } finally {
    closeSync(fd); // a mapping outlives its descriptor
  }
}
