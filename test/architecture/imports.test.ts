import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * DESIGN.md section 1: imports point down toward core. Each layer lists the layers it may import; anything
 * else (including an adapter imported by a service) fails here.
 */
const ALLOWED: Record<string, readonly string[]> = {
  core: [],
  crypto: ['core'],
  policy: ['core'],
  // The audit log appends inside the metadata transaction of the change it records (H3), so it needs the
  // storage interfaces (never an implementation); services record background work through its scopes.
  audit: ['core', 'crypto', 'storage/interfaces'],
  scan: ['core'],
  provenance: ['core', 'crypto'],
  api: ['core'],
  'storage/interfaces': ['core'],
  'storage/sqlite': ['core', 'storage/interfaces'],
  'storage/fs': ['core', 'storage/interfaces'],
  registry: ['core', 'crypto', 'storage/interfaces', 'audit'],
  identity: ['core', 'crypto', 'policy', 'storage/interfaces', 'audit'],
  governance: ['core', 'crypto', 'policy', 'storage/interfaces', 'registry', 'audit'],
  monitor: ['core', 'storage/interfaces'],
  client: ['core', 'api'],
  // `audit verify` and `audit proof` check exports and proofs offline, with the same verifier as the tests.
  cli: ['core', 'api', 'client', 'audit'],
  server: ['*'],
};

const root = resolve(import.meta.dirname, '../../src');

function layerOf(file: string): string {
  const rel = relative(root, file).split('/');
  if (rel[0] === 'storage') return rel.length === 2 ? 'storage/interfaces' : `storage/${rel[1]}`;
  return rel[0] ?? '';
}

function* walk(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* walk(path);
    else if (name.endsWith('.ts')) yield path;
  }
}

describe('layering', () => {
  it('every import points down the dependency order of DESIGN.md', () => {
    const violations: string[] = [];
    for (const file of walk(root)) {
      const from = layerOf(file);
      const allowed = ALLOWED[from];
      expect(allowed, `unknown layer ${from}`).toBeDefined();
      const source = readFileSync(file, 'utf8');
      for (const match of source.matchAll(
        /(?:import|export)[^'"]*from\s+'(\.[^']+)'|import\('(\.[^']+)'\)/g,
      )) {
        const spec = match[1] ?? match[2] ?? '';
        const to = layerOf(resolve(file, '..', spec));
        if (to === from || allowed!.includes('*') || allowed!.includes(to)) continue;
        // The CLI's `serve` command starts the server, the one composition root.
        if (from === 'cli' && to === 'server' && /import\('\.\.\/server\/main\.js'\)/.test(match[0]))
          continue;
        violations.push(`${relative(root, file)} imports ${spec} (${from} -> ${to})`);
      }
    }
    expect(violations).toEqual([]);
  });
});
