import type { AuditActor, AuditCategory, AuditEvent, AuditSeverity } from '../audit-event.js';

/**
 * OCSF 1.3.0 form of an audit event (schema.ocsf.io). Attribute names follow the schema's dictionary and the
 * classes' required attributes: Authentication (3002) requires `user` and one of `service`/`dst_endpoint`,
 * Account Change (3001) requires `user`, API Activity (6003) requires `actor`, `api` and `src_endpoint`.
 * Absent values are omitted rather than null, as OCSF producers do. What has no OCSF home goes to `unmapped`.
 */
export const OCSF_VERSION = '1.3.0';

const PRODUCT = { name: 'Strongroom', vendor_name: 'Strongroom' } as const;

interface OcsfClass {
  readonly uid: number;
  readonly name: string;
  readonly categoryUid: number;
  readonly categoryName: string;
  /** activity_id by the verb of the action (`version:download` -> `download`); others map to 99 (Other). */
  readonly activities: Readonly<Record<string, readonly [id: number, caption: string]>>;
}

const IAM = { categoryUid: 3, categoryName: 'Identity & Access Management' } as const;
const APPLICATION = { categoryUid: 6, categoryName: 'Application Activity' } as const;

const API_ACTIVITY: OcsfClass = {
  uid: 6003,
  name: 'API Activity',
  ...APPLICATION,
  activities: {
    create: [1, 'Create'],
    read: [2, 'Read'],
    list: [2, 'Read'],
    download: [2, 'Read'],
    update: [3, 'Update'],
    rotate: [3, 'Update'],
    rewrap: [3, 'Update'],
    delete: [4, 'Delete'],
    prune: [4, 'Delete'],
  },
};

const OCSF_CLASSES: Readonly<Record<AuditCategory, OcsfClass>> = {
  authentication: {
    uid: 3002,
    name: 'Authentication',
    ...IAM,
    // Every authentication event is a logon attempt unless it ends a session.
    activities: { logoff: [2, 'Logoff'], logout: [2, 'Logoff'], revoke: [2, 'Logoff'] },
  },
  account: {
    uid: 3001,
    name: 'Account Change',
    ...IAM,
    activities: {
      create: [1, 'Create'],
      enable: [2, 'Enable'],
      'password-change': [3, 'Password Change'],
      'password-reset': [4, 'Password Reset'],
      disable: [5, 'Disable'],
      delete: [6, 'Delete'],
      'attach-policy': [7, 'Attach Policy'],
      'detach-policy': [8, 'Detach Policy'],
      lock: [9, 'Lock'],
      'mfa-enable': [10, 'MFA Factor Enable'],
      'mfa-disable': [11, 'MFA Factor Disable'],
    },
  },
  api: API_ACTIVITY,
  system: API_ACTIVITY,
};

/** Authentication's default activity when the verb names none: Logon (1). */
const LOGON: readonly [number, string] = [1, 'Logon'];
const OTHER: readonly [number, string] = [99, 'Other'];

/** severity_id: Informational (1), Low (2), Medium (3), High (4). */
const SEVERITY: Readonly<Record<AuditSeverity, readonly [number, string]>> = {
  info: [1, 'Informational'],
  notice: [2, 'Low'],
  warning: [3, 'Medium'],
  error: [4, 'High'],
};

/** user.type_id: Unknown (0), User (1), System (3), Other (99) with the source's own `type`. */
const USER_TYPE: Readonly<Record<AuditActor['type'], readonly [number, string]>> = {
  user: [1, 'User'],
  service: [99, 'Service'],
  system: [3, 'System'],
  anonymous: [0, 'Unknown'],
};

/** auth_protocol_id: OpenID (4); other methods are Other (99) with `auth_protocol` naming them. */
const AUTH_PROTOCOL: Readonly<Record<string, readonly [number, string]>> = { oidc: [4, 'OpenID'] };

