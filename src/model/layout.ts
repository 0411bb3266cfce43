// Memory planning: list every buffer with its size, then make ONE allocation and carve views.
import type { Backend, DevPtr } from "../backend/backend.ts";

const ALIGN_BYTES = 256;

export class Arena {
  private readonly offsets = new Map<string, number>();
  private sizeBytes = 0;
  base: DevPtr = 0;

  /** reserve `bytes` under `name` (before alloc) */
  reserve(name: string, bytes: number): void {
    if (this.offsets.has(name)) throw new Error(`arena: duplicate buffer ${name}`);
    this.offsets.set(name, this.sizeBytes);
    this.sizeBytes += Math.ceil(Math.max(bytes, 1) / ALIGN_BYTES) * ALIGN_BYTES;
  }

  get bytes(): number {
    return this.sizeBytes;
  }

  alloc(backend: Backend): this {
    this.base = backend.alloc(this.sizeBytes);
    return this;
  }

  ptr(name: string): DevPtr {
    const off = this.offsets.get(name);
    if (off === undefined) throw new Error(`arena: no buffer ${name}`);
    return this.base + off;
  }

  free(backend: Backend): void {
    if (this.base) backend.free(this.base);
    this.base = 0;
  }
}
