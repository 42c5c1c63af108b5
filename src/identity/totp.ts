import { generateSecret, generateURI, verify } from 'otplib';

/** RFC 6238 defaults that every authenticator app supports: SHA-1, 6 digits, 30-second steps. */
const PERIOD = 30;

export function newTotpSecret(): string {
  return generateSecret();
}

/** The `otpauth://` URI an authenticator app scans (Key Uri Format). */
export function totpUri(secret: string, issuer: string, account: string): string {
  return generateURI({ issuer, label: account, secret });
}

/**
 * RFC 6238 verification with one step of clock drift either way, refusing any step at or before
 * `afterStep`: a code is good once (A5), and a code two steps old is refused. Returns the step used, for the
 * caller to record with a compare-and-set.
 */
export async function verifyTotp(
  secret: string,
  code: string,
  now: Date,
  afterStep: number,
): Promise<number | undefined> {
  if (!/^\d{6}$/.test(code)) return undefined;
  const result = await verify({
    secret,
    token: code,
    epoch: Math.floor(now.getTime() / 1000),
    epochTolerance: PERIOD,
    ...(afterStep > 0 ? { afterTimeStep: afterStep } : {}),
  });
  return result.valid && 'timeStep' in result ? result.timeStep : undefined;
}
