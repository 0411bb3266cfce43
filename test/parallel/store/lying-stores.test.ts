// Stores that lie to their clients (issue 21 item 3): a store that never answers, answers garbage,
// announces a 2^62-byte value, streams a reply without end, or resets mid-reply must fail the rank
// in one line within its deadline (OLMO_STORE_TIMEOUT_S, here 0.3 s), never hang it or let it
// buffer what the peer sizes. Both clients: the torchrun agent store's (torch-store.ts, against the
// stand-in agent store turned hostile) and olmo's own (store-client.ts, against raw servers).
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { UserError } from "../../../src/errors.ts";
import { StoreClient } from "../../../src/parallel/store/store-client.ts";
import { Q, TorchStoreClient } from "../../../src/parallel/store/torch-store.ts";
import { type Lie, startAgentStore } from "../fixtures/torch-agent-store.ts";

const T = 300; // OLMO_STORE_TIMEOUT_S of these tests, in ms
const stops: (() => void)[] = [];
afterEach(() => {
  for (const f of stops.splice(0)) f();
});

function lyingAgent(lie: Lie): number {
  const a = startAgentStore(0, lie);
  stops.push(a.stop);
  return a.port;
}
const u64 = (v: bigint) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
};
const where = (port: number) => `the torchrun agent's store at 127.0.0.1:${port}`;
const notTcpStore = "not a torch TCPStore speaking its protocol";

/** A client's promise settles (a rejection, as a UserError) within `ms`; its message. */
async function failsWithin(p: Promise<unknown>, ms: number): Promise<string> {
  const t0 = performance.now();
  const e = await p.then(() => null, (err) => err);
  const took = performance.now() - t0;
  expect(e).toBeInstanceOf(UserError);
  expect(took).toBeLessThan(ms);
  return (e as Error).message;
}

describe("the torchrun agent store's client against a lying store", () => {
  const connect = (port: number) => TorchStoreClient.connect("127.0.0.1", port, T, "olmo/r/attempt0/");

  test("a store that never answers: connect fails at its PING's deadline", async () => {
    const port = lyingAgent(() => null);
    expect(await failsWithin(connect(port), 2000)).toBe(`${where(port)} did not answer the PING within 0.3 s (OLMO_STORE_TIMEOUT_S)`);
  });

  test("a store that answers the PING, then nothing: an ADD and a get fail at their deadlines", async () => {
    const port = lyingAgent((q) => (q === Q.PING ? undefined : null));
    const c = await connect(port);
    expect(await failsWithin(c.add("n", 1), 2000)).toBe(`${where(port)} did not answer the ADD within 0.3 s (OLMO_STORE_TIMEOUT_S)`);
    const d = await connect(port);
    expect(await failsWithin(d.get("k"), 3000)).toMatch(new RegExp(`^${where(port)} did not answer the (WAIT|CANCEL_WAIT) within 0\\.[36] s \\(OLMO_STORE_TIMEOUT_S\\)$`));
  });

  test("garbage: a PING echo that is not the nonce, a WAIT answered 7, bytes nobody asked for", async () => {
    const ping = lyingAgent((q) => (q === Q.PING ? Uint8Array.of(1, 2, 3, 4) : undefined));
    expect(await failsWithin(connect(ping), 2000)).toBe(`${where(ping)} sent a PING reply that is not its nonce: ${notTcpStore} (TORCHELASTIC_USE_AGENT_STORE=True says the agent serves one at MASTER_ADDR:MASTER_PORT)`);
    const wait = lyingAgent((q) => (q === Q.WAIT ? Uint8Array.of(7) : undefined));
    const c = await connect(wait);
    await c.set("k", "v");
    expect(await failsWithin(c.get("k"), 2000)).toStartWith(`${where(wait)} sent the answer 7 to a WAIT (the protocol allows 0 or 1): ${notTcpStore}`);
    const extra = lyingAgent((q, honest) => (q === Q.ADD ? Buffer.concat([honest, Uint8Array.of(9, 9)]) : undefined));
    const d = await connect(extra);
    await d.add("n", 1).catch(() => {}); // its own reply is whole; the two bytes after it are the lie
    await Bun.sleep(50);
    expect(await failsWithin(d.add("n", 1), 2000)).toStartWith(`${where(extra)} sent 2 byte(s) no request asked for: ${notTcpStore}`);
  });

  test("a value announced as 2^62 bytes is refused when its length arrives, before anything is buffered", async () => {
    const port = lyingAgent((q) => (q === Q.GET ? u64(2n ** 62n) : undefined));
    const c = await connect(port);
    await c.set("k", "v");
    expect(await failsWithin(c.get("k"), 2000)).toStartWith(`${where(port)} sent a GET reply announcing a value of 4611686018427387904 bytes (olmo stores at most 65536): ${notTcpStore}`);
  });

  test("a reply streamed without end: refused at its length (1 GiB); one that stops short of its length fails at the deadline", async () => {
    let streaming: Timer | undefined;
    const huge = lyingAgent((q, _h, s) => {
      if (q !== Q.GET) return undefined;
      s.write(u64(2n ** 30n));
      streaming = setInterval(() => s.write(new Uint8Array(1 << 16)), 1); // it keeps sending
      return null;
    });
    stops.push(() => clearInterval(streaming));
    const c = await connect(huge);
    await c.set("k", "v");
    expect(await failsWithin(c.get("k"), 2000)).toStartWith(`${where(huge)} sent a GET reply announcing a value of 1073741824 bytes (olmo stores at most 65536)`);
    const short = lyingAgent((q) => (q === Q.GET ? Buffer.concat([u64(1000n), new Uint8Array(10)]) : undefined));
    const d = await connect(short);
    await d.set("k", "v");
    expect(await failsWithin(d.get("k"), 2000)).toBe(`${where(short)} did not answer the GET within 0.3 s (OLMO_STORE_TIMEOUT_S)`);
  });

  test("a store that resets mid-reply: the rank is told the connection was lost", async () => {
    const port = lyingAgent((q, honest, s) => {
      if (q !== Q.ADD) return undefined;
      s.write(honest.subarray(0, 4));
      setTimeout(() => s.terminate(), 20);
      return null;
    });
    const c = await connect(port);
    expect(await failsWithin(c.add("n", 1), 2000)).toBe(`lost the connection to ${where(port)} (did the agent exit?)`);
  });

  test("values the protocol cannot mean: a GET value that is not UTF-8, an ADD sum beyond the safe integers", async () => {
    const bin = lyingAgent((q) => (q === Q.GET ? Buffer.concat([u64(2n), Uint8Array.of(0xff, 0xfe)]) : undefined));
    const c = await connect(bin);
    await c.set("k", "v");
    expect(await failsWithin(c.get("k"), 2000)).toStartWith(`${where(bin)} sent a value of 2 bytes for "k" that is not UTF-8 (olmo stores text)`);
    const big = lyingAgent((q) => (q === Q.ADD ? u64(2n ** 62n) : undefined));
    const d = await connect(big);
    expect(await failsWithin(d.add("n", 1), 2000)).toStartWith(`${where(big)} sent an ADD result 4611686018427387904 outside the safe integers`);
  });
});

