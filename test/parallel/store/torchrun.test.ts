// Under torchrun (PyTorch 2.x) the elastic agent already serves a TCPStore at MASTER_ADDR:MASTER_PORT
// (TORCHELASTIC_USE_AGENT_STORE=True), so rank 0 cannot host ours there: every rank is a client of
// the agent's store (src/parallel/store/torch-store.ts). Tested against a stand-in agent store written from
// the protocol (fixtures/torch-agent-store.ts) that holds MASTER_PORT as the real agent would.
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { listCheckpoints } from "../../../src/checkpoint/naming.ts";
import { freePort } from "../../../src/parallel/launch/launcher.ts";
import { TorchStoreClient } from "../../../src/parallel/store/torch-store.ts";
import { UserError } from "../../../src/errors.ts";
import { startAgentStore } from "../fixtures/torch-agent-store.ts";
import { metrics, olmo, writeTinyJob } from "../run-compare.ts";

const job = writeTinyJob("torchrun");
afterAll(() => rmSync(job.dir, { recursive: true, force: true }));

describe("the torchrun agent's TCPStore as the rendezvous", () => {
  test("client: set/get, add, barrier, fromRank0; keys carry the attempt prefix; timeouts name the missing ranks", async () => {
    const agent = startAgentStore();
    try {
      const [a, b] = await Promise.all([0, 1].map(() => TorchStoreClient.connect("127.0.0.1", agent.port, 2000, "olmo/r/attempt0/")));
      const got = b.get("k");
      await a.set("k", "value ü");
      expect(await got).toBe("value ü");
      expect(await a.add("n", 5)).toBe(5);
      expect(await b.add("n", -2)).toBe(3);
      expect(new TextDecoder().decode(agent.keys.get("olmo/r/attempt0/n"))).toBe("3"); // decimal, as torch stores it
      await Promise.all([a.barrier("x", 0, 2), b.barrier("x", 1, 2)]);
      expect(await Promise.all([a.fromRank0("id", 0, "A"), b.fromRank0("id", 1, "B")])).toEqual(["A", "A"]);
      await expect(b.get("never", 200)).rejects.toThrow(new UserError('store get "never" timed out after 0.2 s (OLMO_STORE_TIMEOUT_S): no rank set it'));
      await expect(a.barrier("lonely", 0, 3, 200)).rejects.toThrow(new UserError('rendezvous "lonely" timed out after 0.2 s: rank(s) 1, 2 of 3 never arrived (OLMO_STORE_TIMEOUT_S)'));
      // the connection still answers after a cancelled wait
      expect(await a.add("n", 1)).toBe(4);
      a.close();
      b.close();
    } finally {
      agent.stop();
    }
  });

  const rankEnv = (rank: number, port: number, extra: Record<string, string> = {}) => ({
    RANK: String(rank), WORLD_SIZE: "2", LOCAL_RANK: String(rank), LOCAL_WORLD_SIZE: "2", GROUP_RANK: "0",
    MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port), TORCHELASTIC_RUN_ID: "job1", TORCHELASTIC_RESTART_COUNT: "0",
    TORCHELASTIC_MAX_RESTARTS: "0", TORCHELASTIC_USE_AGENT_STORE: "True", OLMO_STORE_TIMEOUT_S: "30", ...extra,
  });
  const trainRanks = (runDir: string, port: number, extra: Record<string, string> = {}) =>
    Promise.all([0, 1].map((r) => olmo(["train", job.cfgPath, `--run-dir=${runDir}`, "--quiet"], rankEnv(r, port, extra))));

  test("two ranks as torchrun starts them train data parallel through the agent's store, as one process does", async () => {
    const agent = startAgentStore();
    try {
      const [r0, r1] = await trainRanks(join(job.dir, "dp2"), agent.port);
      expect({ code0: r0.code, err0: r0.err, code1: r1.code, err1: r1.err }).toEqual({ code0: 0, err0: "", code1: 0, err1: "" });
      expect(r0.out).toContain("data parallel × 2 (ZeRO-1)");
      expect(listCheckpoints(join(job.dir, "dp2")).at(-1)?.name).toBe("stage1-step6-tokens1B");
      // the ranks met in the agent's store, under this attempt's prefix
      expect([...agent.keys.keys()].some((k) => k.startsWith("olmo/job1/attempt0/barrier/olmo/init/"))).toBe(true);
      const one = await olmo(["train", job.cfgPath, `--run-dir=${join(job.dir, "one")}`, "--quiet"]);
      expect(one.code).toBe(0);
      const [a, b] = [metrics(join(job.dir, "dp2")), metrics(join(job.dir, "one"))];
      expect(a.map((m) => m.step)).toEqual(b.map((m) => m.step));
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i].loss - b[i].loss)).toBeLessThan(1e-4 * Math.abs(b[i].loss));
    } finally {
      agent.stop();
    }
  }, 60_000);

  test("OLMO_STORE_PORT: rank 0 hosts olmo's own store on another port instead", async () => {
    const agent = startAgentStore(); // still holds MASTER_PORT
    try {
      const [r0, r1] = await trainRanks(join(job.dir, "own"), agent.port, { OLMO_STORE_PORT: String(freePort()) });
      expect({ code0: r0.code, code1: r1.code, err: r0.err + r1.err }).toEqual({ code0: 0, code1: 0, err: "" });
      expect(agent.keys.size).toBe(0); // nothing went to the agent's store
    } finally {
      agent.stop();
    }
  }, 60_000);

  test("without the agent-store flag, rank 0 finds MASTER_PORT taken and says so in one line", async () => {
    const agent = startAgentStore();
    try {
      const r0 = await olmo(["train", job.cfgPath, `--run-dir=${join(job.dir, "taken")}`, "--quiet"], rankEnv(0, agent.port, { TORCHELASTIC_USE_AGENT_STORE: "False" }));
      expect(r0.code).toBe(2);
      expect(r0.err.trim()).toMatch(new RegExp(`^olmo: error: cannot host the rendezvous store on 127\\.0\\.0\\.1:${agent.port}: .*\\(choose another MASTER_PORT / --master-port\\)$`));
    } finally {
      agent.stop();
    }
  }, 30_000);
});
