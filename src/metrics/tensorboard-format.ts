// The TensorBoard event file format, written by hand (no dependency): the records and the few
// events a run writes (scalars, one text summary, the file version, a session start). From
// TensorFlow's sources:
//  - a file is a sequence of records (tensorflow/core/lib/io/record_writer.cc):
//      uint64 length (little-endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
//    masked(crc) = ((crc >>> 15) | (crc << 17)) + 0xa282ead8 (tensorflow/core/lib/hash/crc32c.h Mask),
//    crc32c the Castagnoli CRC (reflected polynomial 0x82f63b78);
//  - each record's data is a serialized tensorflow.Event (tensorflow/core/util/event.proto):
//      1 wall_time double, 2 step int64, 3 file_version string ("brain.Event:2" in the first),
//      5 summary, 7 session_log (SessionLog: 1 status, START = 1);
//    Summary (tensorflow/core/framework/summary.proto): repeated Value value = 1; Value: 1 tag
//    string, 2 simple_value float (the scalar form TensorBoard's scalar plugin reads), 9 metadata
//    (SummaryMetadata: 1 plugin_data: PluginData 1 plugin_name), 8 tensor (TensorProto
//    tensorflow/core/framework/tensor.proto: 1 dtype, DT_STRING = 7; 2 tensor_shape, empty for a
//    scalar; 8 string_val) — a text summary is a string tensor whose metadata names the "text"
//    plugin (tensorboard/plugins/text/metadata.py create_summary_metadata; its TextPluginData is
//    empty at version 0);
//  - a file is named events.out.tfevents.<unix seconds>.<host>.<pid>.0 (what TensorFlow's
//    EventsWriter and torch's SummaryWriter name theirs).

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC32C_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** Protocol-buffer encoding of the few fields an Event of scalars needs. */
class ProtoWriter {
  private readonly bytes: number[] = [];

  private varint(v: bigint | number): void {
    let x = BigInt(v);
    if (x < 0n) x += 1n << 64n; // int64 negatives: ten-byte two's complement
    while (x >= 0x80n) {
      this.bytes.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.bytes.push(Number(x));
  }
  private key(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }
  double(field: number, v: number): this {
    this.key(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.bytes.push(...b);
    return this;
  }
  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.bytes.push(...b);
    return this;
  }
  int64(field: number, v: number): this {
    this.key(field, 0);
    this.varint(v);
    return this;
  }
  bytesField(field: number, v: Uint8Array): this {
    this.key(field, 2);
    this.varint(v.length);
    this.bytes.push(...v);
    return this;
  }
  string(field: number, s: string): this {
    return this.bytesField(field, new TextEncoder().encode(s));
  }
  message(field: number, m: ProtoWriter): this {
    return this.bytesField(field, m.finish());
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

/** One serialized record (length, its CRC, data, its CRC). */
export function tfRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length + 4);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(data.length), true);
  dv.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  dv.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

export function scalarEvent(step: number, wallTimeS: number, scalars: [tag: string, value: number][]): Uint8Array {
  const summary = new ProtoWriter();
  for (const [tag, value] of scalars) summary.bytesField(1, new ProtoWriter().string(1, tag).float(2, value).finish());
  return new ProtoWriter().double(1, wallTimeS).int64(2, step).bytesField(5, summary.finish()).finish();
}

const DT_STRING = 7;
const SESSION_START = 1;

/** A text summary: a scalar string tensor for TensorBoard's text plugin (markdown). */
export function textEvent(step: number, wallTimeS: number, tag: string, markdown: string): Uint8Array {
  const metadata = new ProtoWriter().message(1, new ProtoWriter().string(1, "text"));
  const tensor = new ProtoWriter().int64(1, DT_STRING).bytesField(2, new Uint8Array(0)).string(8, markdown);
  const value = new ProtoWriter().string(1, tag).message(9, metadata).message(8, tensor);
  return new ProtoWriter().double(1, wallTimeS).int64(2, step).message(5, new ProtoWriter().message(1, value)).finish();
}

export function sessionStartEvent(step: number, wallTimeS: number): Uint8Array {
  return new ProtoWriter().double(1, wallTimeS).int64(2, step).message(7, new ProtoWriter().int64(1, SESSION_START)).finish();
}

export const fileVersionEvent = (wallTimeS: number): Uint8Array => new ProtoWriter().double(1, wallTimeS).int64(2, 0).string(3, "brain.Event:2").finish();

export const EVENT_FILE_PREFIX = "events.out.tfevents.";

