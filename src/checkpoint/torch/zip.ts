// The ZIP container of torch.save archives: a reader of the central directory of an archive that
// lies at [base, base + length) of a file (a torch.distributed.checkpoint `.distcp` file holds one
// archive per item back to back, each with offsets relative to its own start), and a writer of
// stored (uncompressed) archives. Layout: PKWARE APPNOTE.TXT 6.3 (local header §4.3.7, central
// directory §4.3.12, end of central directory §4.3.16, ZIP64 §4.3.14/§4.3.15/§4.5.3). PyTorch
// writes every record stored, each record's data aligned to 64 bytes by padding the local header's
// extra field with an "FB" field, and ZIP64 where sizes or offsets need it (pytorch/pytorch
// caffe2/serialize/inline_container.cc at 3834689c: detail::getPadding, kFieldAlignment = 64,
// mz_zip_writer_init_v2(..., MZ_ZIP_FLAG_WRITE_ZIP64)); our writer does the same.
import { UserError } from "../../errors.ts";
import { preadExact, pwriteAll } from "../io.ts";

export interface ZipEntry {
  name: string;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  /** relative to the archive start */
  localHeaderOffset: number;
}

const EOCD_SIG = 0x06054b50, Z64_LOC_SIG = 0x07064b50, Z64_EOCD_SIG = 0x06064b50, CEN_SIG = 0x02014b50, LOC_SIG = 0x04034b50;
const U32_MAX = 0xffffffff;
export const ZIP_ALIGN = 64;

function u64(dv: DataView, at: number): number {
  return dv.getUint32(at + 4, true) * 2 ** 32 + dv.getUint32(at, true);
}

/** The entries of the archive at [base, base + length) of fd. `where` names it in errors. */
export function readZipDirectory(fd: number, base: number, length: number, where: string): Map<string, ZipEntry> {
  const bad = (msg: string): never => {
    throw new UserError(`${where}: not a valid torch.save archive: ${msg}`);
  };
  if (length < 22) bad(`${length} bytes is too short for a ZIP archive`);
  // torch.save writes no archive comment: the record and the ZIP64 locator are in the last 42 bytes,
  // so read those first (a checkpoint has hundreds of thousands of blobs) and the longest tail a
  // comment allows only when they are not there
  let tail = new Uint8Array(0), e = -1;
  for (const want of [22 + 20, 22 + 0xffff + 20]) {
    const tailLen = Math.min(length, want);
    if (tailLen <= tail.length) break;
    tail = new Uint8Array(tailLen);
    preadExact(fd, tail, base + length - tailLen, where, "the ZIP end-of-directory record");
    const dv = new DataView(tail.buffer);
    for (let p = tailLen - 22; p >= 0; p--) {
      if (dv.getUint32(p, true) === EOCD_SIG && p + 22 + dv.getUint16(p + 20, true) === tailLen) {
        e = p;
        break;
      }
    }
    if (e >= 0) break;
  }
  if (e < 0) bad("no end-of-central-directory record (truncated, or not a ZIP file)");
  const tv = new DataView(tail.buffer);
  let count = tv.getUint16(e + 10, true), cdSize = tv.getUint32(e + 12, true), cdOffset = tv.getUint32(e + 16, true);
  if (e >= 20 && tv.getUint32(e - 20, true) === Z64_LOC_SIG) {
    const recAt = u64(tv, e - 20 + 8);
    if (recAt + 56 > length) bad(`the ZIP64 directory record at ${recAt} lies outside the archive`);
    const rec = new Uint8Array(56);
    preadExact(fd, rec, base + recAt, where, "the ZIP64 end-of-directory record");
    const rv = new DataView(rec.buffer);
    if (rv.getUint32(0, true) !== Z64_EOCD_SIG) bad("the ZIP64 locator points at no ZIP64 record");
    count = u64(rv, 32);
    cdSize = u64(rv, 40);
    cdOffset = u64(rv, 48);
  }
  if (cdOffset + cdSize > length) bad(`the central directory (${cdSize} bytes at ${cdOffset}) runs past the archive's ${length} bytes`);
  if (count * 46 > cdSize) bad(`${count} entries cannot fit a ${cdSize}-byte central directory`);
  const cd = new Uint8Array(cdSize);
  preadExact(fd, cd, base + cdOffset, where, "the ZIP central directory");
  const dv = new DataView(cd.buffer);
  const out = new Map<string, ZipEntry>();
  const dec = new TextDecoder();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdSize || dv.getUint32(p, true) !== CEN_SIG) bad(`central directory entry ${i} is damaged`);
    const nameLen = dv.getUint16(p + 28, true), extraLen = dv.getUint16(p + 30, true), commentLen = dv.getUint16(p + 32, true);
    if (p + 46 + nameLen + extraLen + commentLen > cdSize) bad(`central directory entry ${i} runs past the directory`);
    const entry: ZipEntry = {
      name: dec.decode(cd.subarray(p + 46, p + 46 + nameLen)),
      method: dv.getUint16(p + 10, true),
      crc32: dv.getUint32(p + 16, true),
      compressedSize: dv.getUint32(p + 20, true),
      size: dv.getUint32(p + 24, true),
      localHeaderOffset: dv.getUint32(p + 42, true),
    };
    // ZIP64 extended information (id 1): the 64-bit values of the fields stored as 0xFFFFFFFF, in order
    for (let x = p + 46 + nameLen, xe = x + extraLen; x + 4 <= xe; ) {
      const id = dv.getUint16(x, true), sz = dv.getUint16(x + 2, true);
      if (id === 1) {
        let q = x + 4;
        const next = (): number => {
          if (q + 8 > x + 4 + sz) bad(`entry ${entry.name}: short ZIP64 extra field`);
          q += 8;
          return u64(dv, q - 8);
        };
        if (entry.size === U32_MAX) entry.size = next();
        if (entry.compressedSize === U32_MAX) entry.compressedSize = next();
        if (entry.localHeaderOffset === U32_MAX) entry.localHeaderOffset = next();
      }
      x += 4 + sz;
    }
    if (entry.localHeaderOffset + 30 + entry.compressedSize > length) bad(`entry ${entry.name} (${entry.compressedSize} bytes at ${entry.localHeaderOffset}) runs past the archive's ${length} bytes`);
    out.set(entry.name, entry);
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

