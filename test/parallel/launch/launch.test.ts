// Multi-process: `olmo launch` starts real ranks that rendezvous through the store and run the
// shared-memory collectives (test/parallel/fixtures/rank.ts checks every result bitwise).
import { describe, expect, test } from "bun:test";
import { join } from "node:path";

const root = join(import.meta.dir, "../../..");
const cli = join(root, "src/cli/main.ts");
const rankScript = join(import.meta.dir, "../fixtures/rank.ts");

async function olmo(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([process.execPath, cli, ...args], { cwd: root, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

const lines = (s: string) => s.split("\n").filter((l) => l.length > 0);

describe("olmo launch + store + shared-memory collectives", () => {
  for (const [world, slot] of [[2, 256], [4, 256], [3, 1 << 20]]) {
    test(`${world} ranks: allReduce/allGather/reduceScatter/broadcast bitwise equal to the sequential result (slot ${slot} B)`, async () => {
      const r = await olmo(["launch", "--nproc-per-node", String(world), "--exec", "--", process.execPath, rankScript, "collectives"], { TEST_SLOT_BYTES: String(slot) });
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      const out = lines(r.out).sort();
      expect(out).toHaveLength(world);
      for (let k = 0; k < world; k++) expect(out[k]).toMatch(new RegExp(`^\\[rank ${k}\\] ok \\d+ checks, world ${world}$`));
    }, 30_000);
  }

  test("tp=2 × dp=2 sub-communicators reduce over their members only", async () => {
    const r = await olmo(["launch", "--nproc-per-node", "4", "--exec", "--", process.execPath, rankScript, "groups"]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(lines(r.out).sort()).toEqual([
      "[rank 0] ok groups tp 0,1 dp 0,2", "[rank 1] ok groups tp 0,1 dp 1,3", "[rank 2] ok groups tp 2,3 dp 0,2", "[rank 3] ok groups tp 2,3 dp 1,3",
    ]);
  }, 30_000);

  test("a rank that exits 3 stops the job: one line names it, the launcher exits 3", async () => {
    const t0 = performance.now();
    const r = await olmo(["launch", "--nproc-per-node", "4", "--exec", "--", process.execPath, rankScript, "exit3"]);
    expect(r.code).toBe(3);
    expect(lines(r.err)).toEqual(["olmo launch: rank 1 exited with code 3; stopped the other 3 local rank(s)"]);
    expect(performance.now() - t0).toBeLessThan(10_000);
  }, 30_000);

  test("without a launcher (srun-style), peers of a rank that exited fail at once naming it", async () => {
    const { freePort } = await import("../../../src/parallel/launch/launcher.ts");
    const port = String(freePort());
    const t0 = performance.now();
    const ranks = [0, 1, 2].map((r) =>
      Bun.spawn([process.execPath, rankScript, "exit3"], {
        env: { ...process.env, RANK: String(r), WORLD_SIZE: "3", MASTER_ADDR: "127.0.0.1", MASTER_PORT: port, OLMO_COMM_TIMEOUT_S: "60", OLMO_LAUNCHED: "0" },
        stdout: "pipe", stderr: "pipe",
      }));
    const codes = await Promise.all(ranks.map((p) => p.exited));
    expect(codes).toEqual([2, 3, 2]);
    expect(performance.now() - t0).toBeLessThan(15_000);
    for (const r of [0, 2]) {
      expect(await new Response(ranks[r].stderr).text()).toContain(`error: shared-memory collective on rank ${r}: rank 1 exited before joining it`);
    }
  }, 30_000);

  test("a rank that never arrives: the others time out naming it", async () => {
    const r = await olmo(["launch", "--nproc-per-node", "3", "--exec", "--", process.execPath, rankScript, "never"], { OLMO_STORE_TIMEOUT_S: "1" });
    expect(r.code).toBe(2);
    const err = lines(r.err);
    // every waiting rank gets the same message; whichever exits first is reported, the other is stopped
    expect(err.some((l) => /^\[rank [02]\] error: rendezvous "olmo\/init" timed out after 1 s: rank\(s\) 1 of 3 never arrived \(OLMO_STORE_TIMEOUT_S\)$/.test(l))).toBe(true);
    expect(err.at(-1)).toMatch(/^olmo launch: rank [02] exited with code 2; stopped the other 2 local rank\(s\)$/);
  }, 30_000);

  test("ranks that call different collectives fail loudly instead of mixing data", async () => {
    const r = await olmo(["launch", "--nproc-per-node", "2", "--exec", "--", process.execPath, rankScript, "mismatch"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/ShmComm: collective mismatch at barrier 1: rank [01] does \(op 7, n 1[01], 0\), rank [01] does \(op 7, n 1[01], 0\)/);
  }, 30_000);

  test("a rank that stops calling collectives: the others time out naming it", async () => {
    const r = await olmo(["launch", "--nproc-per-node", "3", "--exec", "--", process.execPath, rankScript, "stall"], { OLMO_COMM_TIMEOUT_S: "0.5" });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/\[rank [02]\] error: shared-memory collective timed out after 0.5 s on rank [02]: rank\(s\) 1 never arrived or stopped answering \(OLMO_COMM_TIMEOUT_S\)/);
  }, 30_000);

  test("a rank stopped (SIGSTOP) inside a collective: the other exits within the timeout naming it", async () => {
    const p = Bun.spawn([process.execPath, cli, "launch", "--nproc-per-node", "2", "--exec", "--", process.execPath, rankScript, "loop"], {
      cwd: root, env: { ...process.env, OLMO_COMM_TIMEOUT_S: "1" }, stdout: "pipe", stderr: "pipe",
    });
    const reader = p.stdout.getReader();
    let seen = "";
    while (!/\[rank 0\] looping/.test(seen) || !/\[rank 1\] looping \d+/.test(seen)) seen += new TextDecoder().decode((await reader.read()).value);
    const pid = Number(/\[rank 1\] looping (\d+)/.exec(seen)![1]);
    const t0 = performance.now();
    process.kill(pid, "SIGSTOP"); // it is inside an all-reduce: the loop does nothing else
    const code = await p.exited;
    const s = (performance.now() - t0) / 1000;
    console.log(`sigstop: launcher exited ${s.toFixed(2)} s after rank 1 was stopped (OLMO_COMM_TIMEOUT_S=1)`);
    expect(code).toBe(2);
    const err = lines(await new Response(p.stderr).text());
    expect(err).toContain("[rank 0] error: shared-memory collective timed out after 1 s on rank 0: rank(s) 1 never arrived or stopped answering (OLMO_COMM_TIMEOUT_S)");
    expect(err.at(-1)).toBe("olmo launch: rank 0 exited with code 2; stopped the other 1 local rank(s)");
    expect(s).toBeLessThan(4);
  }, 30_000);

  test("in a TP group, the timeout names the missing rank by its global rank", async () => {
    const r = await olmo(["launch", "--nproc-per-node", "4", "--exec", "--", process.execPath, rankScript, "groupstall"], { OLMO_COMM_TIMEOUT_S: "0.5" });
    expect(r.code).toBe(2);
    expect(r.err).toContain("[rank 2] error: shared-memory collective timed out after 0.5 s on rank 2: rank(s) 3 never arrived or stopped answering (OLMO_COMM_TIMEOUT_S)");
  }, 30_000);

  test("runs olmo subcommands by default; one rank passes output through unprefixed", async () => {
    const two = await olmo(["launch", "--nproc-per-node", "2", "--", "nosuch"]);
    expect(two.code).toBe(2);
    expect(two.err).toMatch(/^\[rank [01]\] olmo: error: unknown command "nosuch"/m);
    const one = await olmo(["launch", "--nproc-per-node", "1", "--", "nosuch"]);
    expect(one.code).toBe(2);
    expect(lines(one.err)[0]).toMatch(/^olmo: error: unknown command "nosuch"/);
  }, 30_000);

  test("rank environment as torchrun sets it", async () => {
    const script = "console.log([process.env.RANK, process.env.WORLD_SIZE, process.env.LOCAL_RANK, process.env.LOCAL_WORLD_SIZE, process.env.MASTER_ADDR, process.env.MASTER_PORT].join(' '))";
    const r = await olmo(["launch", "--nproc-per-node", "2", "--nnodes", "2", "--node-rank", "1", "--master-addr", "10.1.2.3", "--master-port", "4567", "--exec", "--", process.execPath, "-e", script]);
    expect(r.code).toBe(0);
    expect(lines(r.out).sort()).toEqual(["[rank 2] 2 4 0 2 10.1.2.3 4567", "[rank 3] 3 4 1 2 10.1.2.3 4567"]);
  }, 30_000);

  test("SIGTERM to the launcher reaches every rank", async () => {
    const p = Bun.spawn([process.execPath, cli, "launch", "--nproc-per-node", "2", "--exec", "--", process.execPath, "-e", "console.log('ready'); await Bun.sleep(30000)"], {
      cwd: root, stdout: "pipe", stderr: "pipe",
    });
    const reader = p.stdout.getReader();
    let seen = "";
    while ((seen.match(/ready/g) ?? []).length < 2) seen += new TextDecoder().decode((await reader.read()).value);
    const t0 = performance.now();
    p.kill("SIGTERM");
    expect(await p.exited).toBe(143);
    expect(performance.now() - t0).toBeLessThan(4000);
    expect(await new Response(p.stderr).text()).toContain("olmo launch: received SIGTERM; stopped 2 rank(s)");
  }, 30_000);

  test("bad launcher arguments are user errors", async () => {
    const r = await olmo(["launch", "--nproc-per-node", "2", "--nnodes", "2", "--node-rank", "2", "--", "train"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("--node-rank 2 must be below --nnodes 2");
    const z = await olmo(["launch", "--nproc-per-node", "0", "--", "train"]);
    expect(z.err).toContain("--nproc-per-node must be an integer >= 1");
  });
});
