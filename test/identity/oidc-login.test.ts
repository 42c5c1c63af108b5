import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { StrongroomError } from '../../src/core/errors.js';
import type { ErrorCode } from '../../src/core/errors.js';
import { OidcClient, identityKey } from '../../src/identity/oidc-client.js';
import type { LoginCallback, OidcProviderConfig } from '../../src/identity/oidc-client.js';
import type { OutboundPolicy } from '../../src/identity/outbound-fetch.js';
import { startOidcProvider } from '../support/oidc-provider.js';
import type { RunningOidcProvider } from '../support/oidc-provider.js';

// The provider runs on loopback, which Strongroom refuses unless an operator allow-lists it (D1).
const policy: OutboundPolicy = {
  allowHosts: ['127.0.0.1'],
  timeoutMs: 5000,
  maxBytes: 1 << 20,
  maxRedirects: 0,
};
const REDIRECT_URI = 'http://127.0.0.1:8443/auth/oidc/callback';
const accounts = {
  alice: {
    sub: 'alice',
    email: 'alice@corp.example',
    name: 'Alice Liddell',
    groups: ['ml-admins', 'readers'],
  },
  bob: { sub: 'bob', email: 'bob@corp.example', name: 'Bob', groups: [] },
};

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<StrongroomError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StrongroomError);
  expect((err as StrongroomError).code).toBe(code);
  return err as StrongroomError;
}

/** Runs the browser part of a login and returns what the callback handler would hold. */
async function login(
  provider: RunningOidcProvider,
  client: OidcClient,
  account = 'alice',
): Promise<LoginCallback> {
  const begun = await client.beginLogin(REDIRECT_URI);
  const final = new URL(await provider.login(begun.authorizationUrl, account));
  expect(`${final.origin}${final.pathname}`).toBe(REDIRECT_URI);
  const iss = final.searchParams.get('iss');
  return {
    code: final.searchParams.get('code') ?? '',
    state: final.searchParams.get('state') ?? '',
    ...(iss === null ? {} : { iss }),
    expectedState: begun.state,
    nonce: begun.nonce,
    codeVerifier: begun.codeVerifier,
    redirectUri: REDIRECT_URI,
  };
}

