import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { describe, expect, it } from 'vitest';
import { CedarAuthorizer } from '../../src/policy/cedar/cedar-authorizer.js';
import { ROLES, bindingPolicy } from '../../src/policy/cedar/roles.js';
import { cedarSchemaText, validatePolicies } from '../../src/policy/cedar/schema.js';
import { isStrongroomError } from '../../src/core/errors.js';

function errorsOf(text: string | Record<string, string>): string[] {
  const result = validatePolicies(text);
  return result.ok ? [] : result.errors;
}

const authorizer = () =>
  new CedarAuthorizer({
    bindings: [],
    customPolicies: [],
    loadAttributes: () => Promise.resolve({}),
    requestFacts: () => ({ ip: '127.0.0.1' }),
  });

describe('policy validation against the schema (strict mode)', () => {
  it('accepts a well-typed policy', () => {
    expect(
      validatePolicies(
        'permit (principal, action == Strongroom::Action::"version:download", resource is Strongroom::Version) when { resource.stage == "production" && context.hourUtc < 18 };',
      ),
    ).toEqual({ ok: true });
  });

  it('rejects an unknown attribute with the Cedar error and its suggestion', () => {
    const errors = errorsOf(
      'permit (principal, action == Strongroom::Action::"version:download", resource) when { resource.stag == "production" };',
    );
    expect(errors.join('\n')).toContain('attribute `stag` on entity type `Strongroom::Version` not found');
    expect(errors.join('\n')).toContain('did you mean `stage`?');
  });

  it('rejects an unknown context field', () => {
    expect(
      errorsOf('forbid (principal, action, resource) when { context.country == "x" };').join('\n'),
    ).toMatch(/country/);
  });

  it('rejects a type confusion (a Long compared with a String)', () => {
    expect(
      errorsOf('permit (principal, action, resource) when { context.time == "noon" };').join('\n'),
    ).toContain('the types Long and String are not compatible');
  });

  it('rejects an optional context field read without `has`', () => {
    expect(
      errorsOf('forbid (principal, action, resource) when { context.mfaAgeSeconds > 900 };'),
    ).not.toEqual([]);
  });

  it('rejects a syntax error with what the parser expected', () => {
    const errors = errorsOf('permit (principal, action, resource) when { context.time < ');
    expect(errors.join('\n')).toContain('failed to parse');
    expect(errors.join('\n')).toContain('expected');
  });

  it('rejects an unknown action and an unknown entity type', () => {
    expect(
      errorsOf('permit (principal, action == Strongroom::Action::"version:delete", resource);'),
    ).not.toEqual([]);
    expect(errorsOf('permit (principal in Strongroom::Team::"x", action, resource);')).not.toEqual([]);
  });

  it('names the policy the administrator knows', () => {
    expect(
      errorsOf({
        'policy:night-only': 'permit (principal, action, resource) when { context.time == "x" };',
      }).join(),
    ).toContain('`policy:night-only`');
  });

  it('error messages are one line each', () => {
    for (const e of errorsOf('permit (principal, action, resource) when { resource.nope && '))
      expect(e).not.toContain('\n');
  });

  it('every built-in role compiles to a policy that passes strict validation at every scope', () => {
    const scopes = [
      { type: 'Organization', id: 'default' },
      { type: 'Project', id: 'vision' },
      { type: 'Artifact', id: 'vision/resnet' },
    ] as const;
    const policies: Record<string, string> = {};
    for (const role of ROLES) {
      for (const scope of scopes) {
        const json = bindingPolicy({
          id: `${role}-${scope.type}`,
          role,
          principal: { type: 'Group', id: 'g' },
          scope,
          expiresAt: '2030-01-01T00:00:00Z',
        });
        const text = cedar.policyToText(json);
        if (text.type !== 'success') throw new Error('unrenderable');
        policies[`${role}-${scope.type}`] = text.text;
      }
    }
    expect(validatePolicies(policies)).toEqual({ ok: true });
  });

  it('the schema renders as Cedar schema text', () => {
    expect(cedarSchemaText()).toContain('entity Version in [Artifact]');
  });
});

describe('updating policies', () => {
  it('a bad custom policy is rejected with the Cedar error and the previous version stays in force', () => {
    const a = authorizer();
    let thrown: unknown;
    try {
      a.update({
        bindings: [],
        customPolicies: [
          {
            id: 'typo',
            text: 'forbid (principal, action, resource) when { resource.stag == "x" };',
            scope: { type: 'Organization', id: 'default' },
          },
        ],
      });
    } catch (err) {
      thrown = err;
    }
    expect(isStrongroomError(thrown, 'policy_invalid')).toBe(true);
    expect((thrown as Error).message).toContain('attribute `stag`');
    expect(a.version).toBe(1);
  });

  it('a custom policy holds exactly one policy', () => {
    const two = 'permit (principal, action, resource); forbid (principal, action, resource);';
    expect(() =>
      authorizer().update({
        bindings: [],
        customPolicies: [{ id: 'two', text: two, scope: { type: 'Organization', id: 'default' } }],
      }),
    ).toThrow(/exactly one policy/);
  });

  it('a binding with an unknown role, a bad scope or a bad expiry is rejected', () => {
    const base = {
      id: 'b',
      principal: { type: 'User', id: 'u' },
      scope: { type: 'Project', id: 'p' },
    } as const;
    const bad = [
      { ...base, role: 'owner' },
      { ...base, role: 'viewer', scope: { type: 'Artifact', id: 'no-slash' } },
      { ...base, role: 'viewer', expiresAt: 'tomorrow' },
    ];
    for (const binding of bad) {
      // @ts-expect-error deliberately malformed input, as it could arrive from storage
      expect(() => authorizer().update({ bindings: [binding], customPolicies: [] })).toThrow(/binding `b`/);
    }
  });

  it('two policies with the same id are rejected', () => {
    const binding = {
      id: 'b',
      role: 'viewer',
      principal: { type: 'User', id: 'u' },
      scope: { type: 'Project', id: 'p' },
    } as const;
    expect(() => authorizer().update({ bindings: [binding, binding], customPolicies: [] })).toThrow(
      /used twice/,
    );
  });
});
