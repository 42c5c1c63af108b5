import type * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { Principal } from '../authorizer.js';

/**
 * The request context custom policies read (the `RequestContext` type of the schema). Everything here is a
 * fact the server established (the socket or a trusted proxy, the verified token, the clock), never a value
 * the client asserts unchecked.
 */
export interface CedarContext {
  /** Client address, as the server's trusted-proxy configuration resolved it. */
  readonly ip: string;
  /** Epoch seconds. */
  readonly time: number;
  /** Hour of the day in UTC, 0-23. */
  readonly hourUtc: number;
  /** Seconds since the user last proved a second factor; absent when never in this session. */
  readonly mfaAgeSeconds?: number;
  readonly authMethod: string;
  /** The environment a service account is bound to; absent for users. */
  readonly environment?: string;
  /** A device posture claim from the identity provider or a trusted proxy header. */
  readonly devicePosture?: string;
}

/** What only the transport knows: the caller supplies it (`CedarAuthorizerOptions.requestFacts`). */
export interface RequestFacts {
  readonly ip: string;
  readonly devicePosture?: string;
}

/** The context of a request at `now`: the clock, the principal's second-factor age, its binding. */
export function requestContext(principal: Principal, facts: RequestFacts, now: Date): CedarContext {
  const nowMs = now.getTime();
  const mfaMs = principal.mfaAt === undefined || principal.mfaAt === null ? NaN : Date.parse(principal.mfaAt);
  return {
    ip: facts.ip,
    time: Math.floor(nowMs / 1000),
    hourUtc: now.getUTCHours(),
    ...(Number.isNaN(mfaMs) ? {} : { mfaAgeSeconds: Math.max(0, Math.floor((nowMs - mfaMs) / 1000)) }),
    authMethod: principal.authMethod,
    ...(principal.environment === undefined || principal.environment === null
      ? {}
      : { environment: principal.environment }),
    ...(facts.devicePosture === undefined ? {} : { devicePosture: facts.devicePosture }),
  };
}

/** The Cedar JSON of a context plus the roles the principal holds at the resource. */
export function cedarContextJson(context: CedarContext, roles: readonly string[]): cedar.Context {
  const json: cedar.Context = {
    ip: { __extn: { fn: 'ip', arg: context.ip } },
    time: context.time,
    hourUtc: context.hourUtc,
    authMethod: context.authMethod,
    roles: [...roles],
  };
  if (context.mfaAgeSeconds !== undefined) json['mfaAgeSeconds'] = context.mfaAgeSeconds;
  if (context.environment !== undefined) json['environment'] = context.environment;
  if (context.devicePosture !== undefined) json['devicePosture'] = context.devicePosture;
  return json;
}
