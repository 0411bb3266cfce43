// One history in a run folder's TensorBoard event files: when a run starts again after step S, what
// earlier attempts wrote past S (steps that will be trained again, or never were saved) is cut from
// their files before the new attempt writes its own. Every reader then sees one consistent history,
// not only TensorBoard while it watches (SessionLog START, tensorboard.ts): TensorBoard started
// later, `wandb sync`, Comet's importers, our tests' reader.
//
// A file is written by one attempt in step order (its file-version event first, at step 0), so what
// is past S is its tail: the file is cut at its first event past S, or at its first record that is
// incomplete (a crash or a full disk while appending). The cut is one ftruncate, atomic: a crash
// leaves the file either whole or cut, never half-written.
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readdirSync, readSync } from "node:fs";
import { join } from "node:path";
import { EVENT_FILE_PREFIX, maskedCrc32c } from "./tensorboard-format.ts";

export interface CutFile {
  file: string;
  droppedEvents: number;
}

const CHUNK_BYTES = 8 << 20;

/** Cut every event file in `dir` after its last event at or before `afterStep`; returns the files cut. */
export function cutEventFiles(dir: string, afterStep: number): CutFile[] {
  const out: CutFile[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (!name.startsWith(EVENT_FILE_PREFIX)) continue;
    const file = join(dir, name);
    const fd = openSync(file, "r+");
    try {
      const { keepBytes, droppedEvents, size } = scan(fd, afterStep);
      if (keepBytes === size) continue;
      ftruncateSync(fd, keepBytes);
      fsyncSync(fd);
      out.push({ file, droppedEvents });
    } finally {
      closeSync(fd);
    }
  }
  return out;
}

/** Where the file's history past `afterStep` (or its first incomplete record) starts. */
function scan(fd: number, afterStep: number): { keepBytes: number; droppedEvents: number; size: number } {
  const size = fstatSync(fd).size;
  const reader = new ChunkReader(fd, size);
  let at = 0, keepBytes = -1, dropped = 0;
  while (at < size) {
    const head = reader.bytes(at, 12);
    const len = head ? Number(new DataView(head.buffer, head.byteOffset, 12).getBigUint64(0, true)) : -1;
    const whole = head !== null && maskedCrc32c(head.subarray(0, 8)) === new DataView(head.buffer, head.byteOffset, 12).getUint32(8, true) && at + 16 + len <= size;
    if (!whole) {
      if (keepBytes < 0) keepBytes = at;
      break;
    }
    const step = eventStep(reader.bytes(at + 12, Math.min(len, 64))!);
    if (step > afterStep) {
      if (keepBytes < 0) keepBytes = at;
      dropped++;
    }
    at += 16 + len;
  }
  return { keepBytes: keepBytes < 0 ? size : keepBytes, droppedEvents: dropped, size };
}

/** The step field (2, varint) of a serialized Event, read from its first bytes; 0 when absent. */
function eventStep(b: Uint8Array): number {
  let i = 0;
  const varint = (): bigint => {
    let x = 0n, shift = 0n;
    while (i < b.length) {
      const c = b[i++];
      x |= BigInt(c & 0x7f) << shift;
      if (!(c & 0x80)) return x;
      shift += 7n;
    }
    return x;
  };
  while (i < b.length) {
    const key = Number(varint());
    const field = key >>> 3, wire = key & 7;
    if (field === 2 && wire === 0) return Number(BigInt.asIntN(64, varint()));
    if (wire === 0) varint();
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else return 0; // the step comes before any length-delimited field in what we write
  }
  return 0;
}

/** Reads byte ranges of a file through one large buffer (a 1M-step event file is ~1 GB). */
class ChunkReader {
  private buf = Buffer.alloc(CHUNK_BYTES);
  private start = 0;
  private end = 0;

  constructor(private readonly fd: number, private readonly size: number) {}

  /** `n` bytes at `pos`, or null past the end of the file */
  bytes(pos: number, n: number): Uint8Array | null {
    if (pos + n > this.size) return null;
    if (pos < this.start || pos + n > this.end) {
      if (n > this.buf.length) this.buf = Buffer.alloc(n);
      this.start = pos;
      this.end = pos + readSync(this.fd, this.buf, 0, Math.min(this.buf.length, this.size - pos), pos);
    }
    return this.buf.subarray(pos - this.start, pos - this.start + n);
  }
}
