// The command-line and run-folder rows of the bad-input table (docs/bad-input.md): override
// mistakes named with the field meant, unknown commands and options with the nearest name,
// `olmo launch` without `--`, a run folder without a checkpoint where one is expected, a resume
// under changed settings, the stop signals' echo window, a missing system library.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cpuLibraryNeeds, hidingUnavailable } from "../support/hide-libs.ts";
import type { BadInputRow } from "./bad-input-row.ts";

/** copies of the finished 2-step run the resume rows continue */
export const RUN_UX_AT2_COPIES = ["at2-longer", "at2-lr"];

export function runUxRows(p: (...x: string[]) => string, train: (id: string, ...extra: string[]) => string[], runDir: (id: string) => string): BadInputRow[] {
  const cfg = p("cfg.ts");
  return [
    { mistake: "override field typo, with the field meant", args: () => train("stpes", "--train.stpes=5"), message: /train: --train\.stpes on the command line is not a config field; did you mean --train\.steps\?$/, absent: () => [runDir("stpes")] },
    { mistake: "override field in snake_case", args: () => train("snake", "--train.global_batch_instances=8"), message: /--train\.global_batch_instances on the command line is not a config field; config fields are camelCase: did you mean --train\.globalBatchInstances\?$/, absent: () => [runDir("snake")] },
    { mistake: "override value that is broken JSON", args: () => train("badjson", '--eval.sets=[{"name":"x",]'), message: /--eval\.sets=\[\{"name":"x",\] on the command line is not valid JSON \(/, absent: () => [runDir("badjson")] },
    { mistake: "override list given as plain text", args: () => train("nolist", "--data.paths=tokens.u32"), message: /--data\.paths=tokens\.u32 on the command line: invalid config at data\.paths: .*expected array, received string \(give JSON, e\.g\. --data\.paths='\[\.\.\.\]'\)$/, absent: () => [runDir("nolist")] },
    { mistake: "override of a number field without a value", args: () => ["train", cfg, "--train.steps", "--quiet"], message: /train: override --train\.steps needs a value \(--train\.steps=VALUE\)$/ },
    { mistake: "option typo, with the option meant", args: () => ["train", cfg, "--stop-afte=3"], message: /train: unknown option --stop-afte; did you mean --stop-after\? \(see olmo train --help\)$/ },
    { mistake: "config field given without its section", args: () => ["train", cfg, "--steps=3"], message: /train: unknown option --steps; did you mean --train\.steps\? \(see olmo train --help\)$/ },
    { mistake: "two-word command with a typo in its second word", args: () => ["ckpt", "inf", p("ckpt", "stage1-step3-tokens1B")], message: /unknown command "ckpt inf"; did you mean ckpt info\? \(ckpt info\)$/ },
    { mistake: "two-word command without its second word", args: () => ["data"], message: /"data" needs one of its subcommands \(data order, data inspect\)$/ },
    { mistake: "olmo launch without -- before the command", args: () => ["launch", "--nproc-per-node", "2", "train", cfg], message: /launch: the command to run goes after --: olmo launch --nproc-per-node 2 -- train .*cfg\.ts$/ },
    { mistake: "a run folder without a complete checkpoint where a checkpoint is expected", args: () => ["generate", p("run-nockpt"), "--prompt", "a"], message: /".*run-nockpt" is a run folder without a complete checkpoint \(no stage…-step…-tokens…B folder with metadata\.msgpack\); train until its first save, or give a checkpoint$/ },
    { mistake: "resume under a longer schedule (train.steps changed)", args: () => train("at2-longer", "--train.steps=4", "--data.allowRepetition=true"),
      message: /".*at2-longer\/stage1-step2-tokens1B" was trained with other settings: train\.steps 2 → 4 \(the cosine schedule spans the run: the LR of every step left changes\); resuming would change what the next steps compute\. To continue with the new values add --accept-change=train\.steps; /,
      absent: () => [join(runDir("at2-longer"), "stage1-step4-tokens1B")] },
    { mistake: "resume under another learning rate and batch", args: () => train("at2-lr", "--optim.lr=0.02", "--train.globalBatchInstances=2", "--train.microBatchInstances=1"),
      message: /was trained with other settings: train\.globalBatchInstances 4 → 2, optim\.lr 0\.01 → 0\.02; .*add --accept-change=train\.globalBatchInstances,optim\.lr; /,
      absent: () => [join(runDir("at2-lr"), "stage1-step4-tokens1B")] },
    { mistake: "--accept-change naming no config field", args: () => train("accept", "--accept-change=optim.lrr"), message: /train: --accept-change optim\.lrr is not a config field; did you mean optim\.lr\?$/, absent: () => [runDir("accept")] },
    { mistake: "OLMO_STOP_ECHO_MS not a number", args: () => train("echo"), env: { OLMO_STOP_ECHO_MS: "3s" }, message: /OLMO_STOP_ECHO_MS="3s" must be a whole number of milliseconds from 0 to 600000$/, absent: () => [join(runDir("echo"), "metrics.jsonl")] },
    { mistake: "prepare --txt-documents not a way to split", args: () => ["prepare", p("doc.txt"), "--out", p("prep-txt"), "--txt-documents", "pages"], message: /prepare: --txt-documents must be one of paragraphs, lines, file, got "pages"$/, absent: () => [p("prep-txt")] },
    // the GEMM library is the one this build linked (oneDNN, else OpenBLAS); OpenMP in both
    ...cpuLibraryNeeds().map(({ soname, pkg }, i) => ({
      mistake: i === 0 ? "the CPU library's GEMM library not installed" : `${soname} not installed (the CPU library's OpenMP)`,
      args: () => train(`nolib-${soname}`), hide: [soname],
      message: new RegExp(`cannot load libolmo_cpu\\.so \\(.*\\): it needs ${soname.replaceAll(".", "\\.")}, which is not installed: install it with apt-get install ${pkg} `),
      absent: () => [runDir(`nolib-${soname}`)], skip: hidingUnavailable,
    })),
  ];
}

/** Inputs of the rows above (the at2 copies are made with the table's other resume rows). */
export function setupRunUxBadInputs(p: (...x: string[]) => string): void {
  // a folder `olmo train` wrote before its first save: its run config, no checkpoint
  mkdirSync(p("run-nockpt"));
  writeFileSync(p("run-nockpt", "config.json"), JSON.stringify({ name: "bad", model: {}, train: {}, optim: {} }));
  writeFileSync(p("run-nockpt", "metrics.jsonl"), "");
}
