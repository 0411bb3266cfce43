// Ctrl-C and the second signal. A first SIGINT behaves as SIGTERM does (finish the step, save, exit
// 75, say how to resume), also when a terminal sends it to `olmo launch` and every rank at once (each
// rank saves once); the same signal again within the echo window is that event seen twice; a signal
// after it stops the process at once — even in the middle of an evaluation or a save, when no
// JavaScript handler could run (the native library catches the signals: src/parallel/stop-signals.ts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadCheckpoint } from "../../src/checkpoint/native/read.ts";
import { listCheckpoints } from "../../src/checkpoint/naming.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { metrics, olmo, root, writeTinyJob } from "../parallel/run-compare.ts";

let dir: string, cfgPath: string;
beforeAll(() => {
  ensureNativeBuilt("cpu");
  ({ dir, cfgPath } = writeTinyJob("stop-signals"));
  writeFileSync(join(dir, "big.u32"), Uint32Array.from({ length: 2_000_000 }, (_, i) => (i * 7 + (i >> 3)) % 250));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const long = ["--train.steps=400", "--data.allowRepetition=true", "--checkpoint.saveInterval=0", "--quiet"];
const lines = (runDir: string) => (existsSync(join(runDir, "metrics.jsonl")) ? readFileSync(join(runDir, "metrics.jsonl"), "utf8").split("\n").length - 1 : 0);

/** Start the CLI (in its own process group with `group`, as a terminal's foreground job is). */
function start(args: string[], env: Record<string, string> = {}, group = false) {
  const cmd = [process.execPath, join(root, "src/cli/main.ts"), ...args];
  return Bun.spawn(group ? ["setsid", ...cmd] : cmd, { cwd: root, env: { ...process.env, OLMO_THREADS: "1", OLMO_BACKEND: "cpu", ...env }, stdout: "pipe", stderr: "pipe" });
}

async function until(cond: () => boolean, p: { exitCode: number | null }): Promise<void> {
  while (!cond() && p.exitCode === null) await Bun.sleep(5);
}

async function finished(p: ReturnType<typeof start>) {
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { out, err, code: p.exitCode, signal: p.signalCode }; // a process ended by a signal has no exit code
}

/** The run continued to its end equals the run never stopped, bit for bit. */
async function expectResumesBitwise(stopped: string, args: string[]): Promise<void> {
  const whole = `${stopped}-whole`;
  const [w, r] = await Promise.all([olmo([...args, "--run-dir", whole, ...long]), olmo([...args, "--run-dir", stopped, ...long])]);
  expect({ w: w.err, r: r.err, code: r.code }).toEqual({ w: "", r: "", code: 0 });
  expect(metrics(stopped).map((m) => m.loss)).toEqual(metrics(whole).map((m) => m.loss));
  const a = loadCheckpoint(listCheckpoints(stopped).at(-1)!.path), b = loadCheckpoint(listCheckpoints(whole).at(-1)!.path);
  expect(Buffer.from(a.model.buffer).equals(Buffer.from(b.model.buffer))).toBe(true);
  expect(Buffer.from(a.adamV!.buffer).equals(Buffer.from(b.adamV!.buffer))).toBe(true);
}

describe("Ctrl-C (a first SIGINT) stops after the step with a checkpoint", () => {
  test("one process: exit 75, the checkpoint of the step it stopped at, how to resume; the rerun ends bitwise as an unstopped run", async () => {
    const runDir = join(dir, "one");
    const p = start(["train", cfgPath, "--run-dir", runDir, ...long]);
    await until(() => lines(runDir) >= 10, p);
    p.kill("SIGINT");
    const r = await finished(p);
    expect(r.code).toBe(75);
    const at = metrics(runDir).at(-1)!.step;
    expect(at).toBeLessThan(400);
    expect(listCheckpoints(runDir).map((c) => c.step)).toEqual([at]);
    expect(r.out).toContain(`stopped after step ${at} on SIGINT: rerun the same command to resume from ${listCheckpoints(runDir)[0].path} (exit code 75)`);
    expect(r.err).toMatch(/^olmo: SIGINT: finishing this step, then saving a checkpoint and exiting with code 75 \(rerun the same command to resume\); the same signal again \(Ctrl-C for SIGINT\), 3 s or more later, stops at once without saving\n$/);
    await expectResumesBitwise(runDir, ["train", cfgPath]);
  }, 120_000);

  test("the same Ctrl-C twice within the echo window (a terminal and a launcher both deliver it) is one stop", async () => {
    const runDir = join(dir, "echo");
    const p = start(["train", cfgPath, "--run-dir", runDir, ...long]);
    await until(() => lines(runDir) >= 5, p);
    p.kill("SIGINT");
    await Bun.sleep(30);
    p.kill("SIGINT");
    const r = await finished(p);
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 75, signal: null });
    expect(listCheckpoints(runDir)).toHaveLength(1);
  }, 60_000);

  test("olmo launch, DP=2, Ctrl-C to the whole process group: every rank saves once (one checkpoint), exit 75; the rerun resumes bitwise", async () => {
    const runDir = join(dir, "group");
    const launch = ["launch", "--nproc-per-node", "2", "--"];
    const p = start([...launch, "train", cfgPath, "--run-dir", runDir, ...long], {}, true);
    await until(() => lines(runDir) >= 10, p);
    process.kill(-p.pid, "SIGINT"); // what a terminal does: the launcher and both ranks get it
    const r = await finished(p);
    expect(r.code).toBe(75);
    expect(r.err).toContain("olmo launch: received SIGINT; every rank saved and stopped");
    const at = metrics(runDir).at(-1)!.step;
    expect(listCheckpoints(runDir).map((c) => c.step)).toEqual([at]);
    expect(r.out.split("\n").filter((l) => l.includes(`stopped after step ${at} on SIGINT`))).toHaveLength(1); // rank 0's line, once
    expect(r.err.split("\n").filter((l) => l.includes("olmo: SIGINT: finishing this step"))).toEqual([`[rank 0] olmo: SIGINT: finishing this step, then saving a checkpoint and exiting with code 75 (rerun the same command to resume); the same signal again (Ctrl-C for SIGINT), 3 s or more later, stops at once without saving`]);
    await expectResumesBitwise(runDir, [...launch, "train", cfgPath]);
  }, 180_000);
});

