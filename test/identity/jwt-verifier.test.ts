import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { SignJWT, base64url, exportJWK, exportSPKI, generateKeyPair, importJWK } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { StrongroomError } from '../../src/core/errors.js';
import type { ErrorCode } from '../../src/core/errors.js';
import { JwtVerifier } from '../../src/identity/jwt-verifier.js';
import type { TrustedIssuer } from '../../src/identity/jwt-verifier.js';
import type { OutboundPolicy } from '../../src/identity/outbound-fetch.js';
import { startTokenIssuer } from '../support/token-issuer.js';
import type { TokenIssuer } from '../support/token-issuer.js';

const policy: OutboundPolicy = {
  allowHosts: ['127.0.0.1'],
  timeoutMs: 5000,
  maxBytes: 1 << 16,
  maxRedirects: 0,
};
const now = () => Math.floor(Date.now() / 1000);

async function rejection(promise: Promise<unknown>, code: ErrorCode = 'unauthenticated'): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected a rejection').toBeInstanceOf(StrongroomError);
  expect((err as StrongroomError).code).toBe(code);
  return (err as StrongroomError).message;
}

/** A compact JWS assembled by hand, for headers and signatures no honest library would produce. */
function rawToken(header: Record<string, unknown>, payload: Record<string, unknown>, signature = ''): string {
  const part = (value: unknown) => base64url.encode(JSON.stringify(value));
  return `${part(header)}.${part(payload)}.${signature}`;
}

/** The attacker: their own key pair, and a server of their own that counts every fetch. */
interface Attacker {
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly url: string;
  hits: number;
  close(): Promise<void>;
}

