// The pickle subset and the ZIP container, checked against CPython (any python3: pickle and zipfile
// are in its standard library) and against hostile input.
import { describe, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PyDict, PyFloat, PyGlobal, PyObject, PyTuple, type PyValue, unpickle } from "../../../src/checkpoint/torch/pickle-read.ts";
import { pickle } from "../../../src/checkpoint/torch/pickle-write.ts";
import { ZipWriter, readZipDirectory, zipDataOffset } from "../../../src/checkpoint/torch/zip.ts";
import { findPython } from "../../../bench/python.ts";
import { tempDir, userErrorOf } from "../helpers.ts";

const py = findPython("pickle");

/** A JSON view of an unpickled value (tuples and lists alike, dict entries in order). */
function plain(v: PyValue): unknown {
  if (v instanceof PyTuple) return v.items.map(plain);
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof PyDict) return Object.fromEntries(v.entries.map(([k, x]) => [String(plain(k)), plain(x)]));
  if (v instanceof Uint8Array) return { bytes: Array.from(v) };
  if (v instanceof PyGlobal) return { global: v.qualified };
  if (v instanceof PyObject) return { cls: plain(v.cls), args: v.args.map(plain), state: v.state === undefined ? null : plain(v.state) };
  if (typeof v === "bigint") return v.toString();
  if (v instanceof PyFloat) return v.value;
  return v;
}

const SAMPLE_PY = `{"a": 1, "neg": -70000, "big": 2**70, "f": 0.25, "s": "héllo", "b": b"\\x00\\xff", "t": (1, (2, 3), []), "n": None, "yes": True,
  "od": __import__("collections").OrderedDict([("x", 1)]), "dt": __import__("datetime").date(2025, 3, 10), "l": list(range(1500))}`;

describe("pickle", () => {
  test.skipIf(!py)("reads CPython's pickles of protocols 2 to 5, nothing executed (a date is a record)", () => {
    for (const proto of [2, 3, 4, 5]) {
      const out = Bun.spawnSync([py!, "-c", `import pickle,sys; sys.stdout.buffer.write(pickle.dumps(${SAMPLE_PY}, ${proto}))`], { stdout: "pipe" });
      const v = plain(unpickle(new Uint8Array(out.stdout), `proto ${proto}`)) as Record<string, any>;
      expect(v).toMatchObject({ a: 1, neg: -70000, big: (2n ** 70n).toString(), f: 0.25, s: "héllo", b: { bytes: [0, 255] }, t: [1, [2, 3], []], n: null, yes: true, od: { x: 1 } });
      expect(v.l).toEqual(Array.from({ length: 1500 }, (_, i) => i));
      expect(v.dt.cls).toEqual({ global: "datetime.date" });
    }
  });

  test.skipIf(!py)("CPython loads what we write", () => {
    const v = new PyDict([
      ["i", 7], ["big", 2n ** 65n], ["neg", -3], ["f", new PyFloat(1)], ["s", "ü"], ["t", new PyTuple([1, 2, 3, 4])], ["l", Array.from({ length: 1200 }, (_, i) => i)],
      ["none", null], ["b", Uint8Array.of(1, 2, 255)], ["od", new PyObject(new PyGlobal("collections", "OrderedDict"), [], "reduce")],
    ]);
    const f = join(tempDir("pickle"), "x.pkl");
    writeFileSync(f, pickle(v));
    const out = Bun.spawnSync([py!, "-c", `import pickle; d = pickle.load(open("${f}", "rb")); print(repr((d["i"], d["big"], d["neg"], d["f"], d["s"], d["t"], sum(d["l"]), d["none"], d["b"], type(d["od"]).__name__)))`], { stdout: "pipe", stderr: "pipe" });
    expect(out.stderr.toString()).toBe("");
    expect(out.stdout.toString().trim()).toBe(`(7, ${2n ** 65n}, -3, 1.0, 'ü', (1, 2, 3, 4), 719400, None, b'\\x01\\x02\\xff', 'OrderedDict')`);
  });

  test("refuses text opcodes, extensions and out-of-band buffers; bounds every length by the input", () => {
    expect(userErrorOf(() => unpickle(new TextEncoder().encode("I1\n."), "x"))).toMatch(/opcode 0x49 \('I'\) at offset 0 is outside the supported subset/);
    expect(userErrorOf(() => unpickle(Uint8Array.of(0x80, 4, 0x82, 1, 0x2e), "x"))).toMatch(/opcode 0x82 at offset 2/); // EXT1
    expect(userErrorOf(() => unpickle(Uint8Array.of(0x80, 5, 0x97, 0x2e), "x"))).toMatch(/opcode 0x97/); // NEXT_BUFFER
    expect(userErrorOf(() => unpickle(Uint8Array.of(0x80, 4, 0x8e, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x2e), "x"))).toMatch(/BINBYTES8 of 4\.6\d+e\+18 bytes|runs past the end/);
    expect(userErrorOf(() => unpickle(Uint8Array.of(0x80, 2, 0x5d, 0x68, 9, 0x2e), "x"))).toMatch(/memo entry 9 read before it was written/);
    expect(userErrorOf(() => unpickle(Uint8Array.of(0x80, 2, 0x5d), "x"))).toMatch(/no STOP/);
    expect(userErrorOf(() => unpickle(Uint8Array.of(0x80, 9, 0x2e), "x"))).toMatch(/protocol 9/);
  });

  test("a few bytes of opcodes cannot build more than the file holds (memoized values encoded or copied again)", () => {
    const enc = new TextEncoder(), u32 = (n: number) => [n & 255, (n >> 8) & 255, (n >> 16) & 255, n >>> 24];
    // _codecs.encode(<a 100k-char string>, "latin1") reduced again and again from the memo: 6 bytes per copy
    const big = [0x80, 2, 0x63, ...enc.encode("_codecs\nencode\n"), 0x71, 0, 0x58, ...u32(100_000), ...new Uint8Array(100_000).fill(97),
      0x58, ...u32(6), ...enc.encode("latin1"), 0x86, 0x71, 1];
    for (let i = 0; i < 100; i++) big.push(0x68, 0, 0x68, 1, 0x52, 0x30);
    big.push(0x4e, 0x2e);
    expect(userErrorOf(() => unpickle(Uint8Array.from(big), "x"))).toMatch(/REDUCE _codecs\.encode at offset \d+ would build more than the file holds/);
    // an OrderedDict given a memoized 5,000-entry state again and again: 3 bytes per copy
    const od = [0x80, 2, 0x7d, 0x71, 0, 0x28];
    for (let i = 0; i < 5000; i++) od.push(0x4b, i & 255, 0x4b, 1);
    od.push(0x75, 0x30, 0x63, ...enc.encode("collections\nOrderedDict\n"), 0x29, 0x52);
    for (let i = 0; i < 200; i++) od.push(0x68, 0, 0x62);
    od.push(0x2e);
    expect(userErrorOf(() => unpickle(Uint8Array.from(od), "x"))).toMatch(/BUILD at offset \d+ would build more than the file holds/);
    // the same with a single copy is an ordinary pickle
    expect(unpickle(Uint8Array.from([...big.slice(0, big.length - 602), 0x52, 0x2e]), "x")).toHaveLength(100_000);
  });
});

