import { StrongroomError } from '../core/errors.js';

/**
 * RFC 8785 JSON Canonicalization Scheme: object members sorted by the UTF-16 code units of their names, no
 * white space, strings and numbers serialised as ECMAScript's JSON.stringify does (which is how RFC 8785
 * defines them). The audit chain hashes this form, so equal events always hash equally and a verifier written
 * in another language can recompute the chain.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value))
      throw new StrongroomError('invalid_request', 'JSON cannot represent a non-finite number');
    return JSON.stringify(value);
  }
  if (Array.isArray(value))
    return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new StrongroomError('invalid_request', `JSON cannot represent a value of type ${typeof value}`);
}
