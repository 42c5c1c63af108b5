/** Time comes from one injectable place so tests can move it (expiry, retention) without sleeping. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
