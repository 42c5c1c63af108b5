/** A count, size or offset from the wire: a safe integer >= 0 (JSON numbers can be anything else). */
export function isWholeNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
