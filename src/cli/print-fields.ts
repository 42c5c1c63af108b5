import type { Output } from './output.js';

/** Indented `label  value` lines with the values aligned: the detail view of `whoami`, `user show`, ... */
export function printFields(out: Output, fields: readonly (readonly [string, string])[]): void {
  const width = Math.max(0, ...fields.map(([label]) => label.length)) + 2;
  for (const [label, value] of fields) out.line(`  ${label.padEnd(width)}${value}`);
}
