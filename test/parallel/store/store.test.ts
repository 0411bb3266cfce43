import { afterEach, describe, expect, test } from "bun:test";
import { UserError } from "../../../src/errors.ts";
import { freePort } from "../../../src/parallel/launch/launcher.ts";
import { StoreClient } from "../../../src/parallel/store/store-client.ts";
import { StoreServer } from "../../../src/parallel/store/store-server.ts";
import { storeTimeoutMs } from "../../../src/parallel/store/wire.ts";

describe("rendezvous store", () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => {
    for (const f of cleanup.splice(0).reverse()) f();
  });
  async function setup(n: number): Promise<StoreClient[]> {
    const server = new StoreServer("127.0.0.1", 0, { world: 4 });
    cleanup.push(() => server.stop());
    const clients = await Promise.all(Array.from({ length: n }, () => StoreClient.connect("127.0.0.1", server.port, 2000)));
    for (const c of clients) cleanup.push(() => c.close());
    return clients;
  }

  test("set, blocking get, add", async () => {
    const [a, b] = await setup(2);
    const pending = b.get("nccl-id");
    await Bun.sleep(20);
    await a.set("nccl-id", "abc");
    expect(await pending).toBe("abc");
    expect(await a.get("nccl-id")).toBe("abc");
    const adds = await Promise.all([a.add("n", 1), b.add("n", 1), a.add("n", 5)]);
    expect(Math.max(...adds)).toBe(7); // atomic: the three adds see distinct totals ending at 7
    expect(new Set(adds).size).toBe(3);
    expect(await a.add("n", 0)).toBe(7);
  });

  test("barrier releases everyone; a missing rank times out with its name", async () => {
    const cs = await setup(3);
    await Promise.all(cs.map((c, r) => c.barrier("b", r, 3)));
    const t0 = performance.now();
    const res = await Promise.allSettled([cs[0].barrier("late", 0, 4, 300), cs[2].barrier("late", 2, 4, 300)]);
    expect(performance.now() - t0).toBeLessThan(2000);
    for (const r of res) {
      expect(r.status).toBe("rejected");
      const e = (r as PromiseRejectedResult).reason;
      expect(e).toBeInstanceOf(UserError);
      expect(e.message).toBe('rendezvous "late" timed out after 0.3 s: rank(s) 1, 3 of 4 never arrived (OLMO_STORE_TIMEOUT_S)');
    }
  });

  test("get of a key nobody sets times out", async () => {
    const [a] = await setup(1);
    await expect(a.get("never", 100)).rejects.toThrow('store get "never" timed out after 0.1 s');
  });

  test("no store: connect retries, then names the address", async () => {
    const port = freePort();
    const t0 = performance.now();
    await expect(StoreClient.connect("127.0.0.1", port, 300)).rejects.toThrow(`cannot reach the rendezvous store at 127.0.0.1:${port} after 0.3 s`);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
  });

  test("a store that starts late is found", async () => {
    const port = freePort();
    const pending = StoreClient.connect("127.0.0.1", port, 3000);
    await Bun.sleep(150);
    const server = new StoreServer("127.0.0.1", port, { world: 1 });
    cleanup.push(() => server.stop());
    const c = await pending;
    cleanup.push(() => c.close());
    await c.set("k", "v");
    expect(await c.get("k")).toBe("v");
  });

  test("OLMO_STORE_TIMEOUT_S", () => {
    expect(storeTimeoutMs({})).toBe(300_000);
    expect(storeTimeoutMs({ OLMO_STORE_TIMEOUT_S: "2.5" })).toBe(2500);
    expect(() => storeTimeoutMs({ OLMO_STORE_TIMEOUT_S: "soon" })).toThrow(UserError);
  });
});

test("rank 0 hosts the store on a Worker thread (so blocking collectives cannot starve it)", async () => {
  const { hostStore } = await import("../../../src/parallel/store/store.ts");
  const h = await hostStore("127.0.0.1", 0, 2);
  try {
    expect(h.onWorker).toBe(true);
    const c = await StoreClient.connect("127.0.0.1", h.port, 2000);
    await c.set("k", "v");
    // the main thread blocks; the store still answers another client's get afterwards
    const t = performance.now();
    while (performance.now() - t < 100) {}
    expect(await c.get("k")).toBe("v");
    c.close();
    await expect(hostStore("127.0.0.1", h.port, 2)).rejects.toThrow(/cannot host the rendezvous store on 127.0.0.1:\d+/);
  } finally {
    await h.stop(0);
  }
});
