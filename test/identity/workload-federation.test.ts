import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { StrongroomError } from '../../src/core/errors.js';
import type { ErrorCode } from '../../src/core/errors.js';
import { JwtVerifier } from '../../src/identity/jwt-verifier.js';
import type { VerifiedToken } from '../../src/identity/jwt-verifier.js';
import type { OutboundPolicy } from '../../src/identity/outbound-fetch.js';
import {
  checkFederationRules,
  exchangeWorkloadToken,
  matchFederationRule,
  subjectMatches,
} from '../../src/identity/workload-federation.js';
import type { FederationRule } from '../../src/identity/workload-federation.js';
import { startTokenIssuer } from '../support/token-issuer.js';
import type { TokenIssuer } from '../support/token-issuer.js';

const policy: OutboundPolicy = {
  allowHosts: ['127.0.0.1'],
  timeoutMs: 5000,
  maxBytes: 1 << 16,
  maxRedirects: 0,
};
const GITHUB = 'https://token.actions.githubusercontent.com';
const CLUSTER = 'https://kubernetes.default.svc.cluster.local';

async function rejection(promise: Promise<unknown>, code: ErrorCode = 'unauthenticated'): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected a rejection').toBeInstanceOf(StrongroomError);
  expect((err as StrongroomError).code).toBe(code);
  return (err as StrongroomError).message;
}

function token(
  subject: string,
  claims: Record<string, unknown> = {},
  issuer = GITHUB,
  audience = ['strongroom'],
) {
  return {
    issuer,
    subject,
    audience,
    claims: { iss: issuer, sub: subject, aud: audience, ...claims },
    expiresAt: new Date(Date.now() + 300_000),
  } satisfies VerifiedToken;
}

const mainBranch: FederationRule = {
  issuer: GITHUB,
  audience: 'strongroom',
  subject: 'repo:acme/models:ref:refs/heads/main',
  claims: { repository: 'acme/models', ref: 'refs/heads/main' },
  serviceAccount: 'ci-publisher',
  maxTtlSeconds: 900,
};
const anyBranch: FederationRule = {
  issuer: GITHUB,
  audience: 'strongroom',
  subject: 'repo:acme/models:*',
  claims: { repository: 'acme/models' },
  serviceAccount: 'ci-reader',
  maxTtlSeconds: 300,
};
const trainers: FederationRule = {
  issuer: CLUSTER,
  audience: 'strongroom',
  subject: 'system:serviceaccount:ml-prod:*',
  serviceAccount: 'trainer',
  maxTtlSeconds: 3600,
};

describe('matchFederationRule', () => {
  const rules = [mainBranch, anyBranch, trainers];
  const onMain = { repository: 'acme/models', ref: 'refs/heads/main' };

  it('the first matching rule wins, in order', () => {
    expect(matchFederationRule(token('repo:acme/models:ref:refs/heads/main', onMain), rules)).toBe(
      mainBranch,
    );
    expect(
      matchFederationRule(token('repo:acme/models:ref:refs/heads/main', onMain), [anyBranch, mainBranch]),
    ).toBe(anyBranch);
  });

  it('claim constraints must all be equal strings', () => {
    const dev = { repository: 'acme/models', ref: 'refs/heads/dev' };
    expect(
      matchFederationRule(token('repo:acme/models:ref:refs/heads/main', dev), [mainBranch]),
    ).toBeUndefined();
    expect(
      matchFederationRule(token('repo:acme/models:ref:refs/heads/main', {}), [mainBranch]),
    ).toBeUndefined();
    const numeric = { ...mainBranch, claims: { repository_id: '42' } };
    expect(matchFederationRule(token(mainBranch.subject, { repository_id: 42 }), [numeric])).toBeUndefined();
    expect(matchFederationRule(token(mainBranch.subject, { repository_id: '42' }), [numeric])).toBe(numeric);
  });

  it('issuer and audience must match exactly', () => {
    const subject = 'system:serviceaccount:ml-prod:trainer';
    expect(matchFederationRule(token(subject, {}, CLUSTER), rules)).toBe(trainers);
    expect(matchFederationRule(token(subject, {}, `${CLUSTER}/`), rules)).toBeUndefined();
    expect(matchFederationRule(token(subject, {}, CLUSTER, ['Strongroom']), rules)).toBeUndefined();
    expect(matchFederationRule(token(subject, {}, CLUSTER, ['other', 'strongroom']), rules)).toBe(trainers);
  });

  it('an exact subject matches nothing longer or shorter', () => {
    const exact = { ...mainBranch, claims: {} };
    expect(matchFederationRule(token(`${mainBranch.subject}-evil`), [exact])).toBeUndefined();
    expect(matchFederationRule(token('repo:acme/models:ref:refs/heads/mai'), [exact])).toBeUndefined();
  });

  it('no match gives undefined', () => {
    expect(matchFederationRule(token('repo:evil/models:ref:refs/heads/main', onMain), rules)).toBeUndefined();
    expect(matchFederationRule(token('anything'), [])).toBeUndefined();
  });
});

