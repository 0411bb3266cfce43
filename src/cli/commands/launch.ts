// olmo launch --nproc-per-node N [--nnodes M --node-rank R --master-addr A --master-port P] -- <olmo command ...>
import { join } from "node:path";
import { launch, selfCommand } from "../../parallel/launch/launcher.ts";
import { type CommandSpec, req } from "../args.ts";

export const launchCommand: CommandSpec = {
  name: "launch",
  summary: "Run N ranks of an olmo command on this node (torchrun-style; one process per GPU)",
  usage: "olmo launch --nproc-per-node N [--nnodes M --node-rank R --master-addr A --master-port P] [--max-restarts K] [--exec] -- <command> [args]",
  options: [
    { name: "nproc-per-node", type: "number", help: "ranks to start on this node", metavar: "N" },
    { name: "nnodes", type: "number", help: "nodes in the job", default: 1, metavar: "M" },
    { name: "node-rank", type: "number", help: "this node's index (global rank = node-rank × N + local rank)", default: 0, metavar: "R" },
    { name: "master-addr", type: "string", help: "host of rank 0 (it hosts the rendezvous store)", default: "127.0.0.1", metavar: "A" },
    { name: "master-port", type: "number", help: "store port (default: a free port on one node, 29500 on several)", metavar: "P" },
    { name: "max-restarts", type: "number", help: "start all local ranks again this many times when one fails (they resume from the newest checkpoint)", default: 0, metavar: "N" },
    { name: "exec", type: "boolean", help: "run the command after -- as is, not as an olmo subcommand (like torchrun --no-python)" },
  ],
  commandAfterDashDash: true,
  async run(args) {
    const nproc = req<number>(args, "nproc-per-node", "launch");
    const cmd = args.opts.exec ? args.positional : [...selfCommand(join(import.meta.dir, "../main.ts")), ...args.positional];
    return launch({
      nprocPerNode: nproc,
      nnodes: args.opts.nnodes as number,
      nodeRank: args.opts["node-rank"] as number,
      masterAddr: args.opts["master-addr"] as string,
      masterPort: args.opts["master-port"] as number | undefined,
      maxRestarts: args.opts["max-restarts"] as number,
      cmd: args.positional.length ? cmd : [],
    });
  },
};
