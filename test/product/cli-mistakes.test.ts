// Natural command-line mistakes and what they get: a bare boolean override is true and swallows
// nothing; an override's mistakes name the command line and the nearest field; unknown commands and
// options get the nearest name; `olmo launch` without `--` is refused with the right form;
// `olmo train CONFIG --help` shows CONFIG's values; `--print-config` prints and exits.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "../../src/cli/args.ts";
import { trainCommand } from "../../src/cli/commands/train.ts";
import { editDistance, nearest } from "../../src/cli/suggest.ts";
import { olmo, writeTinyJob } from "../parallel/run-compare.ts";

let dir: string, cfgPath: string;
beforeAll(() => ({ dir, cfgPath } = writeTinyJob("cli-mistakes")));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The one stderr line of a refused command (exit 2). */
async function refusal(args: string[]): Promise<string> {
  const r = await olmo(args, { OLMO_BACKEND: "cpu" });
  expect({ code: r.code, lines: r.err.trim().split("\n").length }).toEqual({ code: 2, lines: 1 });
  return r.err.trim();
}

describe("a bare --a.b override", () => {
  test("of a true/false field is true and leaves the next argument alone", () => {
    expect(parseArgs(trainCommand, ["--eval.atStart", "--train.steps=5"]).overrides).toEqual([["eval.atStart", "true"], ["train.steps", "5"]]);
    expect(parseArgs(trainCommand, ["--eval.atStart", "cfg.ts"])).toMatchObject({ positional: ["cfg.ts"], overrides: [["eval.atStart", "true"]] });
    expect(parseArgs(trainCommand, ["--checkpoint.async"]).overrides).toEqual([["checkpoint.async", "true"]]);
    expect(parseArgs(trainCommand, ["--eval.atEnd", "false", "cfg.ts"])).toMatchObject({ positional: ["cfg.ts"], overrides: [["eval.atEnd", "false"]] });
  });

  test("of any other field takes the next argument as its value, unless that is an option", () => {
    expect(parseArgs(trainCommand, ["--train.steps", "7", "cfg.ts"])).toMatchObject({ positional: ["cfg.ts"], overrides: [["train.steps", "7"]] });
    expect(() => parseArgs(trainCommand, ["--train.steps", "--quiet"])).toThrow("override --train.steps needs a value");
  });

  test("end to end: the resolved config has atStart true and the 5 steps that followed it", async () => {
    const r = await olmo(["train", cfgPath, "--eval.atStart", "--train.steps=5", "--print-config"], { OLMO_BACKEND: "cpu" });
    expect(r.code).toBe(0);
    const json = JSON.parse(r.out.slice(0, r.out.indexOf("\n}\n") + 2));
    expect(json.eval.atStart).toBe(true);
    expect(json.train.steps).toBe(5);
  });
});