describe('subject globs', () => {
  it('`*` matches any run of characters, including none and across `/` and `:`', () => {
    expect(subjectMatches('repo:acme/*', 'repo:acme/')).toBe(true);
    expect(subjectMatches('repo:acme/*', 'repo:acme/models:ref:refs/heads/main')).toBe(true);
    expect(subjectMatches('repo:*/models:*', 'repo:acme/models:environment:prod')).toBe(true);
    expect(subjectMatches('*:ref:refs/heads/main', 'repo:a/b:ref:refs/heads/main')).toBe(true);
    expect(subjectMatches('repo:acme/*:ref:refs/heads/main', 'repo:acme/x:ref:refs/heads/dev')).toBe(false);
  });

  it('no other character is special: `?`, `[`, `.` and `\\` are literal', () => {
    expect(subjectMatches('system:serviceaccount:ml.prod:*', 'system:serviceaccount:mlxprod:trainer')).toBe(
      false,
    );
    expect(subjectMatches('repo:acme/mode?', 'repo:acme/models')).toBe(false);
    expect(subjectMatches('repo:acme/mode?', 'repo:acme/mode?')).toBe(true);
    expect(subjectMatches('repo:[ab]', 'repo:a')).toBe(false);
    expect(subjectMatches('a\\*', 'a\\anything')).toBe(true);
  });

  it('a crafted subject cannot make matching blow up', () => {
    expect(subjectMatches('*a*a*a*a*a*a*a*b', 'a'.repeat(5000))).toBe(false);
  });
});

describe('checkFederationRules', () => {
  it('refuses a bare `*` subject without claim constraints, which would admit every workload of the issuer', () => {
    for (const subject of ['*', '**']) {
      expect(() => checkFederationRules([{ ...trainers, subject }])).toThrowError(
        expect.objectContaining({ code: 'config_invalid' }) as Error,
      );
    }
    expect(() =>
      checkFederationRules([{ ...trainers, subject: '*', claims: { repository: 'acme/models' } }]),
    ).not.toThrow();
  });

  it('refuses empty fields and lifetimes that are not 1 second to 1 day', () => {
    for (const bad of [
      { serviceAccount: '' },
      { issuer: '' },
      { audience: '' },
      { subject: '' },
      { maxTtlSeconds: 0 },
      { maxTtlSeconds: 86_401 },
      { maxTtlSeconds: 1.5 },
      { claims: { repository: 42 as unknown as string } },
    ]) {
      expect(() => checkFederationRules([{ ...mainBranch, ...bad }]), JSON.stringify(bad)).toThrowError(
        expect.objectContaining({ code: 'config_invalid' }) as Error,
      );
    }
  });
});

