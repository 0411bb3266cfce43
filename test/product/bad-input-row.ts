// One row of the bad-input table (docs/bad-input.md): bad-input.test.ts runs every row, and the
// files that contribute rows (bad-input-*.ts) build them in this shape.
export interface BadInputRow {
  /** the mistake, as the table in docs/bad-input.md names it */
  mistake: string;
  args: () => string[];
  /** the one-line message must match */
  message: RegExp;
  /** paths that must not exist afterwards (outputs that a failed command must not leave) */
  absent?: () => string[];
  env?: Record<string, string>;
  /** run with these system libraries hidden from the dynamic loader (test/support/hide-libs.ts) */
  hide?: string[];
  skip?: () => string | null;
}
