import { expect } from 'vitest';
import { StrongroomError, type ErrorCode } from '../../src/core/errors.js';

/** Awaits `promise`, expects it to reject with a StrongroomError carrying `code`, and returns that error. */
export async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<StrongroomError> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a StrongroomError with code ${code}`).toBeInstanceOf(StrongroomError);
  const domainError = err as StrongroomError;
  expect(domainError.code).toBe(code);
  return domainError;
}
