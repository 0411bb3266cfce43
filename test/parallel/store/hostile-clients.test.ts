// Clients that lie to olmo's rendezvous store (issue 21 item 2): the store is reachable by anyone
// who can reach rank 0's port, so every message is checked against the job and a client that breaks
// a rule is dropped with one logged line, while the job's own connections go on being served
// (src/parallel/store/store-server.ts). Last, the case end to end: a 2-rank `olmo launch`
// whose store is hit mid-run trains to the end and exits 0 (it used to lose its store and exit 2).
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { join } from "node:path";
import { StoreClient } from "../../../src/parallel/store/store-client.ts";
import { StoreServer } from "../../../src/parallel/store/store-server.ts";
import { ensureNativeBuilt } from "../../support/build.ts";
import { olmo, root, writeTinyJob } from "../run-compare.ts";

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
});

/** A store for a 2-rank job; every drop logged (logEveryMs 0) unless a test asks for the default. */
function serve(opts: { slowLineMs?: number; logEveryMs?: number } = {}) {
  const logs: string[] = [];
  const server = new StoreServer("127.0.0.1", 0, { world: 2, log: (l) => logs.push(l), logEveryMs: 0, ...opts });
  cleanup.push(() => server.stop());
  return { server, logs, port: server.port };
}

/** A raw TCP client: what it sends is up to the test; `closed` resolves when the server cuts it off. */
async function raw(port: number) {
  let closed!: () => void;
  const whenClosed = new Promise<void>((r) => (closed = r));
  const queue: Uint8Array[] = [];
  const flush = (s: { write(b: Uint8Array): number }) => {
    while (queue.length) {
      const n = s.write(queue[0]);
      if (n < queue[0].length) {
        queue[0] = queue[0].subarray(Math.max(n, 0));
        return;
      }
      queue.shift();
    }
  };
  const sock = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {}, drain: (s) => flush(s), close: () => closed(), error: () => closed() } });
  cleanup.push(() => sock.terminate());
  /** queue bytes (a socket takes only what fits; the rest goes at drain); the bytes still queued */
  const send = (x: string | Uint8Array) => {
    queue.push(typeof x === "string" ? new TextEncoder().encode(x) : x);
    flush(sock);
    return queue.reduce((a, b) => a + b.length, 0);
  };
  return { sock, closed: whenClosed, send };
}

const within = <T,>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms))]);

/** The job's own clients still rendezvous and exchange a value through the store. */
async function stillServes(port: number): Promise<void> {
  const [a, b] = await Promise.all([0, 1].map(() => StoreClient.connect("127.0.0.1", port, 2000)));
  cleanup.push(() => (a.close(), b.close()));
  await within(Promise.all([a.barrier("after", 0, 2), b.barrier("after", 1, 2)]), 2000, "barrier after the hostile client");
  await a.set("k", "v");
  expect(await b.get("k")).toBe("v");
}

/** Send `line`; the server must drop this client, log why, and go on serving. */
async function dropped(line: string, why: string | RegExp, port: number, logs: string[]): Promise<void> {
  const c = await raw(port);
  c.send(line.endsWith("\n") ? line : line + "\n");
  await within(c.closed, 2000, `drop after ${line.slice(0, 60)}`);
  const last = logs.at(-1) ?? "";
  expect(last).toStartWith("olmo store: dropped a client from 127.0.0.1:");
  if (typeof why === "string") expect(last).toContain(`: it ${why}; the job goes on`);
  else expect(last).toMatch(why);
}

const barrier = (f: Record<string, unknown>) => JSON.stringify({ id: 1, op: "barrier", name: "b", rank: 0, world: 2, timeoutMs: 1000, ...f });