describe("override mistakes name the command line and the field meant", () => {
  test("a typo in a field name", async () => {
    expect(await refusal(["train", cfgPath, "--train.stpes=5"])).toBe("olmo: error: train: --train.stpes on the command line is not a config field; did you mean --train.steps?");
    expect(await refusal(["plan", cfgPath, "--optim.schedule.warmupStep=5"])).toContain("did you mean --optim.schedule.warmupSteps?");
  });

  test("snake_case gets the camelCase name", async () => {
    expect(await refusal(["train", cfgPath, "--train.global_batch_instances=8"])).toContain("config fields are camelCase: did you mean --train.globalBatchInstances?");
    expect(await refusal(["train", cfgPath, "--optim.max_grad_norm=2"])).toContain("did you mean --optim.maxGradNorm?");
  });

  test("a name with nothing near lists its section's fields", async () => {
    expect(await refusal(["train", cfgPath, "--optim.lerning_rate=1e-3"])).toMatch(/not a config field \(optim's fields: lr, beta1, .*skipStepSigmas, skipStepLoss, schedule\)$/);
  });

  test("a field below a field that is not a section", async () => {
    expect(await refusal(["train", cfgPath, "--optim.lr.value=1"])).toContain("optim.lr is a number field, not a section (set it whole: --optim.lr=VALUE)");
  });

  test("a bad value is blamed on the command line, not on the config file", async () => {
    const msg = await refusal(["train", cfgPath, "--train.steps=abc"]);
    expect(msg).toStartWith("olmo: error: --train.steps=abc on the command line: invalid config at train.steps:");
    expect(msg).not.toContain(cfgPath);
  });

  test("a JSON value that does not parse says so", async () => {
    expect(await refusal(["train", cfgPath, '--eval.sets=[{"name": "x",]'])).toMatch(/--eval\.sets=\[\{"name": "x",\] on the command line is not valid JSON \(/);
    expect(await refusal(["train", cfgPath, "--data.paths=a.npy"])).toContain("(give JSON, e.g. --data.paths='[...]')");
  });
});

describe("unknown commands and options get the nearest name", () => {
  test("commands", async () => {
    expect(await refusal(["trian"])).toMatch(/^olmo: error: unknown command "trian"; did you mean train\? \(commands: /);
    expect(await refusal(["exprot-hf"])).toContain("did you mean export-hf?");
    expect(await refusal(["ckpt", "inf", "x"])).toContain('unknown command "ckpt inf"; did you mean ckpt info?');
    expect(await refusal(["data"])).toContain('"data" needs one of its subcommands (data order, data inspect)');
  });

  test("options, and config fields given as options", async () => {
    expect(await refusal(["train", cfgPath, "--stop-afte=3"])).toContain("unknown option --stop-afte; did you mean --stop-after?");
    expect(await refusal(["train", cfgPath, "--steps=3"])).toContain("unknown option --steps; did you mean --train.steps?");
    expect(await refusal(["generate", "x", "--temprature", "0"])).toContain("did you mean --temperature?");
    expect(await refusal(["train", cfgPath, "--frobnicate"])).toBe("olmo: error: train: unknown option --frobnicate (see olmo train --help)");
  });

  test("the distance counts a swap of neighbours as one edit; far names are not suggested", () => {
    expect(editDistance("stpes", "steps")).toBe(1);
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(nearest("frobnicate", ["run-dir", "quiet", "stop-after"])).toBeNull();
  });
});

describe("olmo launch without --", () => {
  test("is refused with the right form, whatever follows", async () => {
    expect(await refusal(["launch", "--nproc-per-node", "2", "train"])).toBe("olmo: error: launch: the command to run goes after --: olmo launch --nproc-per-node 2 -- train");
    expect(await refusal(["launch", "--nproc-per-node", "2", "train", cfgPath, "--train.steps=3"]))
      .toBe(`olmo: error: launch: the command to run goes after --: olmo launch --nproc-per-node 2 -- train ${cfgPath} --train.steps=3`);
    expect(await refusal(["launch", "--nproc-per-node", "2", "--exec", "echo", "hi"])).toContain("olmo launch --nproc-per-node 2 --exec -- echo hi");
  });
});

describe("train CONFIG --help and --print-config", () => {
  test("--help shows CONFIG's values (and the command line's overrides), not the default run's", async () => {
    const stage1 = await olmo(["train", "configs/stage1.ts", "--help"]);
    expect(stage1.code).toBe(0);
    expect(stage1.out).toContain("values shown are configs/stage1.ts's:");
    expect(stage1.out).toMatch(/^  --optim\.lr\s+number\s+\(default: 0\.0006\)$/m);
    expect(stage1.out).toMatch(/^  --train\.steps\s+number\s+\(default: 721901\)$/m);
    const mine = await olmo(["train", cfgPath, "--optim.lr=0.5", "--help"]);
    expect(mine.out).toMatch(/^  --optim\.lr\s+number\s+\(default: 0\.5\)$/m);
    expect(mine.out).toMatch(/^  --model\.dModel\s+number\s+\(default: 16\)$/m);
  });

  test("--print-config prints the resolved config and the plan, and writes nothing", async () => {
    const runDir = join(dir, "runs", "printed");
    for (const flag of ["--print-config", "--dry-run"]) {
      const r = await olmo(["train", cfgPath, `--run-dir=${runDir}`, "--optim.lr=0.003", flag], { OLMO_BACKEND: "cpu" });
      expect(r.code).toBe(0);
      expect(r.out).toContain('"lr": 0.003');
      expect(r.out).toMatch(/^plan: cli-mistakes \(stage 1\)$/m);
      expect(r.out).toMatch(/^  final checkpoint    stage1-step6-tokens1B$/m);
      expect(existsSync(runDir)).toBe(false);
    }
  });
});
