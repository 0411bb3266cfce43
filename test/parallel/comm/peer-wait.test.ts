// A rank blocked in a shared-memory collective (a synchronous wait: no JavaScript listener runs
// meanwhile) still notices that the peer it waits for is gone and that it was asked to stop
// (src/parallel/comm/peer-wait.ts). Two ranks of test/parallel/fixtures/rank.ts "preempt" (a training
// loop's stop protocol) are started as srun or olmo launch would start them; the test kills, stops
// and signals them inside their collectives.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { freePort } from "../../../src/parallel/launch/launcher.ts";
import { ensureNativeBuilt } from "../../support/build.ts";

const rankScript = join(import.meta.dir, "../fixtures/rank.ts");
type Rank = { proc: ReturnType<typeof Bun.spawn>; out: () => string; err: Promise<string>; pid: number };
const started: Rank[] = [];
afterEach(() => {
  for (const r of started.splice(0)) if (r.proc.exitCode === null) r.proc.kill("SIGKILL");
});

/** Two ranks in the "preempt" loop; resolves once both print "ready". OLMO_LAUNCHED as olmo launch sets it, or not. */
async function twoRanks(launched: boolean): Promise<Rank[]> {
  ensureNativeBuilt("cpu");
  const port = String(freePort());
  const ranks = [0, 1].map((r) => {
    const proc = Bun.spawn([process.execPath, rankScript, "preempt"], {
      env: { ...process.env, RANK: String(r), WORLD_SIZE: "2", MASTER_ADDR: "127.0.0.1", MASTER_PORT: port, OLMO_COMM_TIMEOUT_S: "60", OLMO_LAUNCHED: launched ? "1" : "0" },
      stdout: "pipe", stderr: "pipe",
    });
    let out = "";
    (async () => {
      for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) out += new TextDecoder().decode(chunk);
    })();
    const rank: Rank = { proc, out: () => out, err: new Response(proc.stderr as ReadableStream).text(), pid: proc.pid };
    started.push(rank);
    return rank;
  });
  const deadline = performance.now() + 30_000;
  while (!ranks.every((r) => /ready \d+/.test(r.out()))) {
    if (performance.now() > deadline || ranks.some((r) => r.proc.exitCode !== null)) throw new Error(`ranks did not start: ${await ranks[0].err} ${await ranks[1].err}`);
    await Bun.sleep(20);
  }
  await Bun.sleep(300); // both are in the loop's collectives now
  return ranks;
}

/** Seconds until `r` exits, and its exit code. */
async function exitOf(r: Rank): Promise<{ code: number; s: number }> {
  const t0 = performance.now();
  const code = await r.proc.exited;
  return { code, s: (performance.now() - t0) / 1000 };
}

describe("a rank blocked in a shared-memory collective", () => {
  test("without a launcher (srun, torchrun), a SIGKILLed peer ends the wait at once, naming it", async () => {
    const [r0, r1] = await twoRanks(false);
    r1.proc.kill("SIGKILL");
    const { code, s } = await exitOf(r0);
    console.log(`srun-style: rank 0 exited ${s.toFixed(2)} s after rank 1 was SIGKILLed (OLMO_COMM_TIMEOUT_S=60)`);
    expect(code).toBe(2);
    expect((await r0.err).trim()).toBe(`error: shared-memory collective on rank 0: rank 1 (pid ${r1.pid}) died before joining it`);
    expect(s).toBeLessThan(3);
  }, 60_000);

  test("under olmo launch, the peer's death alone leaves it to the launcher; the launcher's SIGTERM then ends the wait at once", async () => {
    const [r0, r1] = await twoRanks(true);
    r1.proc.kill("SIGKILL");
    await Bun.sleep(1000);
    expect(r0.proc.exitCode).toBeNull(); // the launcher names the rank that failed first: no race to fail
    r0.proc.kill("SIGTERM");
    const { code, s } = await exitOf(r0);
    console.log(`olmo-launch-style: rank 0 exited ${s.toFixed(2)} s after its SIGTERM (its peer SIGKILLed; OLMO_COMM_TIMEOUT_S=60)`);
    expect(code).toBe(2);
    expect((await r0.err).trim()).toBe(`error: shared-memory collective on rank 0: rank 1 (pid ${r1.pid}) died before joining it (stopping on SIGTERM)`);
    expect(s).toBeLessThan(3);
  }, 60_000);

  test("a stop signal while the peer lives: the wait goes on, and both ranks stop after the same iteration (exit 75)", async () => {
    const [r0, r1] = await twoRanks(false);
    r1.proc.kill("SIGSTOP"); // slow, not gone: rank 0 waits for it inside a collective
    await Bun.sleep(200);
    r0.proc.kill("SIGUSR1");
    await Bun.sleep(1000);
    expect(r0.proc.exitCode).toBeNull();
    r1.proc.kill("SIGCONT");
    expect(await Promise.all([r0.proc.exited, r1.proc.exited])).toEqual([75, 75]);
    const at = (r: Rank) => /stopped after (\d+)/.exec(r.out())?.[1];
    expect(at(r0)).toBeDefined();
    expect(at(r0)).toBe(at(r1));
    expect((await r0.err) + (await r1.err)).toBe("");
  }, 60_000);

  test("a second stop signal more than 3 s after the first exits at once, as the listener would", async () => {
    const [r0, r1] = await twoRanks(false);
    r1.proc.kill("SIGSTOP");
    await Bun.sleep(200);
    r0.proc.kill("SIGTERM");
    await Bun.sleep(3300);
    expect(r0.proc.exitCode).toBeNull();
    r0.proc.kill("SIGTERM");
    const { code, s } = await exitOf(r0);
    expect(code).toBe(143);
    expect(s).toBeLessThan(2);
    r1.proc.kill("SIGKILL");
  }, 60_000);
});
