import { StrongroomError } from '../core/errors.js';
import type { Action, Principal } from '../policy/authorizer.js';

/** Actions that need a recent second factor even when policy allows them (issue 4, step-up). */
export const STEP_UP_ACTIONS: ReadonlySet<Action> = new Set([
  'key:rotate',
  'audit:prune',
  'bootstrap:manage',
  'policy:manage',
  'elevation:approve',
]);

/**
 * Step-up: a signed-in user must have verified a TOTP code within `maxAgeSeconds` (at login or with
 * `POST /api/v1/auth/step-up`), else `mfa_required`, which the CLI answers by prompting for a code. Service
 * accounts have no second factor: their tokens' scope and environment bound them instead. The bootstrap token
 * is the documented break-glass credential and is exempt.
 */
export function requireRecentMfa(principal: Principal, now: Date, maxAgeSeconds: number, what: string): void {
  if (principal.kind !== 'user' || principal.authMethod === 'bootstrap-token') return;
  const at = principal.mfaAt ? Date.parse(principal.mfaAt) : Number.NaN;
  if (now.getTime() - at <= maxAgeSeconds * 1000) return;
  throw new StrongroomError(
    'mfa_required',
    `${what} needs a second-factor verification within the last ${Math.round(maxAgeSeconds / 60)} minutes`,
    { details: { maxAgeSeconds } },
  );
}
