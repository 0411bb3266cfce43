// A checkpoint given on the command line: a run folder means its newest complete checkpoint
// (src/checkpoint/locate.ts), and the command says which one it uses (on stderr: stdout stays the
// command's own output).
import { resolveCheckpointArg } from "../checkpoint/locate.ts";

export function checkpointArg(given: string): string {
  const r = resolveCheckpointArg(given);
  if (r.note) console.error(r.note);
  return r.path;
}
