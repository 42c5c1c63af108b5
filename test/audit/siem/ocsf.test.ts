import { describe, expect, it } from 'vitest';
import { OCSF_VERSION, toOcsf } from '../../../src/audit/siem/ocsf.js';
import { chainedEvents, type EventOverrides } from '../../support/siem-events.js';

function ocsfOf(body: EventOverrides = {}, seq = 1): Record<string, unknown> {
  return toOcsf(chainedEvents(seq, () => body).at(-1)!);
}

/** Attributes every OCSF 1.x event requires (base event and classification/occurrence traits). */
const BASE_REQUIRED = [
  'category_uid',
  'class_uid',
  'activity_id',
  'type_uid',
  'time',
  'severity_id',
  'metadata',
];

describe('OCSF mapping (schema.ocsf.io 1.3.0)', () => {
  it('maps an api event to API Activity (6003) with the standard attributes filled', () => {
    const event = chainedEvents(3)[2]!;
    const ocsf = toOcsf(event);
    for (const key of [...BASE_REQUIRED, 'actor', 'api', 'src_endpoint']) expect(ocsf).toHaveProperty(key);
    expect(ocsf).toMatchObject({
      category_uid: 6,
      category_name: 'Application Activity',
      class_uid: 6003,
      class_name: 'API Activity',
      activity_id: 2,
      activity_name: 'Read',
      type_uid: 600302,
      type_name: 'API Activity: Read',
      time: Date.parse(event.time),
      severity_id: 1,
      severity: 'Informational',
      status_id: 1,
      status: 'Success',
      actor: {
        user: { uid: 'user-7', type_id: 1, type: 'User' },
        authorizations: [{ decision: 'Allow', policy: { uid: 'readers' } }],
      },
      src_endpoint: { ip: '203.0.113.9' },
      http_request: {
        uid: 'req-0001',
        http_method: 'GET',
        user_agent: 'strongroom-cli/1.0',
        url: { path: event.request!.path },
      },
      http_response: { code: 200 },
      api: { operation: 'version:download', request: { uid: 'req-0001' }, response: { code: 200 } },
      resources: [{ uid: 'vision/resnet:1.0.0', name: 'vision/resnet:1.0.0', type: 'version' }],
      metadata: {
        product: { name: 'Strongroom', vendor_name: 'Strongroom' },
        version: '1.3.0',
        uid: '3',
        correlation_uid: 'req-0001',
        event_code: 'version:download',
        original_time: event.time,
      },
      unmapped: { v: 1, seq: 3, prevHash: event.prevHash, category: 'api', details: { bytes: 1024 } },
    });
    expect(ocsf).not.toHaveProperty('status_code');
    expect(OCSF_VERSION).toBe('1.3.0');
  });

  it('derives activity_id from the verb of the action, with type_uid = class_uid * 100 + activity_id', () => {
    const cases: [string, number, string][] = [
      ['project:create', 1, 'Create'],
      ['artifact:list', 2, 'Read'],
      ['artifact:update', 3, 'Update'],
      ['key:rotate', 3, 'Update'],
      ['version:delete', 4, 'Delete'],
      ['version:promote', 99, 'promote'],
    ];
    for (const [action, id, name] of cases) {
      expect(ocsfOf({ action }), action).toMatchObject({
        activity_id: id,
        activity_name: name,
        type_uid: 600300 + id,
      });
    }
  });

  it('maps a failed authentication to Authentication (3002) Logon with status Failure and the error code', () => {
    const ocsf = ocsfOf({
      category: 'authentication',
      actor: { id: null, type: 'anonymous', authMethod: null },
      decision: { effect: 'none', policies: [] },
      outcome: 'failed',
      errorCode: 'unauthenticated',
      severity: 'warning',
    });
    for (const key of [...BASE_REQUIRED, 'user', 'service']) expect(ocsf).toHaveProperty(key);
    expect(ocsf).toMatchObject({
      category_uid: 3,
      category_name: 'Identity & Access Management',
      class_uid: 3002,
      class_name: 'Authentication',
      activity_id: 1,
      activity_name: 'Logon',
      type_uid: 300201,
      severity_id: 3,
      status_id: 2,
      status: 'Failure',
      status_code: 'unauthenticated',
      user: { name: 'anonymous', type_id: 0 },
      actor: { user: { name: 'anonymous', type_id: 0 } },
      service: { name: 'Strongroom' },
      auth_protocol_id: 0,
      api: { response: { error: 'unauthenticated' } },
    });
    expect(ocsf.actor).not.toHaveProperty('authorizations');
  });

  it('names the authentication protocol and multi-factor use of a successful logon', () => {
    const oidc = ocsfOf({
      category: 'authentication',
      actor: { id: 'user-7', type: 'user', authMethod: 'oidc' },
    });
    expect(oidc).toMatchObject({ auth_protocol_id: 4, auth_protocol: 'OpenID', is_mfa: false });
    const totp = ocsfOf({ category: 'authentication' });
    expect(totp).toMatchObject({ auth_protocol_id: 99, auth_protocol: 'password+totp', is_mfa: true });
    expect(ocsfOf({ category: 'authentication', action: 'session:logout' })).toMatchObject({
      activity_id: 2,
      type_uid: 300202,
    });
  });

  it('maps an account event to Account Change (3001) with the changed account as `user`', () => {
    const ocsf = ocsfOf({
      category: 'account',
      action: 'user:mfa-enable',
      resource: 'user-42',
      severity: 'notice',
    });
    for (const key of [...BASE_REQUIRED, 'user']) expect(ocsf).toHaveProperty(key);
    expect(ocsf).toMatchObject({
      category_uid: 3,
      class_uid: 3001,
      class_name: 'Account Change',
      activity_id: 10,
      activity_name: 'MFA Factor Enable',
      type_uid: 300110,
      severity_id: 2,
      user: { uid: 'user-42' },
      actor: { user: { uid: 'user-7' } },
    });
    expect(ocsfOf({ category: 'account', action: 'user:password-change', resource: null })).toMatchObject({
      activity_id: 3,
      user: { uid: 'user-7', type_id: 1 },
    });
  });

  it('maps a background system event to API Activity without request context', () => {
    const ocsf = ocsfOf({
      category: 'system',
      actor: { id: null, type: 'system', authMethod: null },
      action: 'key:rewrap',
      resource: null,
      decision: { effect: 'none', policies: [] },
      severity: 'error',
      outcome: 'failed',
      errorCode: 'key_unavailable',
      request: null,
      details: undefined,
    });
    expect(ocsf).toMatchObject({
      class_uid: 6003,
      category_uid: 6,
      activity_id: 3,
      type_uid: 600303,
      severity_id: 4,
      severity: 'High',
      status_code: 'key_unavailable',
      actor: { user: { name: 'system', type_id: 3, type: 'System' } },
      api: { operation: 'key:rewrap', response: { error: 'key_unavailable' } },
    });
    for (const key of ['src_endpoint', 'http_request', 'http_response', 'resources'])
      expect(ocsf).not.toHaveProperty(key);
    expect(ocsf.api).not.toHaveProperty('request');
    expect(ocsf.metadata).not.toHaveProperty('correlation_uid');
    expect(ocsf.unmapped).not.toHaveProperty('details');
  });

  it('records a deny decision with every policy behind it', () => {
    const ocsf = ocsfOf({
      decision: { effect: 'deny', policies: ['no-restricted', 'default-deny'] },
      outcome: 'failed',
      errorCode: 'forbidden',
    });
    expect(ocsf.actor).toMatchObject({
      authorizations: [
        { decision: 'Deny', policy: { uid: 'no-restricted' } },
        { decision: 'Deny', policy: { uid: 'default-deny' } },
      ],
    });
    expect(ocsfOf({ decision: { effect: 'deny', policies: [] } }).actor).toMatchObject({
      authorizations: [{ decision: 'Deny' }],
    });
  });

  it('never emits null or undefined attribute values', () => {
    const bodies: EventOverrides[] = [
      {},
      { request: null, resource: null, details: undefined },
      { category: 'authentication', actor: { id: null, type: 'anonymous', authMethod: null } },
      {
        request: {
          id: 'r',
          method: 'GET',
          path: '/',
          status: null,
          clientAddress: '::1',
          userAgent: null,
        },
      },
    ];
    for (const body of bodies) {
      const json = JSON.stringify(ocsfOf(body), (_k, v: unknown) => {
        expect(v).not.toBeUndefined();
        return v;
      });
      expect(json).not.toContain('null');
    }
  });
});
