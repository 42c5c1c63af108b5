import type * as cedar from '@cedar-policy/cedar-wasm/nodejs';

/**
 * Which context fields a policy set reads and how finely, so the decision cache keys on exactly what can
 * change a decision and nothing else. A Long field that policies only compare with literals
 * (`context.time < 1767225600`, `context.mfaAgeSeconds <= 900`) is bucketed by its position among those
 * literals, which is exact: two values in the same bucket give every comparison the same result. Any other
 * use keeps the raw value in the key.
 */
export interface ContextReads {
  /** A policy reads the context as a whole: every field keys the cache. */
  readonly all: boolean;
  /** Field name -> sorted literals it is compared with, or `raw`. */
  readonly fields: ReadonlyMap<string, readonly number[] | 'raw'>;
}

const COMPARISONS = new Set(['<', '<=', '>', '>=', '==', '!=']);

type Json = cedar.CedarValueJson | cedar.Expr | cedar.Clause | undefined;

function contextField(node: Json): string | undefined {
  if (typeof node !== 'object' || node === null || Array.isArray(node) || !('.' in node)) return undefined;
  const access = node['.'] as { left: Json; attr: string };
  const left = access.left;
  if (typeof left === 'object' && left !== null && 'Var' in left && left.Var === 'context')
    return access.attr;
  return undefined;
}

function literalNumber(node: Json): number | undefined {
  if (typeof node !== 'object' || node === null || Array.isArray(node) || !('Value' in node))
    return undefined;
  // Beyond 2^53 the JavaScript number is not the Cedar Long: key on the raw value instead.
  return typeof node.Value === 'number' && Number.isSafeInteger(node.Value) ? node.Value : undefined;
}

class ReadCollector {
  all = false;
  readonly literals = new Map<string, Set<number>>();
  readonly raw = new Set<string>();

  visit(node: Json): void {
    if (typeof node !== 'object' || node === null) return;
    if (Array.isArray(node)) {
      for (const item of node) this.visit(item);
      return;
    }
    if ('Var' in node && node.Var === 'context') {
      this.all = true; // the context record used whole (not through `.` or `has`)
      return;
    }
    const field = contextField(node);
    if (field !== undefined) {
      this.raw.add(field);
      return;
    }
    for (const [key, value] of Object.entries(node)) {
      if (COMPARISONS.has(key) && this.comparison(value as { left: Json; right: Json })) continue;
      if (key === 'has' && this.presence(value as { left: Json; attr: string | string[] })) continue;
      this.visit(value as Json);
    }
  }

  /** `context.f OP literal` (either side): record the literal instead of the raw value. */
  private comparison({ left, right }: { left: Json; right: Json }): boolean {
    const [field, literal] =
      contextField(left) !== undefined
        ? [contextField(left), literalNumber(right)]
        : [contextField(right), literalNumber(left)];
    if (field === undefined || literal === undefined) return false;
    let set = this.literals.get(field);
    if (set === undefined) this.literals.set(field, (set = new Set()));
    set.add(literal);
    return true;
  }

  /** `context has f`: presence is always part of a field's bucket, so only mark the field as read. */
  private presence({ left, attr }: { left: Json; attr: string | string[] }): boolean {
    if (typeof left !== 'object' || left === null || !('Var' in left) || left.Var !== 'context') return false;
    const first = Array.isArray(attr) ? attr[0] : attr;
    if (first === undefined) return false;
    if (!this.literals.has(first)) this.literals.set(first, new Set());
    if (Array.isArray(attr) && attr.length > 1) this.raw.add(first);
    return true;
  }
}

/** The context reads of a set of policies (Cedar JSON form). */
export function contextReads(policies: Iterable<cedar.PolicyJson>): ContextReads {
  const collector = new ReadCollector();
  for (const policy of policies) collector.visit(policy.conditions as Json);
  const fields = new Map<string, readonly number[] | 'raw'>();
  for (const [field, literals] of collector.literals)
    fields.set(
      field,
      [...literals].sort((a, b) => a - b),
    );
  for (const field of collector.raw) fields.set(field, 'raw');
  return { all: collector.all, fields };
}

/** The part of the cache key that the context contributes. */
export function contextKey(reads: ContextReads, context: Readonly<Record<string, unknown>>): string {
  if (reads.all) return JSON.stringify(context);
  let key = '';
  for (const [field, how] of reads.fields) {
    const value = context[field];
    key += `${field}=`;
    if (value === undefined) key += '-';
    else if (how === 'raw' || typeof value !== 'number') key += JSON.stringify(value);
    else key += bucketOf(how, value);
    key += ';';
  }
  return key;
}

/** Position of `value` among sorted literals, and whether it equals one: exact for every comparison. */
function bucketOf(literals: readonly number[], value: number): string {
  let low = 0;
  let high = literals.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((literals[mid] ?? Infinity) < value) low = mid + 1;
    else high = mid;
  }
  return literals[low] === value ? `${low}=` : `${low}`;
}
