// The notation of an axis label as the report writes them: fixed ("0.002", "12,000"), exponential
// ("5.0e-5"), or zero (either). An axis is in one notation when its non-zero labels share one.
export const notation = (label: string): string =>
  label === "0" ? "zero" : /^-?\d{1,3}(,\d{3})*(\.\d+)?$/.test(label) ? "fixed" : /^-?\d(\.\d+)?e-?\d+$/.test(label) ? "exponential" : `other: ${label}`;

export const oneNotation = (labels: string[]): boolean => new Set(labels.map(notation).filter((n) => n !== "zero")).size <= 1;
