// The global order must be numpy's, bit for bit: fixtures from fixtures/gen.py (numpy 2.x).
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { globalOrder, PCG64, seedSequenceState } from "../../src/data/index.ts";

const fx = JSON.parse(readFileSync(join(import.meta.dir, "fixtures/numpy-order.json"), "utf8"));

test("PCG64(seed) state, increment and raw outputs equal numpy's (SeedSequence seeding)", () => {
  for (const p of fx.pcg64) {
    const g = new PCG64(p.seed);
    const st = g.stateBig();
    expect(st.state.toString()).toBe(p.state);
    expect(st.inc.toString()).toBe(p.inc);
    const raw: string[] = [];
    for (let i = 0; i < 4; i++) {
      g.next64();
      raw.push(((BigInt(g.outHi) << 32n) | BigInt(g.outLo)).toString());
    }
    expect(raw).toEqual(p.raw64);
  }
});

test("SeedSequence(0).generate_state(4) matches numpy's documented value", () => {
  // np.random.SeedSequence(0).generate_state(4) → [2968811710, 3677149159, 745650761, 2884920346]
  expect(Array.from(seedSequenceState(0, 4))).toEqual([2968811710, 3677149159, 745650761, 2884920346]);
});

test("global order equals numpy's shuffle for every N, seed, epoch and chunk in the fixtures", () => {
  expect(fx.orders.length).toBeGreaterThan(90);
  for (const o of fx.orders) {
    const a = globalOrder(o.n, o.seed, o.epoch, o.chunk);
    const where = `n=${o.n} seed=${o.seed} epoch=${o.epoch} chunk=${o.chunk}`;
    expect(a.length, where).toBe(o.len);
    expect(Array.from(a.subarray(0, o.head.length)), where).toEqual(o.head);
    expect(Array.from(a.subarray(a.length - o.tail.length)), where).toEqual(o.tail);
    let chk = 0; // Σ a[i]·(i+1) < 2^53 for these N, as in gen.py
    for (let i = 0; i < a.length; i++) chk += a[i] * (i + 1);
    expect(chk % (2 ** 61 - 1), where).toBe(o.checksum);
  }
});

test("chunked order keeps each chunk's instances adjacent and is a permutation", () => {
  const a = globalOrder(1000, 34521, 1, 2);
  for (let i = 0; i < a.length; i += 2) expect(a[i + 1]).toBe(a[i] + 1);
  expect(new Set(a).size).toBe(1000);
});
