import './v8-workaround.js';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { ACTIONS, type Action } from '../authorizer.js';

/**
 * The Cedar schema of Strongroom (DESIGN.md section 7): every policy an administrator adds is validated
 * against it in strict mode before it is accepted, so a typo in an attribute name or a type confusion is
 * rejected up front instead of silently never matching at request time.
 */
export const CEDAR_NAMESPACE = 'Strongroom';

export type PrincipalType = 'User' | 'ServiceAccount';
export type ResourceType = 'Organization' | 'Project' | 'Artifact' | 'Version';
export type EntityType = PrincipalType | 'Group' | ResourceType;

const SCOPES: readonly ResourceType[] = ['Organization', 'Project', 'Artifact'];

/** The resource type each action is asked about (the `resourceOf` finders of the server routes). */
export const ACTION_RESOURCE_TYPE: Readonly<Record<Action, ResourceType | readonly ResourceType[]>> = {
  'session:read': 'Organization',
  'project:create': 'Organization',
  'project:list': 'Organization',
  'project:read': 'Project',
  'artifact:create': 'Project',
  'artifact:list': 'Project',
  'artifact:read': 'Artifact',
  'artifact:update': 'Artifact',
  'version:list': 'Artifact',
  'version:read': 'Version',
  'version:download': 'Version',
  'version:create': 'Version',
  'key:read': 'Organization',
  'key:rotate': 'Organization',
  'audit:read': 'Organization',
  'audit:prune': 'Organization',
  'auth:login': 'Organization',
  'auth:refresh': 'Organization',
  'auth:enroll': 'Organization',
  'auth:sso': 'Organization',
  'auth:federate': 'Organization',
  'auth:step-up': 'Organization',
  'auth:password': 'Organization',
  'auth:recovery-codes': 'Organization',
  'session:list': 'Organization',
  'session:revoke': 'Organization',
  'user:create': 'Organization',
  'user:list': 'Organization',
  'user:read': 'Organization',
  'user:update': 'Organization',
  'group:create': 'Organization',
  'group:list': 'Organization',
  'group:update': 'Organization',
  'sa:create': 'Organization',
  'sa:list': 'Organization',
  'sa:update': 'Organization',
  'token:create': 'Organization',
  'token:list': 'Organization',
  'token:revoke': 'Organization',
  'bootstrap:manage': 'Organization',
  // Access is managed and reviewed at the scope a binding, policy or elevation applies to.
  'policy:read': SCOPES,
  'policy:manage': SCOPES,
  'access:review': SCOPES,
  'elevation:request': 'Organization',
  'elevation:read': 'Organization',
  'elevation:approve': SCOPES,
};

/** The fully qualified Cedar type name, `Strongroom::Project`. */
export function cedarType(type: EntityType | 'Action'): string {
  return `${CEDAR_NAMESPACE}::${type}`;
}

const optional = (type: cedar.TypeOfAttribute<string>): cedar.TypeOfAttribute<string> => ({
  ...type,
  required: false,
});

/** The request context every action receives; `docs/authorization.md` describes each field. */
const REQUEST_CONTEXT: cedar.CommonType<string> = {
  type: 'Record',
  attributes: {
    ip: { type: 'Extension', name: 'ipaddr' },
    time: { type: 'Long' },
    hourUtc: { type: 'Long' },
    mfaAgeSeconds: optional({ type: 'Long' }),
    authMethod: { type: 'String' },
    environment: optional({ type: 'String' }),
    devicePosture: optional({ type: 'String' }),
    roles: { type: 'Set', element: { type: 'String' } },
  },
};

const PRINCIPAL_TYPES: readonly PrincipalType[] = ['User', 'ServiceAccount'];

function actionsOfSchema(): Record<string, cedar.ActionType<string>> {
  const actions: Record<string, cedar.ActionType<string>> = {};
  for (const action of ACTIONS) {
    actions[action] = {
      appliesTo: {
        principalTypes: [...PRINCIPAL_TYPES],
        resourceTypes: [ACTION_RESOURCE_TYPE[action]].flat(),
        context: { type: 'RequestContext' },
      },
    };
  }
  return actions;
}

/** The schema in Cedar's JSON schema format. */
export const CEDAR_SCHEMA: cedar.SchemaJson<string> = {
  [CEDAR_NAMESPACE]: {
    commonTypes: { RequestContext: REQUEST_CONTEXT },
    entityTypes: {
      Group: {},
      User: { memberOfTypes: ['Group'] },
      ServiceAccount: { memberOfTypes: ['Group'] },
      Organization: {},
      Project: { memberOfTypes: ['Organization'] },
      Artifact: {
        memberOfTypes: ['Project'],
        shape: { type: 'Record', attributes: { sensitivity: { type: 'String' } } },
      },
      Version: {
        memberOfTypes: ['Artifact'],
        shape: {
          type: 'Record',
          attributes: { stage: { type: 'String' }, artifact: { type: 'Entity', name: 'Artifact' } },
        },
      },
    },
    actions: actionsOfSchema(),
  },
};

let schemaText: string | undefined;

/** The schema in Cedar's human-readable schema syntax (for `docs/authorization.md` and the CLI). */
export function cedarSchemaText(): string {
  if (schemaText !== undefined) return schemaText;
  const answer = cedar.schemaToText(CEDAR_SCHEMA);
  if (answer.type === 'failure') throw new Error(answer.errors.map(formatCedarError).join('; '));
  schemaText = answer.text;
  return schemaText;
}

export type PolicyValidation = { readonly ok: true } | { readonly ok: false; readonly errors: string[] };

/**
 * Validate policies against the schema in strict mode (the Cedar validator), the gate every custom policy
 * passes before it is accepted. Accepts policy text (ids `policy0`, ...) or a map of policy id to text, so
 * errors name the policy the administrator knows. Errors are Cedar's own messages, one line each.
 */
export function validatePolicies(policies: string | Readonly<Record<string, string>>): PolicyValidation {
  const answer = cedar.validate({
    schema: CEDAR_SCHEMA,
    policies: { staticPolicies: typeof policies === 'string' ? policies : { ...policies } },
    validationSettings: { mode: 'strict' },
  });
  if (answer.type === 'failure') return { ok: false, errors: answer.errors.map(formatCedarError) };
  if (answer.validationErrors.length === 0) return { ok: true };
  return { ok: false, errors: answer.validationErrors.map((e) => formatCedarError(e.error)) };
}

/** One line per Cedar error: its message, the help it offers, and what the parser expected. */
export function formatCedarError(error: cedar.DetailedError): string {
  const parts = [error.message];
  if (error.help !== null) parts.push(error.help);
  const label = error.sourceLocations?.find((l) => l.label !== null)?.label;
  if (label !== undefined && label !== null) parts.push(label);
  return parts.join('; ').replace(/\s*\n\s*/g, ' ');
}