describe("a second signal, after the echo window, stops at once", () => {
  test("during an evaluation (no JavaScript runs until it ends): the process ends by SIGINT within a second", async () => {
    const runDir = join(dir, "in-eval");
    const evalSet = JSON.stringify([{ name: "big", paths: [join(dir, "big.u32")], instances: "windows" }]);
    const p = start(["train", cfgPath, "--run-dir", runDir, "--eval.atStart", `--eval.sets=${evalSet}`]);
    let out = "";
    const reader = (async () => { for await (const c of p.stdout as ReadableStream<Uint8Array>) out += new TextDecoder().decode(c); })();
    await until(() => /^eval: big/m.test(out), p); // the evaluation at the start begins right after this line
    p.kill("SIGINT");
    await Bun.sleep(3300);
    const t0 = performance.now();
    p.kill("SIGINT");
    await p.exited;
    const ms = performance.now() - t0;
    await reader;
    const err = await new Response(p.stderr).text();
    expect({ signal: p.signalCode, exitCode: p.exitCode }).toEqual({ signal: "SIGINT", exitCode: null });
    expect(ms).toBeLessThan(1500); // the evaluation of 2M tokens takes several times that
    expect(err).toContain("olmo: a second SIGINT: stopping now, without saving the steps since the last checkpoint (rerun the same command to resume from it)\n");
    expect(listCheckpoints(runDir)).toEqual([]);
  }, 60_000);

  test("during a save: the save is cut short, nothing looks complete, the rerun starts cleanly", async () => {
    const runDir = join(dir, "in-save");
    // a model whose compressed save lasts a while; a short echo window (OLMO_STOP_ECHO_MS) to reach it
    const bigger = ["--model.dModel=384", "--model.vocabSize=32000", "--checkpoint.compress=true"];
    const p = start(["train", cfgPath, "--run-dir", runDir, ...long, ...bigger], { OLMO_STOP_ECHO_MS: "100" });
    await until(() => lines(runDir) >= 3, p);
    p.kill("SIGTERM");
    const first = performance.now();
    const saving = () => existsSync(runDir) && readdirSync(runDir).some((f) => f.includes(".tmp-"));
    await until(saving, p);
    await until(() => performance.now() - first > 150, p);
    expect(p.exitCode).toBeNull(); // still saving
    p.kill("SIGTERM");
    const r = await finished(p);
    expect({ signal: r.signal, code: r.code }).toEqual({ signal: "SIGTERM", code: null });
    expect(r.err).toContain("olmo: a second SIGTERM: stopping now");
    expect(listCheckpoints(runDir)).toEqual([]); // the cut save left only its temporary folder
    const again = await olmo(["train", cfgPath, "--run-dir", runDir, "--train.steps=2", "--accept-change=train.steps", ...bigger]);
    expect({ code: again.code, err: again.err }).toEqual({ code: 0, err: "" });
    expect(readdirSync(runDir).filter((f) => f.includes(".tmp-"))).toEqual([]); // the debris was pruned
  }, 120_000);
});