describe("zip", () => {
  test.skipIf(!py)("our stored archives: CPython's zipfile verifies every CRC; data 64-byte aligned; ZIP64 end records past 65535 entries", () => {
    const d = tempDir("zip");
    for (const n of [3, 70_000]) {
      const f = join(d, `a${n}.zip`);
      const fd = openSync(f, "w");
      const z = new ZipWriter(fd, 0);
      for (let i = 0; i < n; i++) z.add(`archive/r${i}`, [new TextEncoder().encode(`record ${i}`), Uint8Array.of(i & 255)]);
      z.finish();
      closeSync(fd);
      const out = Bun.spawnSync([py!, "-c", `import zipfile; z = zipfile.ZipFile("${f}"); print(z.testzip(), len(z.namelist()), z.read("archive/r2"))`], { stdout: "pipe", stderr: "pipe" });
      expect(out.stdout.toString().trim()).toBe(`None ${n} b'record 2\\x02'`);
      const rfd = openSync(f, "r");
      const dir = readZipDirectory(rfd, 0, statSync(f).size, f);
      expect(dir.size).toBe(n);
      const e = dir.get("archive/r2")!;
      const at = zipDataOffset(rfd, 0, statSync(f).size, e, f);
      expect(at % 64).toBe(0);
      expect(new TextDecoder().decode(readFileSync(f).subarray(at, at + e.size - 1))).toBe("record 2");
      closeSync(rfd);
    }
  });

  test("a truncated archive is refused in one line", () => {
    const f = join(tempDir("zip"), "t.zip");
    const fd = openSync(f, "w");
    const z = new ZipWriter(fd, 0);
    z.add("archive/x", [new Uint8Array(100)]);
    const len = z.finish();
    closeSync(fd);
    const rfd = openSync(f, "r");
    expect(userErrorOf(() => readZipDirectory(rfd, 0, len - 30, f))).toMatch(/no end-of-central-directory record/);
    closeSync(rfd);
  });
});
