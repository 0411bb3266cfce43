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