/** Maps an audit event to its OCSF 1.3.0 class (DESIGN.md section 5; schema.ocsf.io 1.3.0 classes). */
export function toOcsf(event: AuditEvent): Record<string, unknown> {
  const cls = OCSF_CLASSES[event.category];
  const verb = event.action.slice(event.action.lastIndexOf(':') + 1);
  const [activityId, activityName] =
    cls.activities[verb] ?? (event.category === 'authentication' ? LOGON : OTHER);
  const [severityId, severity] = SEVERITY[event.severity];
  const failed = event.outcome === 'failed';
  const out: Record<string, unknown> = {
    category_uid: cls.categoryUid,
    category_name: cls.categoryName,
    class_uid: cls.uid,
    class_name: cls.name,
    activity_id: activityId,
    activity_name: activityId === 99 ? verb : activityName,
    type_uid: cls.uid * 100 + activityId,
    type_name: `${cls.name}: ${activityId === 99 ? verb : activityName}`,
    time: Date.parse(event.time),
    severity_id: severityId,
    severity,
    status_id: failed ? 2 : 1,
    status: failed ? 'Failure' : 'Success',
    ...(event.errorCode === null ? {} : { status_code: event.errorCode }),
    message: `${event.action} ${event.outcome}`,
    metadata: metadata(event),
    actor: actor(event),
    api: api(event),
    ...(event.resource === null ? {} : { resources: [resource(event.action, event.resource)] }),
    ...httpContext(event),
    unmapped: unmapped(event),
  };
  return { ...out, ...classSpecific(event) };
}

function metadata(event: AuditEvent): Record<string, unknown> {
  return {
    product: PRODUCT,
    version: OCSF_VERSION,
    uid: String(event.seq),
    event_code: event.action,
    log_name: 'audit',
    original_time: event.time,
    ...(event.request === null ? {} : { correlation_uid: event.request.id }),
  };
}

function user(actor: AuditActor): Record<string, unknown> {
  const [typeId, type] = USER_TYPE[actor.type];
  // The user object needs one of account, name or uid; a principal without an id is named by its type.
  const identity = actor.id === null ? { name: actor.type } : { uid: actor.id };
  return { ...identity, type_id: typeId, type };
}

function actor(event: AuditEvent): Record<string, unknown> {
  const { effect, policies } = event.decision;
  if (effect === 'none') return { user: user(event.actor) };
  const decision = effect === 'allow' ? 'Allow' : 'Deny';
  const authorizations =
    policies.length === 0 ? [{ decision }] : policies.map((uid) => ({ decision, policy: { uid } }));
  return { user: user(event.actor), authorizations };
}

function api(event: AuditEvent): Record<string, unknown> {
  const response = {
    ...(event.request?.status == null ? {} : { code: event.request.status }),
    ...(event.errorCode === null ? {} : { error: event.errorCode }),
  };
  return {
    operation: event.action,
    service: { name: PRODUCT.name },
    ...(event.request === null ? {} : { request: { uid: event.request.id } }),
    ...(Object.keys(response).length === 0 ? {} : { response }),
  };
}

/** The resource type is the noun of the action (`version:download` acts on a `version`). */
function resource(action: string, ref: string): Record<string, unknown> {
  const colon = action.indexOf(':');
  return { uid: ref, name: ref, ...(colon > 0 ? { type: action.slice(0, colon) } : {}) };
}

function httpContext(event: AuditEvent): Record<string, unknown> {
  const request = event.request;
  if (request === null) return {};
  return {
    src_endpoint: { ip: request.clientAddress },
    http_request: {
      uid: request.id,
      http_method: request.method,
      url: { path: request.path },
      ...(request.userAgent === null ? {} : { user_agent: request.userAgent }),
    },
    ...(request.status === null ? {} : { http_response: { code: request.status } }),
  };
}

function classSpecific(event: AuditEvent): Record<string, unknown> {
  if (event.category === 'authentication') {
    const method = event.actor.authMethod;
    const [protocolId, protocol] =
      method === null ? [0, 'Unknown'] : (AUTH_PROTOCOL[method] ?? ([99, method] as const));
    return {
      user: user(event.actor),
      service: { name: PRODUCT.name },
      auth_protocol_id: protocolId,
      auth_protocol: protocol,
      // Factors are joined by `+` (`password+totp`), so more than one factor is multi-factor.
      ...(method === null ? {} : { is_mfa: method.includes('+') }),
    };
  }
  if (event.category === 'account') {
    // The account acted on is the event's resource; without one, the actor changed its own account.
    const target = event.resource === null ? user(event.actor) : { uid: event.resource };
    return { user: target };
  }
  return {};
}

function unmapped(event: AuditEvent): Record<string, unknown> {
  return {
    v: event.v,
    seq: event.seq,
    prevHash: event.prevHash,
    category: event.category,
    actorType: event.actor.type,
    ...(event.actor.authMethod === null ? {} : { authMethod: event.actor.authMethod }),
    decision: event.decision,
    ...(event.details === undefined ? {} : { details: event.details }),
  };
}