describe("olmo's store against hostile clients", () => {
  test("barrier fields outside the job: world -1, 1.5, 4e7, \"2\"; rank 2 of 2, rank -1", async () => {
    for (const [f, why] of [
      [{ world: -1 }, "sent barrier: world -1 is not a whole number from 1 to 2 (the job's world size)"],
      [{ world: 1.5 }, "sent barrier: world 1.5 is not a whole number from 1 to 2 (the job's world size)"],
      [{ world: 4e7 }, "sent barrier: world 40000000 is not a whole number from 1 to 2 (the job's world size)"],
      [{ world: "2" }, "sent barrier: world \"2\" is not a whole number from 1 to 2 (the job's world size)"],
      [{ rank: 2 }, "sent barrier: rank 2 is not a whole number from 0 to 1"],
      [{ rank: -1 }, "sent barrier: rank -1 is not a whole number from 0 to 1"],
    ] as const) {
      const { port, logs } = serve();
      await dropped(barrier(f), why, port, logs);
      await stillServes(port);
    }
  });

  test("lines that are not requests: not JSON, an array, null, no id, an unknown op, wrong field types and sizes", async () => {
    const cases: [string, string][] = [
      ["{not json", "sent a line that is not JSON"],
      ["[1,2]", "sent a message that is not a JSON object"],
      ["null", "sent a message that is not a JSON object"],
      [JSON.stringify({ op: "set", key: "k", value: "v" }), "sent request id undefined is not a whole number >= 0"],
      [JSON.stringify({ id: 1, op: "shutdown" }), "sent unknown op \"shutdown\""],
      [JSON.stringify({ id: 1, op: "set", key: "k", value: { a: 1 } }), "sent set: value {\"a\":1} is not a string"],
      [JSON.stringify({ id: 1, op: "set", key: "k".repeat(2000), value: "v" }), "sent set: key of 2000 bytes exceeds 1024"],
      [JSON.stringify({ id: 1, op: "set", key: "k", value: "v".repeat(70_000) }), "sent set: a value of 70000 bytes exceeds 65536"],
      [JSON.stringify({ id: 1, op: "add", key: "n", delta: 1e300 }), "sent add: delta 1e+300 is not a safe integer"],
      [JSON.stringify({ id: 1, op: "get", key: "k", timeoutMs: -5 }), "sent get: timeoutMs -5 is not a number of milliseconds in (0, 2147483647]"],
      [JSON.stringify({ id: 1, op: "get", key: "k", timeoutMs: 1e20 }), "sent get: timeoutMs 100000000000000000000 is not a number of milliseconds in (0, 2147483647]"],
    ];
    const { port, logs } = serve();
    for (const [line, why] of cases) await dropped(line, why, port, logs);
    await stillServes(port);
  });

  test("a line without a newline is cut off at 512 KiB while the client keeps sending", async () => {
    const { port, logs } = serve();
    const c = await raw(port);
    let queued = 0, cut = false;
    c.closed.then(() => (cut = true));
    const chunk = new Uint8Array(64 * 1024).fill(120);
    for (let i = 0; !cut && i < 1024; i++) { // up to 64 MiB
      queued = c.send(chunk);
      while (queued > 1 << 20 && !cut) queued = (await Bun.sleep(1), c.send(new Uint8Array(0)));
    }
    expect(cut).toBe(true);
    expect(logs.at(-1)).toContain("it sent a line of more than 524288 bytes (no newline within the limit)");
    await stillServes(port);
  }, 30_000);

  test("more than 4·world + 64 connections: the extra ones are refused, the job's own are served; the log is not flooded", async () => {
    const { port, logs } = serve({ logEveryMs: 1000 });
    const [a, b] = await Promise.all([0, 1].map(() => StoreClient.connect("127.0.0.1", port, 2000)));
    cleanup.push(() => (a.close(), b.close()));
    const flood = await Promise.all(Array.from({ length: 78 }, () => raw(port)));
    let closed = 0;
    await Promise.all(flood.map((c) => Promise.race([c.closed.then(() => closed++), Bun.sleep(800)])));
    expect(closed).toBe(8); // 2 + 78 = 80 connections, 72 allowed
    expect(logs).toHaveLength(1); // one line a second at most
    expect(logs[0]).toContain("it more than 72 connections at once (4 per rank of 2, + 64)");
    await within(Promise.all([a.barrier("x", 0, 2), b.barrier("x", 1, 2)]), 2000, "barrier under the flood");
    await Bun.sleep(1100);
    const late = await raw(port);
    await within(late.closed, 2000, "one more");
    expect(logs[1]).toEndWith("(and 7 more dropped since the last such line)");
  }, 30_000);

  test("slowloris: a line kept incomplete, or none sent at all, past slowLineMs", async () => {
    const { port, logs } = serve({ slowLineMs: 300 });
    const partial = await raw(port);
    partial.send('{"id":1,"op":"se');
    await within(partial.closed, 2000, "partial line");
    expect(logs.at(-1)).toContain("it kept a line incomplete for more than 0.3 s");
    const silent = await raw(port);
    await within(silent.closed, 2000, "silent connection");
    expect(logs.join("\n")).toMatch(/it sent no complete line within 0\.3 s of connecting/);
    await stillServes(port);
  });

  test("a client that does not read its replies is dropped past 4 MiB of them", async () => {
    const { port, logs } = serve();
    const a = await StoreClient.connect("127.0.0.1", port, 2000);
    cleanup.push(() => a.close());
    await a.set("big", "v".repeat(60_000));
    const sock = netConnect({ host: "127.0.0.1", port });
    sock.on("error", () => {}); // writes after the drop fail: expected
    cleanup.push(() => sock.destroy());
    await new Promise<void>((r) => sock.once("connect", () => r()));
    sock.pause(); // reads nothing: the replies fill the kernel's buffers, then the store's
    let closed = false;
    sock.once("close", () => (closed = true));
    for (let id = 1; id <= 5000 && !closed; id++) {
      sock.write(JSON.stringify({ id, op: "get", key: "big", timeoutMs: 1000 }) + "\n");
      if (id % 50 === 0) await Bun.sleep(5);
    }
    for (let i = 0; i < 200 && !closed; i++) await Bun.sleep(10);
    expect(closed).toBe(true);
    expect(logs.join("\n")).toContain("it left more than 4194304 bytes of replies unread");
    await stillServes(port);
  }, 60_000);

  test("more than 64 requests waiting at once", async () => {
    const { port, logs } = serve();
    const c = await raw(port);
    c.send(Array.from({ length: 65 }, (_, i) => JSON.stringify({ id: i, op: "get", key: `never${i}`, timeoutMs: 60_000 }) + "\n").join(""));
    await within(c.closed, 2000, "too many waits");
    expect(logs.at(-1)).toContain("it had more than 64 requests waiting at once");
    await stillServes(port);
  });

  test("a dropped client's barrier arrival does not count: the real rank passes that barrier afterwards", async () => {
    const { port, logs } = serve();
    const spoof = await raw(port);
    spoof.send(barrier({ name: "olmo/init", rank: 1, timeoutMs: 5000 }) + "\n");
    await Bun.sleep(50);
    spoof.send("garbage\n");
    await within(spoof.closed, 2000, "spoofer");
    expect(logs.at(-1)).toContain("it sent a line that is not JSON");
    const [a, b] = await Promise.all([0, 1].map(() => StoreClient.connect("127.0.0.1", port, 2000)));
    cleanup.push(() => (a.close(), b.close()));
    await within(Promise.all([a.barrier("olmo/init", 0, 2), b.barrier("olmo/init", 1, 2)]), 2000, "the real barrier");
  });

  test("a client that resets mid-request, and one that fills the store, cost only themselves", async () => {
    const { port, logs } = serve();
    const reset = await raw(port);
    reset.send('{"id":1,"op":"set","key":"k","va');
    reset.sock.terminate();
    await stillServes(port);
    const filler = await raw(port);
    const value = "v".repeat(65_000);
    filler.send(Array.from({ length: 1100 }, (_, i) => JSON.stringify({ id: i, op: "set", key: `fill${i}`, value }) + "\n").join(""));
    await within(filler.closed, 30_000, "the store filler");
    expect(logs.at(-1)).toMatch(/it set a value while the store holds \d+ bytes \(limit 67108864; one value is at most 65536\)/);
    await stillServes(port);
  }, 60_000);
});

