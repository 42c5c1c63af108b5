import { StrongroomError } from '../core/errors.js';

/**
 * RFC 8785 JSON Canonicalization Scheme: object members sorted by the UTF-16 code units of their names, no
 * white space, strings and numbers serialised as ECMAScript's JSON.stringify does (which is how RFC 8785
 * defines them). The audit chain hashes this form, so equal events always hash equally and a verifier written
 * in another language can recompute the chain.
 */
export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value))
        throw new StrongroomError('invalid_request', 'JSON cannot represent a non-finite number');
      return JSON.stringify(value);
    case 'object':
      if (value === null) return 'null';
      return Array.isArray(value) ? canonicalArray(value) : canonicalObject(value as Record<string, unknown>);
    default:
      throw new StrongroomError('invalid_request', `JSON cannot represent a value of type ${typeof value}`);
  }
}

// The audit log canonicalises every event it writes and `audit verify` every event it reads, so this is a hot
// path: plain loops and string appends instead of entries/map/join, and the sort only when members are out of
// order (JSON.parse keeps the order of the text, which for a canonical event is already sorted).

function canonicalArray(values: readonly unknown[]): string {
  let out = '[';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i > 0) out += ',';
    out += canonicalJson(v === undefined ? null : v);
  }
  return `${out}]`;
}

function canonicalObject(object: Record<string, unknown>): string {
  const keys = Object.keys(object);
  for (let i = 1; i < keys.length; i++) {
    // The default sort compares UTF-16 code units, as RFC 8785 section 3.2.3 requires; names are unique.
    if ((keys[i - 1] as string) > (keys[i] as string)) {
      keys.sort();
      break;
    }
  }
  let out = '{';
  for (const key of keys) {
    const v = object[key];
    if (v === undefined) continue;
    if (out.length > 1) out += ',';
    out += `${quote(key)}:${canonicalJson(v)}`;
  }
  return `${out}}`;
}

/** JSON.stringify of a string, without the call for the common string that needs no escape. */
function quote(s: string): string {
  return needsEscape(s) ? JSON.stringify(s) : `"${s}"`;
}

/** What JSON.stringify escapes: a quote, a backslash, a control character or a (lone) surrogate. */
function needsEscape(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return true;
  }
  return false;
}
