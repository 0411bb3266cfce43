// A reader of TensorBoard event files written from the format's specification alone, sharing no
// code with the writer (src/metrics/tensorboard.ts), so a test of one by the other means something:
//  - TFRecord framing (tensorflow/core/lib/io/record_reader.cc): uint64 LE length, uint32 masked
//    CRC-32C of those 8 bytes, the data, uint32 masked CRC-32C of the data; mask(c) =
//    rotate-right-15(c) + 0xa282ead8 (tensorflow/core/lib/hash/crc32c.h);
//  - CRC-32C (Castagnoli, RFC 3720 appendix B.4): reflected polynomial 0x82f63b78, init and final
//    xor 0xffffffff — computed here bit by bit, no table;
//  - protobuf wire format (varint, fixed64, length-delimited, fixed32), decoding Event
//    (event.proto: 1 wall_time double, 2 step int64, 3 file_version string, 5 summary,
//    7 session_log: SessionLog 1 status, START = 1) and Summary.Value (summary.proto: 1 tag string,
//    2 simple_value float, 9 metadata: SummaryMetadata 1 plugin_data: PluginData 1 plugin_name,
//    8 tensor: TensorProto (tensor.proto) 1 dtype, 8 string_val); unknown fields skipped.

export function crc32cBitwise(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

const mask = (c: number) => (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;

export interface TfEvent {
  wallTime?: number;
  step: number;
  fileVersion?: string;
  /** SessionLog status (1 = START) */
  sessionStatus?: number;
  scalars: { tag: string; value: number }[];
  /** string tensors: the plugin named in their metadata and their strings */
  texts: { tag: string; plugin: string; dtype: number; strings: string[] }[];
}

/** Fields of one protobuf message: [field number, wire type, value (number | bigint | bytes)]. */
function fields(buf: Uint8Array): [number, number, number | bigint | Uint8Array][] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: [number, number, number | bigint | Uint8Array][] = [];
  let i = 0;
  const varint = (): bigint => {
    let x = 0n, shift = 0n;
    for (;;) {
      if (i >= buf.length) throw new Error("protobuf: varint runs past the end");
      const b = buf[i++];
      x |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return x;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const field = key >>> 3, wire = key & 7;
    if (wire === 0) out.push([field, wire, varint()]);
    else if (wire === 1) {
      out.push([field, wire, dv.getFloat64(i, true)]);
      i += 8;
    } else if (wire === 2) {
      const n = Number(varint());
      if (i + n > buf.length) throw new Error("protobuf: length-delimited field runs past the end");
      out.push([field, wire, buf.subarray(i, i + n)]);
      i += n;
    } else if (wire === 5) {
      out.push([field, wire, dv.getFloat32(i, true)]);
      i += 4;
    } else throw new Error(`protobuf: wire type ${wire} not expected in an Event`);
  }
  return out;
}

export function decodeEvent(data: Uint8Array): TfEvent {
  const ev: TfEvent = { step: 0, scalars: [], texts: [] };
  const utf8 = (b: unknown) => new TextDecoder().decode(b as Uint8Array);
  for (const [f, w, v] of fields(data)) {
    if (f === 1 && w === 1) ev.wallTime = v as number;
    else if (f === 2 && w === 0) ev.step = Number(BigInt.asIntN(64, v as bigint));
    else if (f === 3 && w === 2) ev.fileVersion = utf8(v);
    else if (f === 7 && w === 2) {
      for (const [lf, lw, lv] of fields(v as Uint8Array)) if (lf === 1 && lw === 0) ev.sessionStatus = Number(lv);
    } else if (f === 5 && w === 2) {
      for (const [sf, sw, sv] of fields(v as Uint8Array)) {
        if (sf !== 1 || sw !== 2) continue;
        let tag = "", value = NaN, tensor: Uint8Array | null = null, plugin = "";
        for (const [vf, vw, vv] of fields(sv as Uint8Array)) {
          if (vf === 1 && vw === 2) tag = utf8(vv);
          else if (vf === 2 && vw === 5) value = vv as number;
          else if (vf === 8 && vw === 2) tensor = vv as Uint8Array;
          else if (vf === 9 && vw === 2) {
            for (const [mf, mw, mv] of fields(vv as Uint8Array)) {
              if (mf !== 1 || mw !== 2) continue;
              for (const [pf, pw, pv] of fields(mv as Uint8Array)) if (pf === 1 && pw === 2) plugin = utf8(pv);
            }
          }
        }
        if (tensor) {
          let dtype = 0;
          const strings: string[] = [];
          for (const [tf, tw, tv] of fields(tensor)) {
            if (tf === 1 && tw === 0) dtype = Number(tv);
            else if (tf === 8 && tw === 2) strings.push(utf8(tv));
          }
          ev.texts.push({ tag, plugin, dtype, strings });
        } else ev.scalars.push({ tag, value });
      }
    }
  }
  return ev;
}

/** Every record of an event file, both CRCs checked; throws naming the record that fails. */
export function readEventFile(bytes: Uint8Array): TfEvent[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: TfEvent[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + 12 > bytes.length) throw new Error(`record ${out.length}: truncated header`);
    const len = Number(dv.getBigUint64(at, true));
    if (mask(crc32cBitwise(bytes.subarray(at, at + 8))) !== dv.getUint32(at + 8, true)) throw new Error(`record ${out.length}: length CRC mismatch`);
    const data = bytes.subarray(at + 12, at + 12 + len);
    if (data.length !== len || at + 16 + len > bytes.length) throw new Error(`record ${out.length}: truncated data`);
    if (mask(crc32cBitwise(data)) !== dv.getUint32(at + 12 + len, true)) throw new Error(`record ${out.length}: data CRC mismatch`);
    out.push(decodeEvent(data));
    at += 16 + len;
  }
  return out;
}
