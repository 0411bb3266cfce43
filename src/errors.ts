// A user mistake (bad config, missing file, corrupt input) is a UserError: the CLI prints its
// one-line message and exits with code 2. Anything else is a bug and keeps its stack trace.
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UserError";
  }
}

/**
 * A message as one line: control characters (a newline in a path, an escape sequence) are written
 * as JSON escapes, so every error is one line on stderr whatever the names it quotes hold.
 */
export function oneLine(message: string): string {
  const named: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };
  return message.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => named[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

export function userError(message: string): never {
  throw new UserError(message);
}

/** The loss or the gradient stopped being finite: a user situation (LR, eps, data), not a bug. */
export class DivergedError extends UserError {
  constructor(message: string, readonly step: number) {
    super(message);
    this.name = "DivergedError";
  }
}

/**
 * Exit code of a run that stopped on a preemption signal after saving its checkpoint (EX_TEMPFAIL:
 * run it again to resume). Launchers neither count it as a failure nor restart on it.
 */
export const PREEMPTED_EXIT_CODE = 75;

/** Exit code of a user error (UserError): the same input fails the same way, so nothing restarts on it. */
export const USER_ERROR_EXIT_CODE = 2;