async function startAttacker(): Promise<Attacker> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const publicJwk = { ...(await exportJWK(publicKey)), kid: 'attacker', alg: 'RS256' };
  const attacker = { privateKey, publicJwk, url: '', hits: 0, close: async () => {} };
  const server: Server = createServer((_req, res) => {
    attacker.hits += 1;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [publicJwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  attacker.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  attacker.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return attacker;
}

describe('JwtVerifier', () => {
  let idp: TokenIssuer;
  let attacker: Attacker;
  let trusted: TrustedIssuer;
  const claims = (extra: Record<string, unknown> = {}) => ({
    sub: 'repo:acme/models',
    aud: 'strongroom',
    ...extra,
  });

  beforeAll(async () => {
    idp = await startTokenIssuer();
    attacker = await startAttacker();
    trusted = { issuer: idp.issuer, audiences: ['strongroom'], algorithms: ['RS256', 'ES256', 'EdDSA'] };
  });

  afterAll(async () => {
    await idp.close();
    await attacker.close();
  });

  /** Nothing may be fetched, from the issuer or from the attacker, while `action` runs. */
  async function withoutFetching(action: () => Promise<void>): Promise<void> {
    const before = { ...idp.hits, attacker: attacker.hits };
    await action();
    expect({ ...idp.hits, attacker: attacker.hits }).toEqual(before);
  }

  /** A verifier whose keys are already loaded, so any later fetch shows up in the counters. */
  async function warmVerifier(issuer: TrustedIssuer = trusted, clock?: () => Date): Promise<JwtVerifier> {
    const verifier = new JwtVerifier([issuer], policy, clock);
    await verifier.verify(await idp.sign(claims()));
    return verifier;
  }

  describe('valid tokens', () => {
    for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
      it(`a valid ${alg} token is accepted with its claims`, async () => {
        const verifier = new JwtVerifier([trusted], policy);
        const token = await idp.sign(claims({ repository: 'acme/models' }), { alg });
        const verified = await verifier.verify(token);
        expect(verified).toMatchObject({
          issuer: idp.issuer,
          subject: 'repo:acme/models',
          audience: ['strongroom'],
        });
        expect(verified.claims.repository).toBe('acme/models');
        expect(verified.expiresAt.getTime()).toBe((verified.claims.exp as number) * 1000);
        expect(Object.isFrozen(verified.claims)).toBe(true);
      });
    }

    it('discovery and the JWKS are fetched once and then served from the cache', async () => {
      const before = { ...idp.hits };
      const verifier = new JwtVerifier([trusted], policy);
      for (let i = 0; i < 3; i += 1) await verifier.verify(await idp.sign(claims()));
      expect(idp.hits).toEqual({ discovery: before.discovery + 1, jwks: before.jwks + 1 });
    });

    it('a configured jwksUri is used without discovery', async () => {
      const before = { ...idp.hits };
      const verifier = new JwtVerifier([{ ...trusted, jwksUri: idp.jwksUri }], policy);
      await verifier.verify(await idp.sign(claims()));
      expect(idp.hits).toEqual({ discovery: before.discovery, jwks: before.jwks + 1 });
    });

    it('an audience among several configured ones is accepted, and can be narrowed per call', async () => {
      const verifier = new JwtVerifier([{ ...trusted, audiences: ['strongroom', 'other'] }], policy);
      await expect(verifier.verify(await idp.sign(claims({ aud: ['x', 'other'] })))).resolves.toMatchObject({
        audience: ['x', 'other'],
      });
      await rejection(verifier.verify(await idp.sign(claims({ aud: 'other' })), { audience: 'strongroom' }));
      await rejection(
        verifier.verify(await idp.sign(claims()), { audience: 'unconfigured' }),
        'invalid_request',
      );
    });
  });

  describe('A1: unsigned tokens', () => {
    it('`alg: none` is rejected without any fetch', async () => {
      const verifier = new JwtVerifier([trusted], policy);
      const payload = { ...claims(), iss: idp.issuer, exp: now() + 300 };
      await withoutFetching(async () => {
        await rejection(verifier.verify(rawToken({ alg: 'none' }, payload)));
        await rejection(verifier.verify(rawToken({ alg: 'none' }, payload, 'c2lnbmF0dXJl')));
        await rejection(verifier.verify(rawToken({ alg: 'NONE', kid: idp.publicJwk().kid }, payload, 'AA')));
      });
    });

    it('an empty signature is rejected without any fetch', async () => {
      const verifier = new JwtVerifier([trusted], policy);
      const [header, payload] = (await idp.sign(claims())).split('.');
      await withoutFetching(async () => {
        expect(await rejection(verifier.verify(`${header}.${payload}.`))).toContain('no signature');
      });
    });

    it('an issuer allowing `none` or an HMAC algorithm is refused at construction', () => {
      for (const alg of ['none', 'HS256', 'HS384', 'HS512', 'dir', 'RSA-OAEP']) {
        expect(() => new JwtVerifier([{ ...trusted, algorithms: [alg] }], policy)).toThrowError(
          expect.objectContaining({ code: 'config_invalid' }) as Error,
        );
      }
    });
  });

  describe('A2: algorithm confusion', () => {
    it('RS256 -> HS256: a token MACed with the RSA public key as the HMAC secret is rejected', async () => {
      const verifier = await warmVerifier();
      const rsa = idp.publicJwk('RS256');
      const pem = await exportSPKI((await importJWK(rsa, 'RS256')) as CryptoKey);
      const payload = { ...claims(), iss: idp.issuer };
      for (const secret of [pem, JSON.stringify(rsa), rsa.n ?? '']) {
        const forged = await new SignJWT(payload)
          .setProtectedHeader({ alg: 'HS256', kid: rsa.kid! })
          .setIssuedAt()
          .setExpirationTime('5m')
          .sign(new TextEncoder().encode(secret));
        await withoutFetching(async () => {
          expect(await rejection(verifier.verify(forged))).toContain('algorithm');
        });
      }
    });

    it('an allowed algorithm that does not match the key type of the kid is rejected', async () => {
      const verifier = await warmVerifier();
      const { privateKey } = await generateKeyPair('ES256');
      const forged = await new SignJWT({ ...claims(), iss: idp.issuer })
        .setProtectedHeader({ alg: 'ES256', kid: idp.publicJwk('RS256').kid! })
        .setExpirationTime('5m')
        .sign(privateKey);
      await rejection(verifier.verify(forged));
    });

    it('an algorithm outside the issuer allow-list is rejected without any fetch', async () => {
      const verifier = new JwtVerifier([{ ...trusted, algorithms: ['RS256'] }], policy);
      const token = await idp.sign(claims(), { alg: 'ES256' });
      await withoutFetching(async () => {
        await rejection(verifier.verify(token));
      });
    });
  });

  describe('A3: keys the token chooses for itself', () => {
    async function attackerToken(header: Record<string, unknown>): Promise<string> {
      return new SignJWT({ ...claims(), iss: idp.issuer })
        .setProtectedHeader({ alg: 'RS256', ...header })
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(attacker.privateKey);
    }

    for (const [name, header] of [
      ['jku', () => ({ jku: attacker.url, kid: 'attacker' })],
      ['x5u', () => ({ x5u: attacker.url })],
      ['jwk', () => ({ jwk: attacker.publicJwk })],
    ] as const) {
      it(`an attacker-supplied \`${name}\` is rejected outright and never fetched`, async () => {
        const verifier = await warmVerifier();
        const token = await attackerToken(header());
        await withoutFetching(async () => {
          expect(await rejection(verifier.verify(token))).toContain(name);
        });
      });
    }

    it('an attacker-supplied `x5c` is ignored: the signature is checked against the issuer JWKS only', async () => {
      const verifier = await warmVerifier();
      const spki = await exportSPKI((await importJWK(attacker.publicJwk, 'RS256')) as CryptoKey);
      const der = spki.replace(/-----[A-Z ]+-----|\s/g, '');
      const token = await attackerToken({ x5c: [der], kid: idp.publicJwk('RS256').kid });
      await withoutFetching(async () => {
        await rejection(verifier.verify(token));
      });
      expect(attacker.hits).toBe(0);
    });

    it('an unknown kid refreshes the JWKS at most once per cooldown, however many arrive', async () => {
      let clock = Date.now();
      const verifier = await warmVerifier(trusted, () => new Date(clock));
      const jwksBefore = idp.hits.jwks;
      for (let i = 0; i < 5; i += 1) {
        await rejection(verifier.verify(await attackerToken({ kid: `unknown-${i}` })));
      }
      expect(idp.hits.jwks).toBe(jwksBefore);
      clock += 31_000;
      for (let i = 0; i < 5; i += 1) {
        await rejection(verifier.verify(await attackerToken({ kid: `later-${i}` })));
      }
      expect(idp.hits.jwks).toBe(jwksBefore + 1);
      expect(attacker.hits).toBe(0);
    });

    it('a key the issuer rotated in is picked up by one refresh after the cooldown', async () => {
      let clock = Date.now();
      const issuer = await startTokenIssuer(['ES256']);
      try {
        const verifier = new JwtVerifier(
          [{ ...trusted, issuer: issuer.issuer }],
          policy,
          () => new Date(clock),
        );
        await verifier.verify(await issuer.sign(claims(), { alg: 'ES256' }));
        await issuer.rotate('ES256');
        clock += 31_000;
        await expect(verifier.verify(await issuer.sign(claims(), { alg: 'ES256' }))).resolves.toBeDefined();
        expect(issuer.hits.jwks).toBe(2);
      } finally {
        await issuer.close();
      }
    });
  });

  describe('A4: claims', () => {
    let verifier: JwtVerifier;
    beforeEach(async () => {
      verifier = await warmVerifier();
    });

    it('a wrong `iss` is rejected without any fetch, even when signed with a trusted key', async () => {
      await withoutFetching(async () => {
        await rejection(verifier.verify(await idp.sign(claims({ iss: 'https://evil.example' }))));
        await rejection(verifier.verify(await idp.sign(claims({ iss: `${idp.issuer}/` }))));
        await rejection(verifier.verify(await idp.sign(claims({ iss: undefined }))));
      });
    });

    it('a token from an issuer that is not configured causes no fetch at all', async () => {
      const fresh = new JwtVerifier([trusted], policy);
      const other = await startTokenIssuer(['ES256']);
      try {
        await rejection(fresh.verify(await other.sign(claims(), { alg: 'ES256' })));
        expect(other.hits).toEqual({ discovery: 0, jwks: 0 });
      } finally {
        await other.close();
      }
    });

    it('a wrong or missing `aud` is rejected', async () => {
      await rejection(verifier.verify(await idp.sign(claims({ aud: 'someone-else' }))));
      await rejection(verifier.verify(await idp.sign(claims({ aud: ['a', 'b'] }))));
      await rejection(verifier.verify(await idp.sign(claims({ aud: undefined }))));
    });

    it('an expired token is rejected beyond the clock skew and accepted within it', async () => {
      expect(await rejection(verifier.verify(await idp.sign(claims({ exp: now() - 61 }))))).toContain(
        'expired',
      );
      await expect(verifier.verify(await idp.sign(claims({ exp: now() - 30 })))).resolves.toBeDefined();
    });

    it('`nbf` in the future beyond the skew is rejected, within it accepted', async () => {
      await rejection(verifier.verify(await idp.sign(claims({ nbf: now() + 120 }))));
      await expect(verifier.verify(await idp.sign(claims({ nbf: now() + 30 })))).resolves.toBeDefined();
    });

    it('`iat` in the future beyond the skew is rejected', async () => {
      await rejection(verifier.verify(await idp.sign(claims({ iat: now() + 120 }))));
    });

    it('the skew is configurable and zero means exact', async () => {
      const strict = await warmVerifier({ ...trusted, clockSkewSeconds: 0 });
      await rejection(strict.verify(await idp.sign(claims({ exp: now() - 2 }))));
      for (const skew of [-1, 301, 1.5]) {
        expect(() => new JwtVerifier([{ ...trusted, clockSkewSeconds: skew }], policy)).toThrowError(
          expect.objectContaining({ code: 'config_invalid' }) as Error,
        );
      }
    });

    it('a token without `exp` is rejected', async () => {
      await rejection(verifier.verify(await idp.sign(claims({ exp: undefined }))));
    });

    it('a token without `sub`, or with an empty one, is rejected', async () => {
      expect(await rejection(verifier.verify(await idp.sign(claims({ sub: undefined }))))).toContain('sub');
      await rejection(verifier.verify(await idp.sign(claims({ sub: '' }))));
    });

    it('a token older than the maximum age asked for is rejected', async () => {
      const old = await idp.sign(claims({ iat: now() - 600 }));
      await expect(verifier.verify(old)).resolves.toBeDefined();
      await rejection(verifier.verify(old, { maxAgeSeconds: 300 }));
    });

    it('a nonce that differs, or is missing when one is expected, is rejected', async () => {
      await rejection(verifier.verify(await idp.sign(claims({ nonce: 'abc' })), { nonce: 'abd' }));
      await rejection(verifier.verify(await idp.sign(claims()), { nonce: 'abc' }));
      await expect(
        verifier.verify(await idp.sign(claims({ nonce: 'abc' })), { nonce: 'abc' }),
      ).resolves.toBeDefined();
    });

    it('a payload edited after signing is rejected', async () => {
      const [header, , signature] = (await idp.sign(claims())).split('.');
      const edited = base64url.encode(
        JSON.stringify({ ...claims({ sub: 'repo:acme/prod' }), iss: idp.issuer, exp: now() + 60 }),
      );
      expect(await rejection(verifier.verify(`${header}.${edited}.${signature}`))).toContain('signature');
    });

    it('an unknown critical header is rejected', async () => {
      const payload = { ...claims(), iss: idp.issuer, exp: now() + 60 };
      await expect(verifier.verify(idp.signUnchecked({}, payload))).resolves.toBeDefined();
      await rejection(verifier.verify(idp.signUnchecked({ crit: ['exp-policy'], 'exp-policy': 1 }, payload)));
    });

    it('malformed and oversized tokens are rejected without any fetch', async () => {
      await withoutFetching(async () => {
        for (const token of [
          '',
          'a.b',
          'a.b.c.d',
          '...',
          'eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.AA',
          'x'.repeat(20_000),
        ]) {
          await rejection(verifier.verify(token));
        }
      });
    });
  });

  describe('discovery and key fetching', () => {
    it('a discovery document naming another issuer is refused (OIDC Discovery 4.3)', async () => {
      const liar = await startTokenIssuer(['ES256']);
      try {
        liar.setDiscoveryIssuer('https://accounts.example.com');
        const verifier = new JwtVerifier([{ ...trusted, issuer: liar.issuer }], policy);
        expect(await rejection(verifier.verify(await liar.sign(claims(), { alg: 'ES256' })))).toContain(
          'another issuer',
        );
        expect(liar.hits.jwks).toBe(0);
      } finally {
        await liar.close();
      }
    });

    it('keys on a loopback host that is not allow-listed are never fetched', async () => {
      const verifier = new JwtVerifier([trusted], { ...policy, allowHosts: [] });
      await withoutFetching(async () => {
        await rejection(verifier.verify(await idp.sign(claims())));
      });
    });

    it('issuer configuration is validated up front', () => {
      const bad: TrustedIssuer[] = [
        { ...trusted, algorithms: [] },
        { ...trusted, audiences: [] },
        { ...trusted, audiences: [''] },
        { ...trusted, issuer: 'not a url' },
        { ...trusted, jwksUri: 'file:///etc/keys.json' },
      ];
      for (const issuer of bad) {
        expect(() => new JwtVerifier([issuer], policy), JSON.stringify(issuer)).toThrowError(
          expect.objectContaining({ code: 'config_invalid' }) as Error,
        );
      }
      expect(() => new JwtVerifier([trusted, trusted], policy)).toThrowError(
        expect.objectContaining({ code: 'config_invalid' }) as Error,
      );
      // An issuer that is not a URL is fine when its keys are configured directly (some clusters).
      expect(
        () =>
          new JwtVerifier(
            [{ ...trusted, issuer: 'kubernetes/serviceaccount', jwksUri: idp.jwksUri }],
            policy,
          ),
      ).not.toThrow();
    });
  });
});
