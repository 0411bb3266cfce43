// A user mistake (bad config, missing file, corrupt input) is a UserError: the CLI prints its
// one-line message and exits with code 2. Anything else is a bug and keeps its stack trace.
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UserError";
  }
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