describe("olmo's store client against something else on the store's port", () => {
  /** A raw server that answers every received line with `reply(line)` (null: nothing). */
  function rawServer(reply: (line: string, s: Socket<undefined>) => string | null): number {
    const l = Bun.listen({
      hostname: "127.0.0.1", port: 0,
      socket: {
        data: (s, chunk) => {
          for (const line of chunk.toString().split("\n").filter(Boolean)) {
            const r = reply(line, s);
            if (r !== null) s.write(r);
          }
        },
      },
    });
    stops.push(() => l.stop(true));
    return l.port;
  }
  const at = (port: number) => `the rendezvous store at 127.0.0.1:${port}`;
  const connect = (port: number) => StoreClient.connect("127.0.0.1", port, T);

  test("a server that never answers: a barrier fails at its deadline, a set at the store timeout", async () => {
    const port = rawServer(() => null);
    const c = await connect(port);
    expect(await failsWithin(c.barrier("b", 0, 2), 2000)).toBe(`${at(port)} did not answer the barrier within 0.6 s (OLMO_STORE_TIMEOUT_S); rank 0 hosts it: is rank 0 alive, and is that its address?`);
    const d = await connect(port);
    expect(await failsWithin(d.set("k", "v"), 2000)).toStartWith(`${at(port)} did not answer the set within 0.3 s`);
  });

  test("another service's port: not JSON, a reply to no request, a value of the wrong kind, a line without end", async () => {
    const http = rawServer(() => "HTTP/1.1 400 Bad Request\r\n\r\n");
    expect(await failsWithin((await connect(http)).set("k", "v"), 2000)).toBe(`${at(http)} sent a line that is not JSON: not olmo's store (do MASTER_PORT / OLMO_STORE_PORT name another service's port?)`);
    const stranger = rawServer(() => JSON.stringify({ id: 999, ok: true, value: null }) + "\n");
    expect(await failsWithin((await connect(stranger)).set("k", "v"), 2000)).toStartWith(`${at(stranger)} sent a reply to no request in flight (id 999)`);
    const kind = rawServer((line) => JSON.stringify({ id: JSON.parse(line).id, ok: true, value: 5 }) + "\n");
    expect(await failsWithin((await connect(kind)).get("k"), 2000)).toStartWith(`${at(kind)} sent a get reply with value 5 (id 1)`);
    const endless = rawServer((_l, s) => {
      s.write("x".repeat(600 * 1024)); // no newline
      return null;
    });
    expect(await failsWithin((await connect(endless)).set("k", "v"), 2000)).toStartWith(`${at(endless)} sent a line of more than 524288 bytes (no newline within the limit)`);
  });
});