describe('exchangeWorkloadToken', () => {
  let ci: TokenIssuer;
  let stranger: TokenIssuer;
  let rules: FederationRule[];
  // A fixed clock, so lifetimes come out exact.
  const nowSeconds = Math.floor(Date.now() / 1000);
  const clock = () => new Date(nowSeconds * 1000);
  const github = (extra: Record<string, unknown> = {}) => ({
    sub: 'repo:acme/models:ref:refs/heads/main',
    aud: 'strongroom',
    repository: 'acme/models',
    ref: 'refs/heads/main',
    iat: nowSeconds,
    exp: nowSeconds + 300,
    ...extra,
  });

  beforeAll(async () => {
    ci = await startTokenIssuer(['ES256']);
    stranger = await startTokenIssuer(['ES256']);
    rules = [
      { ...mainBranch, issuer: ci.issuer },
      { ...anyBranch, issuer: ci.issuer },
    ];
  });

  afterAll(async () => {
    await ci.close();
    await stranger.close();
  });

  const verifier = (audiences = ['strongroom']) =>
    new JwtVerifier([{ issuer: ci.issuer, audiences, algorithms: ['ES256'] }], policy, clock);

  it('a token matching a rule is exchanged for its service account, lifetime capped by the token expiry', async () => {
    const result = await exchangeWorkloadToken(await ci.sign(github(), { alg: 'ES256' }), verifier(), rules);
    expect(result.rule.serviceAccount).toBe('ci-publisher');
    expect(result.token.subject).toBe('repo:acme/models:ref:refs/heads/main');
    expect(result.ttlSeconds).toBe(300);
  });

  it('the lifetime is capped by the rule when the token lives longer', async () => {
    const jwt = await ci.sign(
      github({ ref: 'refs/heads/dev', sub: 'repo:acme/models:ref:refs/heads/dev', exp: nowSeconds + 3600 }),
      {
        alg: 'ES256',
      },
    );
    const result = await exchangeWorkloadToken(jwt, verifier(), rules);
    expect(result.rule.serviceAccount).toBe('ci-reader');
    expect(result.ttlSeconds).toBe(300);
  });

  it('a token for another audience is rejected', async () => {
    await rejection(
      exchangeWorkloadToken(
        await ci.sign(github({ aud: 'sts.amazonaws.com' }), { alg: 'ES256' }),
        verifier(),
        rules,
      ),
    );
    // Accepted by the verifier, but no rule is for that audience.
    const message = await rejection(
      exchangeWorkloadToken(
        await ci.sign(github({ aud: 'other' }), { alg: 'ES256' }),
        verifier(['strongroom', 'other']),
        rules,
      ),
    );
    expect(message).toContain('no federation rule');
  });

  it('a token whose claims miss the constraints is rejected', async () => {
    const jwt = await ci.sign(
      github({ repository: 'evil/models', sub: 'repo:evil/models:ref:refs/heads/main' }),
      {
        alg: 'ES256',
      },
    );
    await rejection(exchangeWorkloadToken(jwt, verifier(), rules));
  });

  it('a token from an unconfigured issuer is rejected without any fetch', async () => {
    const fresh = verifier();
    const jwt = await stranger.sign(github(), { alg: 'ES256' });
    const before = { ...ci.hits };
    await rejection(
      exchangeWorkloadToken(jwt, fresh, [...rules, { ...mainBranch, issuer: stranger.issuer }]),
    );
    expect(stranger.hits).toEqual({ discovery: 0, jwks: 0 });
    expect(ci.hits).toEqual(before);
  });

  it('an expired token, or one inside the skew window with no life left, is rejected', async () => {
    await rejection(
      exchangeWorkloadToken(
        await ci.sign(github({ exp: nowSeconds - 120 }), { alg: 'ES256' }),
        verifier(),
        rules,
      ),
    );
    const message = await rejection(
      exchangeWorkloadToken(
        await ci.sign(github({ exp: nowSeconds - 10 }), { alg: 'ES256' }),
        verifier(),
        rules,
      ),
    );
    expect(message).toContain('expires too soon');
  });

  it('rules are validated before any token is looked at', async () => {
    await rejection(
      exchangeWorkloadToken('not even a token', verifier(), [{ ...trainers, subject: '*' }]),
      'config_invalid',
    );
  });
});
