import type * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { StrongroomError, quote } from '../../core/errors.js';
import type { Principal, ResourceRef } from '../authorizer.js';
import { cedarType, type EntityType, type ResourceType } from './schema.js';

/**
 * Request entities for Cedar, built from plain data with no I/O (the caller loads the attributes). The entity
 * hierarchy is the containment of DESIGN.md section 7: Organization > Project > Artifact > Version, so a
 * binding `resource in Project::"p"` covers every artifact and version of `p`.
 */

/** What the storage knows about the resource; the caller supplies it (`CedarAuthorizerOptions.loadAttributes`). */
export interface ResourceAttributes {
  /** The project of an upload session (the other resource kinds name their project themselves). */
  readonly project?: string;
  readonly artifact?: { readonly name: string; readonly sensitivity: string };
  readonly version?: { readonly tag: string; readonly stage: string };
}

/** A Cedar entity uid with its namespaced type (`Strongroom::Project`). */
export interface EntityUid {
  readonly type: string;
  readonly id: string;
}

/**
 * Sensitivity of an artifact whose attributes were not supplied: the most sensitive label, so a missing
 * lookup can only make policies stricter (fail closed).
 */
export const UNKNOWN_SENSITIVITY = 'restricted';
/** Stage of a version that does not exist yet (being created) or whose stage was not supplied. */
export const UNKNOWN_STAGE = 'none';

export function entityUid(type: EntityType, id: string): EntityUid {
  return { type: cedarType(type), id };
}

/** The Cedar principal of a Strongroom principal: a `User` or a `ServiceAccount`, member of its groups. */
export function principalUid(principal: Pick<Principal, 'id' | 'kind'>): EntityUid {
  return entityUid(principal.kind === 'service' ? 'ServiceAccount' : 'User', principal.id);
}

/** Where a resource sits in the hierarchy: the ids that decide which policies and bindings apply. */
export interface ResourceChain {
  readonly type: ResourceType;
  readonly uid: EntityUid;
  /** Project name, absent for organization-level resources. */
  readonly project?: string;
  /** Artifact name within the project. */
  readonly artifact?: string;
  readonly sensitivity?: string;
  readonly tag?: string;
  readonly stage?: string;
}

export interface RequestEntities {
  readonly principal: EntityUid;
  readonly resource: EntityUid;
  readonly chain: ResourceChain;
  readonly entities: cedar.EntityJson[];
}

/**
 * Where `resource` sits, from the reference and the loaded attributes. An upload session or a stored record
 * (binding, policy, elevation) is placed where its attributes say (its version, artifact or project), or at
 * the organization when they say nothing.
 * Names containing `/` are refused: the separator of the composite ids must stay unambiguous.
 */
export function resourceChain(
  organization: string,
  resource: ResourceRef,
  attributes: ResourceAttributes,
): ResourceChain {
  const project = resource.kind === 'organization' ? undefined : projectOf(resource, attributes);
  const artifact =
    resource.kind === 'artifact' || resource.kind === 'version'
      ? resource.artifact
      : attributes.artifact?.name;
  const tag = resource.kind === 'version' ? resource.version : attributes.version?.tag;
  for (const name of [project, artifact, tag]) {
    if (name?.includes('/') === true || name === '')
      throw new StrongroomError('invalid_name', `name ${quote(name)} cannot be authorized`);
  }
  if (project === undefined) return { type: 'Organization', uid: entityUid('Organization', organization) };
  if (artifact === undefined || resource.kind === 'project')
    return { type: 'Project', uid: entityUid('Project', project), project };
  const sensitivity = attributes.artifact?.sensitivity ?? UNKNOWN_SENSITIVITY;
  if (tag === undefined || resource.kind === 'artifact') {
    const uid = entityUid('Artifact', `${project}/${artifact}`);
    return { type: 'Artifact', uid, project, artifact, sensitivity };
  }
  const stage = attributes.version?.stage ?? UNKNOWN_STAGE;
  const uid = entityUid('Version', `${project}/${artifact}/${tag}`);
  return { type: 'Version', uid, project, artifact, sensitivity, tag, stage };
}

function projectOf(resource: Exclude<ResourceRef, { kind: 'organization' }>, attributes: ResourceAttributes) {
  return resource.kind === 'upload' || resource.kind === 'record' ? attributes.project : resource.project;
}

/**
 * The principal (with its groups as parents) and the resource with its ancestors, each with the attributes
 * the schema declares: everything a policy can read besides the context. Entities are kept to the minimum
 * Cedar needs, since passing each one into Cedar costs time on every decision: ancestors are listed
 * directly as parents (so `in` needs no intermediate entity), and attribute-less entities that are only ever
 * parents (groups, the organization, the project above an artifact) are left out.
 */
export function requestEntities(
  organization: string,
  principal: Pick<Principal, 'id' | 'kind' | 'groups'>,
  chain: ResourceChain,
): RequestEntities {
  const principalEntity = principalUid(principal);
  const groups = (principal.groups ?? []).map((g) => entityUid('Group', g));
  const entities: cedar.EntityJson[] = [{ uid: principalEntity, attrs: {}, parents: groups }];
  const org = entityUid('Organization', organization);
  if (chain.project === undefined)
    return { principal: principalEntity, resource: chain.uid, chain, entities };
  const project = entityUid('Project', chain.project);
  if (chain.artifact === undefined) {
    entities.push({ uid: project, attrs: {}, parents: [org] });
    return { principal: principalEntity, resource: chain.uid, chain, entities };
  }
  const artifact = entityUid('Artifact', `${chain.project}/${chain.artifact}`);
  entities.push({
    uid: artifact,
    attrs: { sensitivity: chain.sensitivity ?? UNKNOWN_SENSITIVITY },
    parents: [project, org],
  });
  if (chain.tag !== undefined) {
    entities.push({
      uid: chain.uid,
      attrs: { stage: chain.stage ?? UNKNOWN_STAGE, artifact: { __entity: artifact } },
      parents: [artifact, project, org],
    });
  }
  return { principal: principalEntity, resource: chain.uid, chain, entities };
}
