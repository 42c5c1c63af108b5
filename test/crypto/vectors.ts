import { readFileSync } from 'node:fs';

/** Reads a JSON fixture under test/fixtures/crypto and checks it has a `vectors` array of string/number records. */
export function loadVectors(file: string): readonly Readonly<Record<string, string | number>>[] {
  const parsed: unknown = JSON.parse(
    readFileSync(new URL(`../fixtures/crypto/${file}`, import.meta.url), 'utf8'),
  );
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    !('vectors' in parsed) ||
    !Array.isArray(parsed.vectors)
  ) {
    throw new Error(`${file} has no vectors array`);
  }
  return parsed.vectors as Readonly<Record<string, string | number>>[];
}

export function hex(vector: Readonly<Record<string, string | number>>, field: string): Buffer {
  const value = vector[field];
  if (typeof value !== 'string') throw new Error(`vector field ${field} is not a hex string`);
  return Buffer.from(value, 'hex');
}