/** Where an entry's data starts (relative to the archive), from its local header; stored entries only. */
export function zipDataOffset(fd: number, base: number, length: number, e: ZipEntry, where: string): number {
  if (e.method !== 0) throw new UserError(`${where}: record ${e.name} is compressed (method ${e.method}); torch.save stores records uncompressed`);
  const h = new Uint8Array(30);
  preadExact(fd, h, base + e.localHeaderOffset, where, `the local header of ${e.name}`);
  const dv = new DataView(h.buffer);
  if (dv.getUint32(0, true) !== LOC_SIG) throw new UserError(`${where}: not a valid torch.save archive: no local header for ${e.name} at ${e.localHeaderOffset}`);
  const at = e.localHeaderOffset + 30 + dv.getUint16(26, true) + dv.getUint16(28, true);
  if (at + e.size > length) throw new UserError(`${where}: not a valid torch.save archive: record ${e.name} (${e.size} bytes at ${at}) runs past the archive's ${length} bytes`);
  return at;
}

interface Written {
  name: Uint8Array;
  crc32: number;
  size: number;
  offset: number;
}

/** Writes a stored ZIP archive at `base` of fd, records aligned to 64 bytes as torch.save's. */
export class ZipWriter {
  private pos = 0;
  private readonly written: Written[] = [];

  constructor(private readonly fd: number, private readonly base: number) {}

