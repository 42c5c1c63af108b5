import { StrongroomError, quote } from '../core/errors.js';
import type { JwtVerifier, VerifiedToken } from './jwt-verifier.js';

/**
 * Maps workload tokens from a trusted issuer (a CI system, a Kubernetes cluster) to a Strongroom service
 * account, so the workload needs no stored secret.
 */
export interface FederationRule {
  /** Exact match with the token's `iss`. */
  readonly issuer: string;
  /** Must be one of the token's `aud` values, exactly. */
  readonly audience: string;
  /**
   * The token's `sub`: exact, or a pattern where `*` matches any run of characters, including none and
   * including `/` and `:`. No other character is special; there is no escape, so a rule cannot match a
   * literal `*`. Because `*` crosses separators, pin what matters with `claims` (repository, ref, namespace).
   */
  readonly subject: string;
  /** Further claims that must be strings equal to these values. */
  readonly claims?: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  /** Upper bound on the lifetime of what the exchange grants; the token's own expiry may cut it shorter. */
  readonly maxTtlSeconds: number;
}

export interface WorkloadExchange {
  readonly rule: FederationRule;
  readonly token: VerifiedToken;
  readonly ttlSeconds: number;
}

/** A day: federation grants short-lived credentials; anything longer is almost surely a misconfiguration. */
const MAX_TTL_SECONDS = 24 * 60 * 60;

/**
 * Whether `subject` matches `pattern`, where `*` matches any run of characters. Iterative with one backtrack
 * point, so worst-case time is O(pattern x subject) and no crafted `sub` can make it blow up (unlike a regex).
 */
export function subjectMatches(pattern: string, subject: string): boolean {
  let p = 0;
  let s = 0;
  let star = -1;
  let resume = 0;
  while (s < subject.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === subject[s]) {
      p += 1;
      s += 1;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p;
      resume = s;
      p += 1;
    } else if (star !== -1) {
      p = star + 1;
      resume += 1;
      s = resume;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p += 1;
  return p === pattern.length;
}

function invalidRule(index: number, message: string): StrongroomError {
  return new StrongroomError('config_invalid', `federation rule ${index + 1}: ${message}`);
}

/**
 * Refuses rules that would trust too much: empty fields, a lifetime that is not a positive number of seconds
 * up to a day, and a subject of only `*` with no claim constraint, which would admit every workload of a shared
 * issuer (every GitHub repository in the world, for `token.actions.githubusercontent.com`).
 */
export function checkFederationRules(rules: readonly FederationRule[]): void {
  rules.forEach((rule, index) => {
    for (const field of ['issuer', 'audience', 'subject', 'serviceAccount'] as const) {
      if (typeof rule[field] !== 'string' || rule[field] === '')
        throw invalidRule(index, `${field} is empty`);
    }
    if (
      !Number.isInteger(rule.maxTtlSeconds) ||
      rule.maxTtlSeconds <= 0 ||
      rule.maxTtlSeconds > MAX_TTL_SECONDS
    ) {
      throw invalidRule(index, `max ttl must be an integer from 1 to ${MAX_TTL_SECONDS} seconds`);
    }
    const claims = Object.entries(rule.claims ?? {});
    if (claims.some(([name, value]) => name === '' || typeof value !== 'string')) {
      throw invalidRule(index, 'claim constraints must map claim names to strings');
    }
    if (/^\**$/.test(rule.subject) && claims.length === 0) {
      throw invalidRule(
        index,
        `subject ${quote(rule.subject)} matches every workload; add claim constraints`,
      );
    }
  });
}

function ruleMatches(token: VerifiedToken, rule: FederationRule): boolean {
  if (token.issuer !== rule.issuer || !token.audience.includes(rule.audience)) return false;
  if (!subjectMatches(rule.subject, token.subject)) return false;
  return Object.entries(rule.claims ?? {}).every(([name, value]) => token.claims[name] === value);
}

/** The first rule, in order, that a verified workload token satisfies (issuer and audience exact), if any. */
export function matchFederationRule(
  token: VerifiedToken,
  rules: readonly FederationRule[],
): FederationRule | undefined {
  return rules.find((rule) => ruleMatches(token, rule));
}

/**
 * Workload identity federation (RFC 8693-style token exchange, threats A1-A4): verifies the workload's token
 * with the configured issuers only, maps it to a service account through the first matching rule, and bounds
 * the lifetime by both the rule and the token's own expiry.
 */
export async function exchangeWorkloadToken(
  jwt: string,
  verifier: JwtVerifier,
  rules: readonly FederationRule[],
): Promise<WorkloadExchange> {
  checkFederationRules(rules);
  const token = await verifier.verify(jwt);
  const rule = matchFederationRule(token, rules);
  if (rule === undefined) {
    throw new StrongroomError(
      'unauthenticated',
      `no federation rule accepts subject ${quote(token.subject)}`,
    );
  }
  const remaining = Math.floor((token.expiresAt.getTime() - verifier.now().getTime()) / 1000);
  const ttlSeconds = Math.min(rule.maxTtlSeconds, remaining);
  if (ttlSeconds <= 0) throw new StrongroomError('unauthenticated', 'the workload token expires too soon');
  return { rule, token, ttlSeconds };
}
