import { AsyncLocalStorage } from 'node:async_hooks';
import type { MetadataStore, MetadataWriter } from '../storage/metadata-store.js';
import type { AuditActor, AuditEventBody } from './audit-event.js';
import { unavailable, type AuditLog } from './audit-log.js';

/**
 * On whose behalf work runs: an HTTP request, or a background action (rewrap, expiry, retention). Every metadata
 * transaction made inside a scope commits the scope's event with it (H3), so no code path that changes state
 * can forget to record it.
 */
export interface AuditScope {
  /**
   * The event a committed change of this scope records (outcome `succeeded`), built when the transaction's work
   * is done so it can describe it; null when there is nothing to record.
   */
  readonly event: () => AuditEventBody | null;
  /**
   * `once`: the first committed transaction records the event and later ones record nothing more (a request
   * is one event). `each`: every transaction records one (a background sweep that commits in batches).
   */
  readonly record: 'once' | 'each';
  /** Set when a transaction of this scope committed its event. */
  committed: boolean;
  /**
   * Lets the code doing the work say who acted and add facts the request alone does not show (the user a
   * login named, the lockout it caused). Only request scopes take it; others ignore it.
   */
  describe?(facts: AuditFacts): void;
}

export interface AuditFacts {
  readonly actor?: AuditActor;
  readonly details?: AuditEventBody['details'];
}

/** Adds facts to the current request's event, if there is one. */
export function describeCurrent(facts: AuditFacts): void {
  current.getStore()?.describe?.(facts);
}

/** Runs `fn` so that its transactions record no event (bookkeeping such as a failed-login counter). */
export function withoutEvent<T>(fn: () => T): T {
  return current.run({ event: () => null, record: 'each', committed: false }, fn);
}

const current = new AsyncLocalStorage<AuditScope>();

/** Runs `fn` (and everything it awaits) inside `scope`. */
export function runInScope<T>(scope: AuditScope, fn: () => T): T {
  return current.run(scope, fn);
}

export function currentScope(): AuditScope | undefined {
  return current.getStore();
}

/**
 * The metadata store every service is given: reads pass through; each transaction inside an audit scope also
 * appends the scope's event and commits it with the change. A failed append rolls the change back and the
 * caller sees `audit_unavailable` (H3). Transactions outside any scope (start-up, the audit log's own group
 * commits and checkpoints) are not recorded.
 */
export function auditedStore(inner: MetadataStore, getLog: () => AuditLog): MetadataStore {
  const transaction = async <T>(fn: (tx: MetadataWriter) => Promise<T>): Promise<T> => {
    const scope = current.getStore();
    if (scope === undefined || (scope.record === 'once' && scope.committed)) return inner.transaction(fn);
    const log = getLog();
    let auditFailure: unknown;
    const { result, events } = await inner.transaction(async (tx) => {
      const value = await fn(tx);
      const event = scope.event();
      if (event === null) return { result: value, events: [] };
      try {
        return { result: value, events: await log.appendIn(tx, [event]) };
      } catch (err) {
        auditFailure = unavailable(err);
        throw auditFailure;
      }
    });
    if (auditFailure !== undefined) throw auditFailure;
    if (events.length > 0) scope.committed = true;
    log.published(events);
    return result;
  };
  return new Proxy(inner, {
    get(target, property) {
      if (property === 'transaction') return transaction;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** A scope for background work done by the server itself. */
export function systemScope(
  action: string,
  resource: string | null,
  details?: () => AuditEventBody['details'] | null,
): AuditScope {
  return {
    event: () => {
      const facts = details?.();
      return facts === null ? null : systemEvent(action, resource, 'succeeded', facts);
    },
    record: 'each',
    committed: false,
  };
}

/** An event about the server's own work (no HTTP request behind it). */
export function systemEvent(
  action: string,
  resource: string | null,
  outcome: 'succeeded' | 'failed',
  details?: AuditEventBody['details'],
  errorCode: string | null = null,
): AuditEventBody {
  return {
    category: 'system',
    actor: { id: 'strongroom', type: 'system', authMethod: null },
    action,
    resource,
    decision: { effect: 'none', policies: [] },
    outcome,
    errorCode,
    severity: outcome === 'succeeded' ? 'info' : 'error',
    request: null,
    ...(details ? { details } : {}),
  };
}
