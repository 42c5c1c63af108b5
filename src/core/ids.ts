import { randomBytes } from 'node:crypto';

declare const brand: unique symbol;
/** A string that is known to be an id of one kind; ids of different kinds cannot be mixed up. */
export type Id<K extends string> = string & { readonly [brand]: K };

export type ProjectId = Id<'project'>;
export type ArtifactId = Id<'artifact'>;
export type VersionId = Id<'version'>;
export type UploadId = Id<'upload'>;
export type BlobId = Id<'blob'>;
export type DataKeyId = Id<'datakey'>;
export type UserId = Id<'user'>;
export type GroupId = Id<'group'>;
export type ServiceAccountId = Id<'serviceAccount'>;
export type SessionId = Id<'session'>;
export type TokenId = Id<'token'>;
export type ElevationId = Id<'elevation'>;

const PREFIX = {
  project: 'prj',
  artifact: 'art',
  version: 'ver',
  upload: 'upl',
  blob: 'blb',
  datakey: 'dk',
  user: 'usr',
  group: 'grp',
  serviceAccount: 'sa',
  session: 'ses',
  token: 'tok',
  elevation: 'elv',
} as const;
type Kind = keyof typeof PREFIX;

/** A new random id: a kind prefix and 128 bits of randomness, sortable by nothing (no timing leak). */
export function newId<K extends Kind>(kind: K): Id<K> {
  return `${PREFIX[kind]}_${randomBytes(16).toString('hex')}` as Id<K>;
}

const ID_SHAPE = /^(prj|art|ver|upl|blb|dk|usr|grp|sa|ses|tok|elv)_[0-9a-f]{32}$/;

/** Parse an id received from outside (a URL, a file name); undefined when it is not an id of that kind. */
export function parseId<K extends Kind>(kind: K, input: string): Id<K> | undefined {
  return ID_SHAPE.test(input) && input.startsWith(`${PREFIX[kind]}_`) ? (input as Id<K>) : undefined;
}