describe("a job whose store is hit mid-run", () => {
  test("a 2-rank olmo launch trains to the end and exits 0; rank 0 logs each dropped client", async () => {
    ensureNativeBuilt("cpu");
    const { dir, cfgPath } = writeTinyJob("hostile");
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const runDir = join(dir, "run");
    const lines = () => (existsSync(join(runDir, "metrics.jsonl")) ? readFileSync(join(runDir, "metrics.jsonl"), "utf8").split("\n").length - 1 : 0);
    const p = Bun.spawn([process.execPath, join(root, "src/cli/main.ts"), "launch", "--nproc-per-node", "2", "--", "train", cfgPath, "--run-dir", runDir,
      "--train.steps=3000", "--data.allowRepetition=true", "--checkpoint.saveInterval=500", "--quiet"],
    { cwd: root, env: { ...process.env, OLMO_THREADS: "1" }, stdout: "pipe", stderr: "pipe" });
    const err = new Response(p.stderr).text(), out = new Response(p.stdout).text();
    while (lines() < 20 && p.exitCode === null) await Bun.sleep(20);
    const rank = readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, "utf8").trim().split(/\s+/).map(Number)[0];
    const port = Number(/(?:^|\0)MASTER_PORT=(\d+)/.exec(readFileSync(`/proc/${rank}/environ`, "utf8"))![1]);
    for (const line of [barrier({ world: -1 }), barrier({ world: 1.5 }), barrier({ world: 4e7 }), "{not json", "x".repeat(600_000)]) {
      const c = await raw(port);
      c.send(line + (line.startsWith("x") ? "" : "\n"));
      await within(c.closed, 5000, "the job's store dropping a hostile client");
    }
    expect(p.exitCode).toBeNull(); // still training
    const code = await p.exited;
    const stderr = await err;
    expect({ code, out: (await out).includes("checkpoint:") }).toEqual({ code: 0, out: true });
    expect(lines()).toBeGreaterThanOrEqual(3000);
    expect(stderr).toContain("[rank 0] olmo store: dropped a client from 127.0.0.1:");
    expect(stderr).toContain("world -1 is not a whole number from 1 to 2 (the job's world size); the job goes on");
    expect(stderr.split("\n").filter((l) => l.includes("error")).join("\n")).toBe("");
  }, 120_000);
});
