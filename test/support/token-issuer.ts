import { KeyObject, sign as signBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { SignJWT, base64url, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK, JWTPayload } from 'jose';

export type TestAlgorithm = 'RS256' | 'ES256' | 'EdDSA';

interface SigningKey {
  readonly kid: string;
  readonly alg: TestAlgorithm;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

/**
 * A minimal workload-token issuer on loopback (think GitHub Actions or a Kubernetes API server): it serves
 * OIDC discovery and a JWKS over plain http, counts every request so tests can prove that nothing was
 * fetched, and signs whatever claims a test asks for.
 */
export interface TokenIssuer {
  /** `http://127.0.0.1:<port>`, the `iss` of every token it signs. */
  readonly issuer: string;
  readonly jwksUri: string;
  /** Requests served so far, by path (`/.well-known/openid-configuration`, `/jwks`). */
  readonly hits: { discovery: number; jwks: number };
  /** The public JWK of the current key for `alg` (what an attacker can read from the JWKS). */
  publicJwk(alg?: TestAlgorithm): JWK;
  /** Signs `claims` over defaults `iss`, `iat` = now, `exp` = now + 5 minutes, with the current key for `alg`. */
  sign(
    claims: JWTPayload,
    options?: { alg?: TestAlgorithm; kid?: string; header?: Record<string, unknown> },
  ): Promise<string>;
  /**
   * Signs with the current RS256 key exactly the header and payload given, without the checks a JOSE library
   * applies when producing tokens (an unknown `crit`, say): for tokens only an attacker or a buggy issuer makes.
   */
  signUnchecked(header: Record<string, unknown>, payload: Record<string, unknown>): string;
  /** Adds a fresh key for `alg` to the JWKS and makes it the one `sign` uses; returns its kid. */
  rotate(alg?: TestAlgorithm): Promise<string>;
  /** Makes discovery claim another issuer (OIDC Discovery 4.3 mismatch). */
  setDiscoveryIssuer(issuer: string): void;
  close(): Promise<void>;
}

async function newKey(alg: TestAlgorithm, n: number): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
  const kid = `${alg.toLowerCase()}-${n}`;
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

export async function startTokenIssuer(
  algorithms: readonly TestAlgorithm[] = ['RS256', 'ES256', 'EdDSA'],
): Promise<TokenIssuer> {
  const keys: SigningKey[] = [];
  const current = new Map<TestAlgorithm, SigningKey>();
  for (const alg of algorithms) {
    const key = await newKey(alg, keys.length);
    keys.push(key);
    current.set(alg, key);
  }
  const hits = { discovery: 0, jwks: 0 };
  let discoveryIssuer: string | undefined;

  const server = createServer((req, res) => {
    const reply = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/.well-known/openid-configuration') {
      hits.discovery += 1;
      reply({
        issuer: discoveryIssuer ?? issuer,
        jwks_uri: jwksUri,
        id_token_signing_alg_values_supported: algorithms,
      });
    } else if (req.url === '/jwks') {
      hits.jwks += 1;
      reply({ keys: keys.map((k) => k.publicJwk) });
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const jwksUri = `${issuer}/jwks`;

  const keyFor = (alg: TestAlgorithm): SigningKey => {
    const key = current.get(alg);
    if (key === undefined) throw new Error(`the test issuer has no ${alg} key`);
    return key;
  };

  return {
    issuer,
    jwksUri,
    hits,
    publicJwk: (alg = 'RS256') => keyFor(alg).publicJwk,
    async sign(claims, options = {}) {
      const key = keyFor(options.alg ?? 'RS256');
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iss: issuer, iat: now, exp: now + 300, ...claims })
        .setProtectedHeader({ alg: key.alg, kid: options.kid ?? key.kid, ...options.header })
        .sign(key.privateKey);
    },
    signUnchecked(header, payload) {
      const key = keyFor('RS256');
      const part = (value: unknown) => base64url.encode(JSON.stringify(value));
      const input = `${part({ alg: 'RS256', kid: key.kid, ...header })}.${part(payload)}`;
      const signature = signBytes('sha256', Buffer.from(input), KeyObject.from(key.privateKey));
      return `${input}.${signature.toString('base64url')}`;
    },
    async rotate(alg = 'RS256') {
      const key = await newKey(alg, keys.length);
      keys.push(key);
      current.set(alg, key);
      return key.kid;
    },
    setDiscoveryIssuer(value) {
      discoveryIssuer = value;
    },
    close: () =>
      new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve()))),
  };
}
