import type { AuditEvent, AuditEventBody } from '../../src/audit/audit-event.js';
import { GENESIS_HASH } from '../../src/audit/hash-chain.js';
import { chainEvents } from './audit-fixtures.js';

/** Fields to replace in the typical body; `details: undefined` leaves details out. */
export type EventOverrides = { [K in keyof AuditEventBody]?: AuditEventBody[K] | undefined };

/**
 * One fixed event body (a user downloading a version over HTTP) that tests change field by field, so the
 * expected exports can be written out literally.
 */
export function siemEventBody(overrides: EventOverrides = {}): AuditEventBody {
  const { details, ...rest } = {
    category: 'api',
    actor: { id: 'user-7', type: 'user', authMethod: 'password+totp' },
    action: 'version:download',
    resource: 'vision/resnet:1.0.0',
    decision: { effect: 'allow', policies: ['readers'] },
    outcome: 'succeeded',
    errorCode: null,
    severity: 'info',
    request: {
      id: 'req-0001',
      method: 'GET',
      path: '/v1/projects/vision/artifacts/resnet/versions/1.0.0/files/model.safetensors',
      status: 200,
      clientAddress: '203.0.113.9',
      userAgent: 'strongroom-cli/1.0',
    },
    details: { bytes: 1024 },
    ...overrides,
  } as const satisfies EventOverrides;
  return (details === undefined ? rest : { ...rest, details }) as AuditEventBody;
}

/**
 * `count` events with the body above (changed per seq by `overrides`), chained by audit-fixtures.ts from seq
 * `from` on; the first one's prevHash is the genesis hash.
 */
export function chainedEvents(
  count: number,
  overrides: (seq: number) => EventOverrides = () => ({}),
  from = 1,
): AuditEvent[] {
  const start = { size: from - 1, lastHash: GENESIS_HASH };
  return [...chainEvents(count, start, (seq) => siemEventBody(overrides(seq)))];
}
