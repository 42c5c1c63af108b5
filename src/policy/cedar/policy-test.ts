import { z } from 'zod';
import { ENVIRONMENTS } from '../../core/domain.js';
import { StrongroomError } from '../../core/errors.js';
import { ACTIONS, type Decision, type Principal, type ResourceRef } from '../authorizer.js';
import type { CedarAuthorizer, EvaluationInput } from './cedar-authorizer.js';
import type { ResourceAttributes } from './entities.js';
import { requestContext, type CedarContext } from './request-context.js';

/**
 * Policy tests as data (the Cedar integration-test practice): each case is a request with the decision, and
 * optionally the reasons, it must get. `strongroom policy test FILE` and the test suite run the same format:
 * a JSON array of cases, or JSON lines with one case per line.
 */
const name = z.string().min(1);

const principalSchema = z.strictObject({
  kind: z.enum(['user', 'service']),
  id: name,
  groups: z.array(name).optional(),
  authMethod: z.string().optional(),
  environment: z.enum(ENVIRONMENTS).optional(),
  mfaAt: z.string().optional(),
  scope: z
    .strictObject({
      projects: z.array(name).optional(),
      actions: z.array(z.string()).optional(),
      readOnly: z.boolean(),
    })
    .optional(),
});

const resourceSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('organization') }),
  z.strictObject({ kind: z.literal('project'), project: name }),
  z.strictObject({
    kind: z.literal('artifact'),
    project: name,
    artifact: name,
    sensitivity: z.string().optional(),
  }),
  z.strictObject({
    kind: z.literal('version'),
    project: name,
    artifact: name,
    version: name,
    sensitivity: z.string().optional(),
    stage: z.string().optional(),
  }),
]);

const contextSchema = z.strictObject({
  ip: z.string().optional(),
  /** Epoch seconds or an RFC 3339 time; default the time the test runs. */
  time: z.union([z.number().int(), z.iso.datetime({ offset: true })]).optional(),
  mfaAgeSeconds: z.number().int().nonnegative().optional(),
  authMethod: z.string().optional(),
  environment: z.string().optional(),
  devicePosture: z.string().optional(),
});

export const policyTestCaseSchema = z.strictObject({
  name,
  principal: principalSchema,
  action: z.enum(ACTIONS),
  resource: resourceSchema,
  context: contextSchema.optional(),
  expect: z.enum(['allow', 'deny']),
  reasons: z.array(z.string()).optional(),
});

export type PolicyTestCase = z.infer<typeof policyTestCaseSchema>;

export interface PolicyTestResult {
  readonly name: string;
  readonly passed: boolean;
  readonly expected: 'allow' | 'deny';
  readonly actual: Decision;
  /** Why the case failed, one line; absent when it passed. */
  readonly failure?: string;
}

/** Parse a policy test file: a JSON array of cases, or one JSON case per line. */
export function parsePolicyTests(text: string): PolicyTestCase[] {
  const trimmed = text.trim();
  const items: { item: unknown; where: string }[] = [];
  try {
    if (trimmed.startsWith('[')) {
      (JSON.parse(trimmed) as unknown[]).forEach((item, i) => items.push({ item, where: `case ${i + 1}` }));
    } else {
      text.split('\n').forEach((line, i) => {
        if (line.trim() !== '') items.push({ item: JSON.parse(line), where: `line ${i + 1}` });
      });
    }
  } catch (err) {
    throw new StrongroomError('invalid_request', `policy test file is not JSON: ${(err as Error).message}`);
  }
  return items.map(({ item, where }) => {
    const parsed = policyTestCaseSchema.safeParse(item);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0];
    const path = issue?.path.join('.') ?? '';
    throw new StrongroomError(
      'invalid_request',
      `policy test ${where}: ${path} ${issue?.message ?? 'is invalid'}`,
    );
  });
}

/** The principal, resource, attributes and context a case describes. */
export function policyTestInput(testCase: PolicyTestCase, now: Date): EvaluationInput {
  const p = testCase.principal;
  const principal: Principal = {
    id: p.id,
    kind: p.kind,
    authMethod: p.authMethod ?? 'password',
    ...(p.groups === undefined ? {} : { groups: p.groups }),
    ...(p.environment === undefined ? {} : { environment: p.environment }),
    ...(p.mfaAt === undefined ? {} : { mfaAt: p.mfaAt }),
    ...(p.scope === undefined
      ? {}
      : {
          scope: {
            readOnly: p.scope.readOnly,
            ...(p.scope.projects === undefined ? {} : { projects: p.scope.projects }),
            ...(p.scope.actions === undefined ? {} : { actions: p.scope.actions }),
          },
        }),
  };
  const r = testCase.resource;
  const resource: ResourceRef =
    r.kind === 'organization'
      ? { kind: 'organization' }
      : r.kind === 'project'
        ? { kind: 'project', project: r.project }
        : r.kind === 'artifact'
          ? { kind: 'artifact', project: r.project, artifact: r.artifact }
          : { kind: 'version', project: r.project, artifact: r.artifact, version: r.version };
  const attributes: ResourceAttributes = {
    ...(r.kind === 'artifact' || r.kind === 'version'
      ? { artifact: { name: r.artifact, sensitivity: r.sensitivity ?? 'internal' } }
      : {}),
    ...(r.kind === 'version' && r.stage !== undefined ? { version: { tag: r.version, stage: r.stage } } : {}),
  };
  const c = testCase.context ?? {};
  const at = c.time === undefined ? now : new Date(typeof c.time === 'number' ? c.time * 1000 : c.time);
  const derived = requestContext(principal, { ip: c.ip ?? '127.0.0.1' }, at);
  const context: CedarContext = {
    ...derived,
    ...(c.mfaAgeSeconds === undefined ? {} : { mfaAgeSeconds: c.mfaAgeSeconds }),
    ...(c.authMethod === undefined ? {} : { authMethod: c.authMethod }),
    ...(c.environment === undefined ? {} : { environment: c.environment }),
    ...(c.devicePosture === undefined ? {} : { devicePosture: c.devicePosture }),
  };
  return { principal, action: testCase.action, resource, attributes, context };
}

/**
 * Run policy test cases against an authorizer's current policies, without I/O and without the decision cache.
 * A case passes when the decision matches and, if it lists reasons, the reasons match as a set.
 */
export function runPolicyTests(
  cases: readonly PolicyTestCase[],
  authorizer: Pick<CedarAuthorizer, 'evaluate'>,
  now: Date = new Date(),
): PolicyTestResult[] {
  return cases.map((testCase) => {
    const e = authorizer.evaluate(policyTestInput(testCase, now));
    const actual: Decision = { decision: e.decision, reasons: e.reasons, errors: e.errors };
    const base = { name: testCase.name, expected: testCase.expect, actual };
    if (actual.decision !== testCase.expect)
      return { ...base, passed: false, failure: `expected ${testCase.expect}, got ${describe(actual)}` };
    if (testCase.reasons !== undefined && !sameSet(testCase.reasons, actual.reasons))
      return {
        ...base,
        passed: false,
        failure: `expected reasons [${[...testCase.reasons].sort().join(', ')}], got ${describe(actual)}`,
      };
    return { ...base, passed: true };
  });
}

function describe(decision: Decision): string {
  const errors = decision.errors.length === 0 ? '' : ` with errors [${decision.errors.join('; ')}]`;
  return `${decision.decision} because [${decision.reasons.join(', ')}]${errors}`;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const left = [...new Set(a)].sort();
  const right = [...new Set(b)].sort();
  return left.length === right.length && left.every((v, i) => v === right[i]);
}