  /** Append a record; `parts` are written back to back (e.g. a pickle, or one tensor's bytes). */
  add(name: string, parts: Uint8Array[]): void {
    const nameBytes = new TextEncoder().encode(name);
    const size = parts.reduce((a, b) => a + b.length, 0);
    let crc = 0;
    for (const b of parts) crc = Bun.hash.crc32(b, crc);
    const z64 = size >= U32_MAX;
    // local header, the ZIP64 sizes when needed, then an "FB" field padding the data to 64 bytes
    const fixed = 30 + nameBytes.length + (z64 ? 20 : 0) + 4;
    const pad = (ZIP_ALIGN - ((this.pos + fixed) % ZIP_ALIGN)) % ZIP_ALIGN;
    const h = new Uint8Array(fixed + pad);
    const dv = new DataView(h.buffer);
    dv.setUint32(0, LOC_SIG, true);
    dv.setUint16(4, z64 ? 45 : 20, true);
    dv.setUint16(12, 0x21, true); // 1980-01-01
    dv.setUint32(14, crc >>> 0, true);
    dv.setUint32(18, z64 ? U32_MAX : size, true);
    dv.setUint32(22, z64 ? U32_MAX : size, true);
    dv.setUint16(26, nameBytes.length, true);
    dv.setUint16(28, h.length - 30 - nameBytes.length, true);
    h.set(nameBytes, 30);
    let x = 30 + nameBytes.length;
    if (z64) {
      dv.setUint16(x, 1, true);
      dv.setUint16(x + 2, 16, true);
      setU64(dv, x + 4, size);
      setU64(dv, x + 12, size);
      x += 20;
    }
    dv.setUint16(x, 0x4246, true); // "FB"
    dv.setUint16(x + 2, pad, true);
    h.fill(0x5a, x + 4); // 'Z', as torch's padding
    this.written.push({ name: nameBytes, crc32: crc >>> 0, size, offset: this.pos });
    this.emit(h);
    for (const b of parts) this.emit(b);
  }

  private emit(b: Uint8Array): void {
    pwriteAll(this.fd, b, this.base + this.pos);
    this.pos += b.length;
  }

  /** Write the central directory and end records; returns the archive's length in bytes. */
  finish(): number {
    const cdStart = this.pos;
    for (const w of this.written) {
      const needSize = w.size >= U32_MAX, needOff = w.offset >= U32_MAX;
      const extra = needSize || needOff ? 4 + (needSize ? 16 : 0) + (needOff ? 8 : 0) : 0;
      const c = new Uint8Array(46 + w.name.length + extra);
      const dv = new DataView(c.buffer);
      dv.setUint32(0, CEN_SIG, true);
      dv.setUint16(4, extra ? 45 : 20, true);
      dv.setUint16(6, extra ? 45 : 20, true);
      dv.setUint16(14, 0x21, true);
      dv.setUint32(16, w.crc32, true);
      dv.setUint32(20, needSize ? U32_MAX : w.size, true);
      dv.setUint32(24, needSize ? U32_MAX : w.size, true);
      dv.setUint16(28, w.name.length, true);
      dv.setUint16(30, extra, true);
      dv.setUint32(42, needOff ? U32_MAX : w.offset, true);
      c.set(w.name, 46);
      if (extra) {
        let x = 46 + w.name.length;
        dv.setUint16(x, 1, true);
        dv.setUint16(x + 2, extra - 4, true);
        x += 4;
        if (needSize) {
          setU64(dv, x, w.size);
          setU64(dv, x + 8, w.size);
          x += 16;
        }
        if (needOff) setU64(dv, x, w.offset);
      }
      this.emit(c);
    }
    const cdSize = this.pos - cdStart, n = this.written.length;
    const z64 = n >= 0xffff || cdStart >= U32_MAX || cdSize >= U32_MAX;
    if (z64) {
      const r = new Uint8Array(56 + 20);
      const dv = new DataView(r.buffer);
      dv.setUint32(0, Z64_EOCD_SIG, true);
      setU64(dv, 4, 44);
      dv.setUint16(12, 45, true);
      dv.setUint16(14, 45, true);
      setU64(dv, 24, n);
      setU64(dv, 32, n);
      setU64(dv, 40, cdSize);
      setU64(dv, 48, cdStart);
      dv.setUint32(56, Z64_LOC_SIG, true);
      setU64(dv, 56 + 8, this.pos);
      dv.setUint32(56 + 16, 1, true);
      this.emit(r);
    }
    const e = new Uint8Array(22);
    const dv = new DataView(e.buffer);
    dv.setUint32(0, EOCD_SIG, true);
    dv.setUint16(8, z64 ? 0xffff : n, true);
    dv.setUint16(10, z64 ? 0xffff : n, true);
    dv.setUint32(12, z64 ? U32_MAX : cdSize, true);
    dv.setUint32(16, z64 ? U32_MAX : cdStart, true);
    this.emit(e);
    return this.pos;
  }
}

function setU64(dv: DataView, at: number, v: number): void {
  dv.setUint32(at, v % 2 ** 32, true);
  dv.setUint32(at + 4, Math.floor(v / 2 ** 32), true);
}
