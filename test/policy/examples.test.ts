import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CedarAuthorizer } from '../../src/policy/cedar/cedar-authorizer.js';
import { parsePolicyTests, runPolicyTests } from '../../src/policy/cedar/policy-test.js';
import type { RoleBinding } from '../../src/policy/cedar/roles.js';
import { validatePolicies } from '../../src/policy/cedar/schema.js';

/** The documented example policies (docs/authorization.md), each with its file of policy test cases. */
const dir = resolve(import.meta.dirname, '../fixtures/policy/examples');
const bindings = JSON.parse(readFileSync(join(dir, 'bindings.json'), 'utf8')) as RoleBinding[];
const examples = readdirSync(dir)
  .filter((f) => f.endsWith('.cases.json'))
  .map((f) => f.slice(0, -'.cases.json'.length));

function authorizerWith(id: string): CedarAuthorizer {
  return new CedarAuthorizer({
    bindings,
    customPolicies: [
      {
        id,
        text: readFileSync(join(dir, `${id}.cedar`), 'utf8'),
        scope: { type: 'Organization', id: 'default' },
      },
    ],
    loadAttributes: () => Promise.reject(new Error('policy tests load nothing')),
    requestFacts: () => ({ ip: '127.0.0.1' }),
  });
}

describe('example policies', () => {
  it('ships the three examples of issue 5', () => {
    expect(examples.sort()).toEqual([
      'production-pulls-production',
      'quarantine-incident-responders-only',
      'restricted-corporate-mfa',
    ]);
  });

  for (const id of examples) {
    it(`${id} passes strict validation against the schema`, () => {
      expect(validatePolicies(readFileSync(join(dir, `${id}.cedar`), 'utf8'))).toEqual({ ok: true });
    });

    it(`${id} decides every case of ${id}.cases.json`, () => {
      const cases = parsePolicyTests(readFileSync(join(dir, `${id}.cases.json`), 'utf8'));
      expect(cases.length).toBeGreaterThan(2);
      const failures = runPolicyTests(cases, authorizerWith(id)).filter((r) => !r.passed);
      expect(failures.map((r) => `${r.name}: ${r.failure ?? ''}`)).toEqual([]);
    });
  }

  it('the documentation shows each example exactly as tested', () => {
    const doc = readFileSync(resolve(import.meta.dirname, '../../docs/authorization.md'), 'utf8');
    for (const id of examples) {
      const policy = readFileSync(join(dir, `${id}.cedar`), 'utf8').trim();
      expect(doc, id).toContain(policy);
    }
  });
});