describe('OpenID Connect login against a real oidc-provider', () => {
  let corp: RunningOidcProvider;
  let partner: RunningOidcProvider;
  let corpConfig: OidcProviderConfig;

  beforeAll(async () => {
    const clients = [
      {
        client_id: 'strongroom',
        client_secret: 'a-long-client-secret-for-tests',
        redirect_uris: [REDIRECT_URI],
      },
      { client_id: 'strongroom-public', redirect_uris: [REDIRECT_URI] },
    ];
    corp = await startOidcProvider({ clients, accounts });
    partner = await startOidcProvider({ clients, accounts, claimsInIdToken: true });
    corpConfig = {
      id: 'corp',
      issuer: corp.issuer,
      clientId: 'strongroom',
      clientSecret: 'a-long-client-secret-for-tests',
      scopes: ['openid', 'profile', 'email', 'groups'],
    };
  });

  afterAll(async () => {
    await corp.close();
    await partner.close();
  });

  it('the authorization request carries state, nonce and a PKCE S256 challenge', async () => {
    const client = new OidcClient(corpConfig, policy);
    const begun = await client.beginLogin(REDIRECT_URI);
    const url = new URL(begun.authorizationUrl);
    expect(url.origin).toBe(corp.url);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      response_type: 'code',
      client_id: 'strongroom',
      redirect_uri: REDIRECT_URI,
      scope: 'openid profile email groups',
      state: begun.state,
      nonce: begun.nonce,
      code_challenge_method: 'S256',
    });
    expect(url.searchParams.get('code_challenge')).not.toContain(begun.codeVerifier);
    expect(begun.codeVerifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const again = await client.beginLogin(REDIRECT_URI);
    expect(new Set([begun.state, begun.nonce, begun.codeVerifier, again.state, again.nonce])).toHaveProperty(
      'size',
      5,
    );
  });

  it('a confidential client signs a user in with groups from a custom claim (via UserInfo)', async () => {
    const client = new OidcClient(corpConfig, policy);
    const identity = await client.completeLogin(await login(corp, client));
    expect(identity).toEqual({
      provider: 'corp',
      issuer: corp.issuer,
      subject: 'alice',
      email: 'alice@corp.example',
      name: 'Alice Liddell',
      groups: ['ml-admins', 'readers'],
      devicePosture: null,
    });
    expect(identityKey(identity)).toBe('corp:alice');
  });

  it('a public client signs in with PKCE alone, claims taken from the ID token', async () => {
    const client = new OidcClient(
      {
        id: 'partner',
        issuer: partner.issuer,
        clientId: 'strongroom-public',
        scopes: ['openid', 'email', 'groups'],
      },
      policy,
    );
    const identity = await client.completeLogin(await login(partner, client, 'bob'));
    expect(identity).toMatchObject({
      provider: 'partner',
      subject: 'bob',
      email: 'bob@corp.example',
      groups: [],
      devicePosture: null,
    });
  });

  it('a state that differs from the one kept in the session is rejected before the code is redeemed', async () => {
    const client = new OidcClient(corpConfig, policy);
    const callback = await login(corp, client);
    await expectCode(
      client.completeLogin({ ...callback, expectedState: `${callback.expectedState}x` }),
      'unauthenticated',
    );
    await expectCode(client.completeLogin({ ...callback, state: 'forged' }), 'unauthenticated');
    // The code was never sent to the provider: it still works for the legitimate callback.
    await expect(client.completeLogin(callback)).resolves.toMatchObject({ subject: 'alice' });
  });

  it('a replayed authorization code is rejected', async () => {
    const client = new OidcClient(corpConfig, policy);
    const callback = await login(corp, client);
    await client.completeLogin(callback);
    const err = await expectCode(client.completeLogin(callback), 'unauthenticated');
    expect(err.message).toContain('invalid_grant');
  });

  it('a nonce that differs from the one sent is rejected', async () => {
    const client = new OidcClient(corpConfig, policy);
    const callback = await login(corp, client);
    const err = await expectCode(
      client.completeLogin({ ...callback, nonce: 'another-login' }),
      'unauthenticated',
    );
    expect(err.message).toContain('nonce');
  });

  it('a wrong PKCE verifier is rejected by the provider', async () => {
    const client = new OidcClient(corpConfig, policy);
    const callback = await login(corp, client);
    await expectCode(client.completeLogin({ ...callback, codeVerifier: 'x'.repeat(43) }), 'unauthenticated');
  });

  it('a response naming another issuer (mix-up, RFC 9207) or none at all is rejected', async () => {
    const client = new OidcClient(corpConfig, policy);
    const callback = await login(corp, client);
    await expectCode(client.completeLogin({ ...callback, iss: partner.issuer }), 'unauthenticated');
    const { iss: _dropped, ...withoutIss } = callback;
    await expectCode(client.completeLogin(withoutIss), 'unauthenticated');
    await expect(client.completeLogin(callback)).resolves.toMatchObject({ subject: 'alice' });
  });

  it('a code issued by one provider cannot be completed with another provider client', async () => {
    const corpClient = new OidcClient(corpConfig, policy);
    const partnerClient = new OidcClient({ ...corpConfig, id: 'partner', issuer: partner.issuer }, policy);
    const callback = await login(corp, corpClient);
    await expectCode(partnerClient.completeLogin({ ...callback, iss: partner.issuer }), 'unauthenticated');
  });

  it('the same sub from two providers is two people', async () => {
    const corpClient = new OidcClient(corpConfig, policy);
    const partnerClient = new OidcClient({ ...corpConfig, id: 'partner', issuer: partner.issuer }, policy);
    const fromCorp = await corpClient.completeLogin(await login(corp, corpClient));
    const fromPartner = await partnerClient.completeLogin(await login(partner, partnerClient));
    expect(fromCorp.subject).toBe(fromPartner.subject);
    expect(identityKey(fromCorp)).toBe('corp:alice');
    expect(identityKey(fromPartner)).toBe('partner:alice');
  });

  it('a provider on loopback is refused when the operator has not allow-listed it', async () => {
    const client = new OidcClient(corpConfig, { ...policy, allowHosts: [] });
    await expectCode(client.beginLogin(REDIRECT_URI), 'unauthenticated');
  });

  it('provider configuration is validated up front', () => {
    const bad: OidcProviderConfig[] = [
      { ...corpConfig, id: 'Corp:1' },
      { ...corpConfig, scopes: ['profile'] },
      { ...corpConfig, algorithms: ['HS256'] },
      { ...corpConfig, algorithms: ['none'] },
      { ...corpConfig, clientId: '' },
    ];
    for (const config of bad) {
      expect(() => new OidcClient(config, policy), JSON.stringify(config)).toThrowError(
        expect.objectContaining({ code: 'config_invalid' }) as Error,
      );
    }
  });
});
