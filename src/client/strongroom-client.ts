import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import type { Static } from 'typebox';
import type {
  AccessOfView,
  BindingList,
  BindingView,
  CreateBindingBody,
  DecideElevationBody,
  ElevationList,
  ElevationStatusSchema,
  ElevationView,
  ExplainBody,
  ExplainView,
  PolicyList,
  PolicySchemaView,
  PolicyTestView,
  PolicyView,
  PutPolicyBody,
  RequestElevationBody,
  ValidatePolicyBody,
  ValidatePolicyView,
  WhoCanView,
  FederatedTokenView,
  SsoStartView,
  AuditCheckpointView,
  AuditEventPage,
  AuditPruneResult,
  AuditSearchQuery,
  ConsistencyProofView,
  InclusionProofView,
  CommitUploadBody,
  ArtifactPage,
  ArtifactView,
  BootstrapTokenView,
  CreateArtifactBody,
  CreateGroupBody,
  CreateProjectBody,
  CreateServiceAccountBody,
  CreateTokenBody,
  CreateUploadBody,
  EnrollFinishView,
  EnrollStartView,
  GroupMembersView,
  GroupPage,
  GroupView,
  InviteUserBody,
  InviteView,
  IssuedTokenView,
  KeysView,
  LoginBody,
  PageQuery,
  PartProgress,
  ProjectPage,
  ProjectView,
  RotateResult,
  ServiceAccountPage,
  ServiceAccountView,
  SessionTokensView,
  StepUpView,
  TokenList,
  TokenView,
  UpdateArtifactBody,
  UploadView,
  UserPage,
  UserView,
  VersionDetail,
  VersionPage,
  VersionView,
  WhoAmI,
} from '../api/schemas.js';
import { UPLOAD_OFFSET_HEADER } from '../api/schemas.js';
import { StrongroomError, quote } from '../core/errors.js';
import { parseId } from '../core/ids.js';
import {
  parseArtifactName,
  parseFilePath,
  parseProjectName,
  parseVersionTag,
  type ArtifactRef,
  type VersionRef,
} from '../core/names.js';
import { ApiError, apiErrorFromResponse } from './api-error.js';
import { ConnectionError, describeNetworkCause } from './connection-error.js';
import { pullVersion, type PullOptions, type PullResult } from './pull-version.js';
import { pushVersion, type PushOptions } from './push-version.js';
import { nodeRequest, type NodeResponse } from './node-transport.js';

export interface StrongroomClientOptions {
  /** Base URL of the server, such as `https://registry.example.com`; a path prefix is kept. */
  readonly url: string;
  /** Bearer token; sent only in the Authorization header, never in a URL. */
  readonly token?: string | undefined;
  /** A fetch implementation to use instead of the global one. */
  readonly fetch?: typeof fetch;
  readonly userAgent?: string;
  /** Keeps a user session usable: refreshes an expired access token, steps up when asked to. */
  readonly session?: SessionKeeper;
}

/**
 * How a client recovers when the server refuses a request for a reason a person can fix: an expired access
 * token (refresh it) or a second factor that is too old (step up with a fresh TOTP code). A request recovers
 * at most once from each, and only a request that can be sent again unchanged (never a streamed upload body,
 * which is why `refreshDue` lets the client refresh before sending one). Concurrent requests share one
 * recovery: a refresh token is single-use, and one prompt is enough.
 */
export interface SessionKeeper {
  /** True when the current token is known to be expired or about to be: refreshed before the next request. */
  refreshDue?(): boolean;
  /** The token was refused (`unauthenticated`): a new token to retry with, or undefined to give up. */
  refresh?(): Promise<string | undefined>;
  /** The action needs a recent second factor (`mfa_required`): a TOTP code the client steps up with, or reject. */
  stepUpCode?(error: ApiError): Promise<string>;
}

export interface FileRef extends VersionRef {
  readonly path: string;
}

export interface ByteRange {
  readonly start: number;
  /** Inclusive; to the end of the file when left out. */
  readonly end?: number;
}

export interface DownloadFileOptions extends FileRef {
  readonly range?: ByteRange;
  readonly signal?: AbortSignal;
}

export interface FileDownload {
  /** 200 for the whole file, 206 for a range. */
  readonly status: number;
  readonly body: Readable;
  readonly contentLength: number | undefined;
  readonly contentRange: string | undefined;
  /** `"sha256:<hex>"` of the whole file. */
  readonly etag: string | undefined;
  readonly requestId: string | undefined;
}

export interface UploadPartOptions {
  /** The part's durable `received`: where these bytes start. */
  readonly offset: number;
  /** How many bytes `body` yields; sent as Content-Length. */
  readonly length: number;
  readonly body: Uint8Array | AsyncIterable<Uint8Array>;
  readonly signal?: AbortSignal;
}

/** Where an elevation request stands: `pending` and `expired` are undecided, `active` and `ended` approved. */
export type ElevationStatus = Static<typeof ElevationStatusSchema>;

/** Lists of role bindings and custom policies: everything, or what lies within one scope. */
export interface ScopeQuery {
  /** `organization`, `project:PROJECT` or `artifact:PROJECT/ARTIFACT`. */
  readonly scope?: string;
}

interface RequestOptions {
  readonly query?: Readonly<Record<string, string | number | undefined>>;
  readonly json?: unknown;
  readonly body?: Uint8Array | AsyncIterable<Uint8Array>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal | undefined;
  /** Send no Authorization header: the public sign-in routes take their credentials in the body. */
  readonly anonymous?: boolean;
  /**
   * Recover from `unauthenticated` and `mfa_required` through the SessionKeeper (default true). Off for the
   * calls that prove a factor, where 401 means the proof was wrong and a retry would only count as a failure.
   */
  readonly recover?: boolean;
}

type RecoverableCode = 'unauthenticated' | 'mfa_required';

function recoverableCode(err: unknown): RecoverableCode | undefined {
  if (!(err instanceof ApiError)) return undefined;
  return err.code === 'unauthenticated' || err.code === 'mfa_required' ? err.code : undefined;
}

/** The package version this client speaks for (sent in User-Agent). */
export const CLIENT_VERSION = '0.1.0';
const UPLOAD_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** The shape the server accepts for a group member or a token owner (`user:NAME`, `sa:NAME`). */
const PRINCIPAL_REF = /^(user|sa):[a-z0-9._-]{1,64}$/;
/** The id of a role binding or a custom policy. */
const RECORD_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
// Visible ASCII only: a token with CR/LF could inject headers, one with spaces is not a bearer token.
const TOKEN_SHAPE = /^[\x21-\x7e]+$/;

function isLoopback(hostname: string): boolean {
  return (
    hostname === 'localhost' ||
    hostname.endsWith('.localhost') ||
    hostname === '[::1]' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
  );
}

/**
 * Parse the server URL once: http(s) only, no credentials or query in it, and plain http only to loopback,
 * because a bearer token sent in clear over a network is a token given away (DESIGN.md section 9).
 */
export function parseServerUrl(input: string): URL {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new StrongroomError('invalid_request', `server url ${quote(input)} is not a valid URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new StrongroomError(
      'invalid_request',
      `server url ${quote(url.protocol)} must use https (or http to loopback)`,
    );
  }
  if (url.username !== '' || url.password !== '') {
    throw new StrongroomError('invalid_request', 'server url must not carry credentials; use a token');
  }
  if (url.search !== '' || url.hash !== '') {
    throw new StrongroomError('invalid_request', 'server url must not carry a query string or fragment');
  }
  if (url.protocol === 'http:' && !isLoopback(url.hostname)) {
    throw new StrongroomError(
      'invalid_request',
      `refusing to send credentials over plain http to ${quote(url.host)}; use https (plain http is for loopback only)`,
    );
  }
  return url;
}

/** The canonical form of a server URL: origin plus path prefix, no trailing slash. */
export function normalizeServerUrl(input: string): string {
  const url = parseServerUrl(input);
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

function segment(value: string): string {
  return encodeURIComponent(value);
}

function checkToken(token: string | undefined): string | undefined {
  if (token !== undefined && !TOKEN_SHAPE.test(token)) {
    throw new StrongroomError('invalid_request', 'the token contains characters a bearer token cannot have');
  }
  return token;
}

function checkUploadId(id: string): string {
  if (!UPLOAD_ID.test(id))
    throw new StrongroomError('invalid_request', `upload id ${quote(id)} is malformed`);
  return id;
}

function checkPrincipalRef(ref: string): string {
  if (!PRINCIPAL_REF.test(ref))
    throw new StrongroomError(
      'invalid_request',
      `principal ${quote(ref)} must be \`user:NAME\` or \`sa:NAME\``,
    );
  return ref;
}

/** A role binding or custom policy id, as the server stores it (it goes into a URL path). */
function checkRecordId(kind: string, id: string): string {
  if (!RECORD_ID.test(id))
    throw new StrongroomError(
      'invalid_request',
      `${kind} id ${quote(id)} must be 1-64 lowercase letters, digits, \`.\`, \`_\` or \`-\`, starting with a letter or digit`,
    );
  return id;
}

function checkElevationId(id: string): string {
  if (parseId('elevation', id) === undefined)
    throw new StrongroomError('invalid_request', `elevation id ${quote(id)} is malformed`);
  return id;
}

function checkTokenId(id: string): string {
  if (parseId('token', id) === undefined)
    throw new StrongroomError('invalid_request', `token id ${quote(id)} is malformed`);
  return id;
}

/** A path segment naming a user, group or service account: the server validates the name itself. */
function nameSegment(kind: string, name: string): string {
  if (name === '' || name.length > 128)
    throw new StrongroomError('invalid_name', `${kind} name ${quote(name)} must be 1-128 characters`);
  return segment(name);
}

function checkVersionRef(ref: VersionRef): VersionRef {
  return {
    project: parseProjectName(ref.project),
    artifact: parseArtifactName(ref.artifact),
    version: parseVersionTag(ref.version),
  };
}

function checkArtifactRef(ref: ArtifactRef): ArtifactRef {
  return { project: parseProjectName(ref.project), artifact: parseArtifactName(ref.artifact) };
}

function checkByteRange(range: ByteRange): string {
  const { start, end } = range;
  const valid =
    Number.isSafeInteger(start) &&
    start >= 0 &&
    (end === undefined || (Number.isSafeInteger(end) && end >= start));
  if (!valid) throw new StrongroomError('invalid_range', 'a byte range needs 0 <= start <= end');
  return `bytes=${start}-${end ?? ''}`;
}

function optionalHeader(response: Response, name: string): string | undefined {
  return response.headers.get(name) ?? undefined;
}

/**
 * The typed SDK over the Strongroom HTTP API (docs/api.md). Every method validates names before any request,
 * failures are `ApiError` (the server answered) or `ConnectionError` (it could not be reached), and the token
 * lives in a private field that is never part of an error, a log line or a URL.
 */
export class StrongroomClient {
  readonly url: string;
  readonly #base: URL;
  /** The URL's path prefix without a trailing slash ('' at the root). */
  readonly #basePath: string;
  #token: string | undefined;
  readonly #session: SessionKeeper | undefined;
  /** Bumped by every successful recovery: a request that failed before it only needs sending again. */
  #generation = 0;
  /** The recovery in progress, shared by every request that fails meanwhile. */
  #recovering: Promise<boolean> | undefined;
  readonly #fetch: typeof fetch;
  /** No fetch was injected: bulk bytes go over node:http(s) (see node-transport.ts). */
  readonly #native: boolean;
  readonly #userAgent: string;

  constructor(options: StrongroomClientOptions) {
    this.#base = parseServerUrl(options.url);
    this.#basePath = this.#base.pathname.replace(/\/+$/, '');
    this.url = `${this.#base.origin}${this.#basePath}`;
    this.#token = checkToken(options.token);
    this.#session = options.session;
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#native = options.fetch === undefined;
    this.#userAgent =
      options.userAgent ?? `strongroom-client/${CLIENT_VERSION} node/${process.versions.node}`;
  }

  // ---- identity: sign-in and the caller's session (docs/identity.md) ----------------------------------------

  whoami(signal?: AbortSignal): Promise<WhoAmI> {
    return this.#json('GET', '/api/v1/whoami', { signal });
  }

  /** Password and TOTP code (or a recovery code): a new session. Sends no token. */
  login(body: LoginBody, signal?: AbortSignal): Promise<SessionTokensView> {
    return this.#json('POST', '/api/v1/auth/login', { json: body, signal, anonymous: true, recover: false });
  }

  /** Start a single sign-on with a configured provider: open `authorizationUrl`, then poll. */
  startSso(provider: string, signal?: AbortSignal): Promise<SsoStartView> {
    if (!/^[a-z0-9-]{1,40}$/.test(provider))
      throw new StrongroomError(
        'invalid_request',
        `provider ${quote(provider)} must be lowercase letters, digits or dashes`,
      );
    return this.#json('POST', `/api/v1/auth/oidc/${provider}/start`, {
      json: {},
      signal,
      anonymous: true,
      recover: false,
    });
  }

  /** The session of a single sign-on once the browser side is done; `pending` before. */
  async pollSso(
    loginId: string,
    pollSecret: string,
    signal?: AbortSignal,
  ): Promise<{ status: 'pending' } | { status: 'done'; tokens: SessionTokensView }> {
    const body = await this.#json<SessionTokensView | { status: 'pending' }>(
      'POST',
      '/api/v1/auth/oidc/poll',
      {
        json: { loginId, pollSecret },
        signal,
        anonymous: true,
        recover: false,
      },
    );
    return 'accessToken' in body ? { status: 'done', tokens: body } : { status: 'pending' };
  }

  /** Exchange a workload identity token (a JWT from a trusted issuer) for a short-lived Strongroom token. */
  federate(token: string, signal?: AbortSignal): Promise<FederatedTokenView> {
    return this.#json('POST', '/api/v1/auth/federate', {
      json: { token },
      signal,
      anonymous: true,
      recover: false,
    });
  }

  /** Trade a refresh token (single-use) for a new access and refresh token pair. Sends no other token. */
  refreshSession(refreshToken: string, signal?: AbortSignal): Promise<SessionTokensView> {
    return this.#json('POST', '/api/v1/auth/refresh', {
      json: { refreshToken },
      signal,
      anonymous: true,
      recover: false,
    });
  }

  /** Enrolment step 1: the invitation and a new password; answers the TOTP secret to enrol. */
  startEnrolment(inviteToken: string, password: string, signal?: AbortSignal): Promise<EnrollStartView> {
    return this.#json('POST', '/api/v1/auth/enroll/start', {
      json: { inviteToken, password },
      signal,
      anonymous: true,
      recover: false,
    });
  }

  /** Enrolment step 2: a code from the new authenticator; answers the recovery codes (shown once) and a session. */
  finishEnrolment(inviteToken: string, code: string, signal?: AbortSignal): Promise<EnrollFinishView> {
    return this.#json('POST', '/api/v1/auth/enroll/finish', {
      json: { inviteToken, code },
      signal,
      anonymous: true,
      recover: false,
    });
  }

  /** Prove a fresh TOTP code for this session, so sensitive actions are allowed again for a while. */
  async stepUp(code: string, signal?: AbortSignal): Promise<Static<typeof StepUpView>> {
    await this.#refreshIfDue();
    return this.#stepUpOnce(code, signal);
  }

  // A wrong code is answered 401 like a bad token: never "recovered" by refreshing and sending it again.
  #stepUpOnce(code: string, signal?: AbortSignal): Promise<Static<typeof StepUpView>> {
    return this.#json('POST', '/api/v1/auth/step-up', { json: { code }, signal, recover: false });
  }

  /** Revoke this session with every token issued in it. */
  async logout(signal?: AbortSignal): Promise<void> {
    await this.#json('POST', '/api/v1/auth/logout', { signal });
  }

  /** A shorter-lived, never wider token derived from the calling one, revoked with it. */
  deriveToken(body: CreateTokenBody, signal?: AbortSignal): Promise<IssuedTokenView> {
    return this.#json('POST', '/api/v1/auth/derive', { json: body, signal });
  }

  // ---- identity: users, groups, service accounts and tokens (admin) ------------------------------------------

  /** Create an invited user; the answer carries the invitation token, shown once. */
  inviteUser(body: InviteUserBody, signal?: AbortSignal): Promise<InviteView> {
    return this.#json('POST', '/api/v1/users', { json: body, signal });
  }

  listUsers(page: PageQuery = {}, signal?: AbortSignal): Promise<UserPage> {
    return this.#json('GET', '/api/v1/users', { query: { ...page }, signal });
  }

  iterateUsers(pageSize?: number, signal?: AbortSignal): AsyncGenerator<UserView> {
    return this.#paginate((page) => this.listUsers(page, signal), pageSize);
  }

  getUser(username: string, signal?: AbortSignal): Promise<UserView> {
    return this.#json('GET', this.#userPath(username), { signal });
  }

  /** Disabling revokes every session and token of the user at once. */
  disableUser(username: string, signal?: AbortSignal): Promise<UserView> {
    return this.#json('POST', `${this.#userPath(username)}/disable`, { signal });
  }

  enableUser(username: string, signal?: AbortSignal): Promise<UserView> {
    return this.#json('POST', `${this.#userPath(username)}/enable`, { signal });
  }

  /** Clear failed sign-ins and any lock. */
  unlockUser(username: string, signal?: AbortSignal): Promise<UserView> {
    return this.#json('POST', `${this.#userPath(username)}/unlock`, { signal });
  }

  /** Start enrolment over (a lost authenticator): everything is revoked; a new invitation is answered. */
  resetUser(username: string, signal?: AbortSignal): Promise<InviteView> {
    return this.#json('POST', `${this.#userPath(username)}/reset`, { signal });
  }

  createGroup(body: Static<typeof CreateGroupBody>, signal?: AbortSignal): Promise<GroupView> {
    return this.#json('POST', '/api/v1/groups', { json: body, signal });
  }

  listGroups(page: PageQuery = {}, signal?: AbortSignal): Promise<GroupPage> {
    return this.#json('GET', '/api/v1/groups', { query: { ...page }, signal });
  }

  iterateGroups(pageSize?: number, signal?: AbortSignal): AsyncGenerator<GroupView> {
    return this.#paginate((page) => this.listGroups(page, signal), pageSize);
  }

  /** The group with its members. */
  getGroup(group: string, signal?: AbortSignal): Promise<GroupMembersView> {
    return this.#json('GET', this.#groupPath(group), { signal });
  }

  /** Add `user:NAME` or `sa:NAME` to a group. */
  async addGroupMember(group: string, principal: string, signal?: AbortSignal): Promise<void> {
    await this.#json('POST', `${this.#groupPath(group)}/members`, {
      json: { principal: checkPrincipalRef(principal) },
      signal,
    });
  }

  async removeGroupMember(group: string, principal: string, signal?: AbortSignal): Promise<void> {
    const member = segment(checkPrincipalRef(principal));
    await this.#json('DELETE', `${this.#groupPath(group)}/members/${member}`, { signal });
  }

  createServiceAccount(
    body: Static<typeof CreateServiceAccountBody>,
    signal?: AbortSignal,
  ): Promise<ServiceAccountView> {
    return this.#json('POST', '/api/v1/service-accounts', { json: body, signal });
  }

  listServiceAccounts(page: PageQuery = {}, signal?: AbortSignal): Promise<ServiceAccountPage> {
    return this.#json('GET', '/api/v1/service-accounts', { query: { ...page }, signal });
  }

  iterateServiceAccounts(pageSize?: number, signal?: AbortSignal): AsyncGenerator<ServiceAccountView> {
    return this.#paginate((page) => this.listServiceAccounts(page, signal), pageSize);
  }

  /** Disabling stops every token of the account on its next request. */
  disableServiceAccount(name: string, signal?: AbortSignal): Promise<ServiceAccountView> {
    return this.#json('POST', `${this.#serviceAccountPath(name)}/disable`, { signal });
  }

  enableServiceAccount(name: string, signal?: AbortSignal): Promise<ServiceAccountView> {
    return this.#json('POST', `${this.#serviceAccountPath(name)}/enable`, { signal });
  }

  /** A scoped, expiring token for a service account, bound to its environment; the token is shown once. */
  createServiceAccountToken(
    name: string,
    body: CreateTokenBody,
    signal?: AbortSignal,
  ): Promise<IssuedTokenView> {
    return this.#json('POST', `${this.#serviceAccountPath(name)}/tokens`, { json: body, signal });
  }

  /** The tokens of `user:NAME` or `sa:NAME` (records only: a token itself is never kept by the server). */
  listTokens(
    principal: string,
    options: { readonly includeRevoked?: boolean } = {},
    signal?: AbortSignal,
  ): Promise<TokenList> {
    return this.#json('GET', '/api/v1/tokens', {
      query: {
        principal: checkPrincipalRef(principal),
        includeRevoked: options.includeRevoked === true ? 'true' : undefined,
      },
      signal,
    });
  }

  revokeToken(id: string, signal?: AbortSignal): Promise<TokenView> {
    return this.#json('POST', `/api/v1/tokens/${segment(checkTokenId(id))}/revoke`, { signal });
  }

  /** A new token with the same scope and lifetime; the old one is revoked. The new token is shown once. */
  rotateToken(id: string, signal?: AbortSignal): Promise<IssuedTokenView> {
    return this.#json('POST', `/api/v1/tokens/${segment(checkTokenId(id))}/rotate`, { signal });
  }

  /** Replace the break-glass bootstrap token; the new one is shown once and the old one stops working. */
  rotateBootstrapToken(signal?: AbortSignal): Promise<BootstrapTokenView> {
    return this.#json('POST', '/api/v1/bootstrap-token/rotate', { signal });
  }

  /** Turn the break-glass bootstrap token off (rotating turns it on again). */
  disableBootstrapToken(signal?: AbortSignal): Promise<BootstrapTokenView> {
    return this.#json('POST', '/api/v1/bootstrap-token/disable', { signal });
  }

  // ---- projects -------------------------------------------------------------------------------------------

  createProject(body: CreateProjectBody, signal?: AbortSignal): Promise<ProjectView> {
    return this.#json('POST', '/api/v1/projects', {
      json: { ...body, name: parseProjectName(body.name) },
      signal,
    });
  }

  listProjects(page: PageQuery = {}, signal?: AbortSignal): Promise<ProjectPage> {
    return this.#json('GET', '/api/v1/projects', { query: { ...page }, signal });
  }

  iterateProjects(pageSize?: number, signal?: AbortSignal): AsyncGenerator<ProjectView> {
    return this.#paginate((page) => this.listProjects(page, signal), pageSize);
  }

  getProject(project: string, signal?: AbortSignal): Promise<ProjectView> {
    return this.#json('GET', `/api/v1/projects/${segment(parseProjectName(project))}`, { signal });
  }

  // ---- artifacts ------------------------------------------------------------------------------------------

  createArtifact(project: string, body: CreateArtifactBody, signal?: AbortSignal): Promise<ArtifactView> {
    const json = { ...body, name: parseArtifactName(body.name) };
    return this.#json('POST', `${this.#projectPath(project)}/artifacts`, { json, signal });
  }

  listArtifacts(project: string, page: PageQuery = {}, signal?: AbortSignal): Promise<ArtifactPage> {
    return this.#json('GET', `${this.#projectPath(project)}/artifacts`, { query: { ...page }, signal });
  }

  iterateArtifacts(project: string, pageSize?: number, signal?: AbortSignal): AsyncGenerator<ArtifactView> {
    return this.#paginate((page) => this.listArtifacts(project, page, signal), pageSize);
  }

  getArtifact(ref: ArtifactRef, signal?: AbortSignal): Promise<ArtifactView> {
    return this.#json('GET', this.#artifactPath(ref), { signal });
  }

  updateArtifact(ref: ArtifactRef, body: UpdateArtifactBody, signal?: AbortSignal): Promise<ArtifactView> {
    return this.#json('PATCH', this.#artifactPath(ref), { json: body, signal });
  }

  // ---- versions -------------------------------------------------------------------------------------------

  listVersions(ref: ArtifactRef, page: PageQuery = {}, signal?: AbortSignal): Promise<VersionPage> {
    return this.#json('GET', `${this.#artifactPath(ref)}/versions`, { query: { ...page }, signal });
  }

  iterateVersions(ref: ArtifactRef, pageSize?: number, signal?: AbortSignal): AsyncGenerator<VersionView> {
    return this.#paginate((page) => this.listVersions(ref, page, signal), pageSize);
  }

  getVersion(ref: VersionRef, signal?: AbortSignal): Promise<VersionDetail> {
    return this.#json('GET', this.#versionPath(ref), { signal });
  }

  /**
   * Stream one file of a version, or a byte range of it. The bytes are not verified here: `pullVersion`
   * verifies whole files against the manifest; a caller of this method checks what it needs.
   */
  downloadFile(options: DownloadFileOptions): Promise<FileDownload> {
    return this.#withSession(() => this.#downloadFileOnce(options));
  }

  async #downloadFileOnce(options: DownloadFileOptions): Promise<FileDownload> {
    const filePath = parseFilePath(options.path);
    const headers: Record<string, string> = { accept: '*/*' };
    if (options.range !== undefined) headers['range'] = checkByteRange(options.range);
    const response = await this.#sendBulk('GET', `${this.#versionPath(options)}/file`, {
      query: { path: filePath },
      headers,
      signal: options.signal,
    });
    if (!(response instanceof Response) && (response.status < 200 || response.status > 299)) {
      throw await apiErrorFromResponse(await response.toResponse());
    }
    if (response instanceof Response && !response.ok) throw await apiErrorFromResponse(response);
    const lengthHeader = response.headers.get('content-length');
    const length = lengthHeader === null ? Number.NaN : Number(lengthHeader);
    const body = !(response instanceof Response)
      ? response.body
      : response.body === null
        ? Readable.from([])
        : Readable.fromWeb(response.body as unknown as NodeReadableStream<Uint8Array>);
    return {
      status: response.status,
      body,
      contentLength: Number.isSafeInteger(length) && length >= 0 ? length : undefined,
      contentRange: response.headers.get('content-range') ?? undefined,
      etag: response.headers.get('etag') ?? undefined,
      requestId: response.headers.get('x-request-id') ?? undefined,
    };
  }

  // ---- uploads (the protocol steps; pushVersion drives them) -----------------------------------------------

  createUpload(ref: VersionRef, body: CreateUploadBody, signal?: AbortSignal): Promise<UploadView> {
    return this.#json('POST', `${this.#versionPath(ref)}/uploads`, { json: body, signal });
  }

  getUpload(uploadId: string, signal?: AbortSignal): Promise<UploadView> {
    return this.#json('GET', `/api/v1/uploads/${segment(checkUploadId(uploadId))}`, { signal });
  }

  async uploadPart(uploadId: string, part: number, options: UploadPartOptions): Promise<PartProgress> {
    if (!Number.isSafeInteger(part) || part < 0)
      throw new StrongroomError('invalid_request', 'part index must be >= 0');
    // The body streams from disk and cannot be sent twice: refresh a token about to expire beforehand.
    await this.#refreshIfDue();
    const answer = await this.#sendBulk(
      'PUT',
      `/api/v1/uploads/${segment(checkUploadId(uploadId))}/parts/${part}`,
      {
        body: options.body,
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(options.length),
          [UPLOAD_OFFSET_HEADER]: String(options.offset),
        },
        signal: options.signal,
      },
    );
    const response = answer instanceof Response ? answer : await answer.toResponse();
    if (!response.ok) throw await apiErrorFromResponse(response);
    return (await response.json()) as PartProgress;
  }

  /** Commit a session; `body.files` declares the digests not declared when it was created (single pass). */
  commitUpload(uploadId: string, body: CommitUploadBody = {}, signal?: AbortSignal): Promise<VersionDetail> {
    return this.#json('POST', `/api/v1/uploads/${segment(checkUploadId(uploadId))}/commit`, {
      json: body,
      signal,
    });
  }

  async abortUpload(uploadId: string, signal?: AbortSignal): Promise<void> {
    await this.#json('DELETE', `/api/v1/uploads/${segment(checkUploadId(uploadId))}`, { signal });
  }

  /** Upload a file or directory as a new immutable version (docs/api.md, "Pushing a version"). */
  pushVersion(options: PushOptions): Promise<VersionDetail> {
    return pushVersion(this, options);
  }

  /** Download every file of a version into a directory, verifying each against the manifest. */
  pullVersion(options: PullOptions): Promise<PullResult> {
    return pullVersion(this, options);
  }

  // ---- keys -----------------------------------------------------------------------------------------------

  listKeys(signal?: AbortSignal): Promise<KeysView> {
    return this.#json('GET', '/api/v1/keys', { signal });
  }

  rotateKeys(signal?: AbortSignal): Promise<RotateResult> {
    return this.#json('POST', '/api/v1/keys/rotate', { signal });
  }

  // ---- audit (auditor role) ---------------------------------------------------------------------------------

  /** One page of events matching the filters; `wait` long-polls for new ones (tail -f). */
  searchAudit(query: AuditSearchQuery, signal?: AbortSignal): Promise<AuditEventPage> {
    return this.#json('GET', '/api/v1/audit/events', { query: { ...query }, signal });
  }

  /** The export as a stream of JSON lines (docs/audit-format.md). */
  exportAudit(signal?: AbortSignal): Promise<Readable> {
    return this.#withSession(() => this.#exportAuditOnce(signal));
  }

  async #exportAuditOnce(signal: AbortSignal | undefined): Promise<Readable> {
    const response = await this.#sendBulk('GET', '/api/v1/audit/export', {
      headers: { accept: 'application/x-ndjson, application/problem+json' },
      signal,
    });
    if (!(response instanceof Response)) {
      if (response.status !== 200) throw await apiErrorFromResponse(await response.toResponse());
      return response.body;
    }
    if (!response.ok) throw await apiErrorFromResponse(response);
    return response.body === null
      ? Readable.from([])
      : Readable.fromWeb(response.body as unknown as NodeReadableStream<Uint8Array>);
  }

  auditCheckpoint(signal?: AbortSignal): Promise<AuditCheckpointView> {
    return this.#json('GET', '/api/v1/audit/checkpoint', { signal });
  }

  auditInclusionProof(seq: number, size?: number, signal?: AbortSignal): Promise<InclusionProofView> {
    return this.#json('GET', '/api/v1/audit/proof/inclusion', { query: { seq, size }, signal });
  }

  auditConsistencyProof(
    oldSize: number,
    newSize?: number,
    signal?: AbortSignal,
  ): Promise<ConsistencyProofView> {
    return this.#json('GET', '/api/v1/audit/proof/consistency', {
      query: { old: oldSize, new: newSize },
      signal,
    });
  }

  pruneAudit(olderThanDays: number, signal?: AbortSignal): Promise<AuditPruneResult> {
    return this.#json('POST', '/api/v1/audit/prune', { json: { olderThanDays }, signal });
  }

  // ---- authorization: policies, role bindings, explain, access review (docs/authorization.md) ------------------

  /** The Cedar schema every custom policy is validated against, in Cedar's human-readable format. */
  policySchema(signal?: AbortSignal): Promise<PolicySchemaView> {
    return this.#json('GET', '/api/v1/policy/schema', { signal });
  }

  listPolicies(query: ScopeQuery = {}, signal?: AbortSignal): Promise<PolicyList> {
    return this.#json('GET', '/api/v1/policy/policies', { query: { scope: query.scope }, signal });
  }

  getPolicy(id: string, signal?: AbortSignal): Promise<PolicyView> {
    return this.#json('GET', this.#policyPath(id), { signal });
  }

  /** Add or replace the custom policy `id`; the server refuses one that fails validation (`policy_invalid`). */
  putPolicy(id: string, body: PutPolicyBody, signal?: AbortSignal): Promise<PolicyView> {
    return this.#json('PUT', this.#policyPath(id), { json: body, signal });
  }

  async deletePolicy(id: string, signal?: AbortSignal): Promise<void> {
    await this.#json('DELETE', this.#policyPath(id), { signal });
  }

  /** Check a policy as `putPolicy` would, with every stored policy beside it, without storing it. */
  validatePolicy(body: ValidatePolicyBody, signal?: AbortSignal): Promise<Static<typeof ValidatePolicyView>> {
    return this.#json('POST', '/api/v1/policy/validate', { json: body, signal });
  }

  listRoleBindings(query: ScopeQuery = {}, signal?: AbortSignal): Promise<BindingList> {
    return this.#json('GET', '/api/v1/policy/bindings', { query: { scope: query.scope }, signal });
  }

  getRoleBinding(id: string, signal?: AbortSignal): Promise<BindingView> {
    return this.#json('GET', this.#bindingPath(id), { signal });
  }

  /** Grant a built-in role to `user:NAME`, `sa:NAME` or `group:NAME` at a scope, optionally until a time. */
  createRoleBinding(body: CreateBindingBody, signal?: AbortSignal): Promise<BindingView> {
    if (body.id !== undefined) checkRecordId('role binding', body.id);
    return this.#json('POST', '/api/v1/policy/bindings', { json: body, signal });
  }

  async deleteRoleBinding(id: string, signal?: AbortSignal): Promise<void> {
    await this.#json('DELETE', this.#bindingPath(id), { signal });
  }

  /** The decision a principal would get, the ids of the policies behind it and what Cedar saw (uncached). */
  explainDecision(body: ExplainBody, signal?: AbortSignal): Promise<ExplainView> {
    return this.#json('POST', '/api/v1/policy/explain', { json: body, signal });
  }

  /**
   * Run policy test cases (the format of docs/authorization.md, "Policy test files") against the policies in
   * force. The server checks each case's shape; a failing case is a result, not an error.
   */
  runPolicyTests(cases: readonly unknown[], signal?: AbortSignal): Promise<PolicyTestView> {
    return this.#json('POST', '/api/v1/policy/test', { json: { cases }, signal });
  }

  /** Everyone who holds `action` on a resource (`organization`, `P`, `P/A`, `P/A:V`), and where it comes from. */
  whoCan(action: string, resource: string, signal?: AbortSignal): Promise<WhoCanView> {
    return this.#json('GET', '/api/v1/access/who-can', { query: { action, resource }, signal });
  }

  /** What `user:NAME` or `sa:NAME` may do, and where each grant comes from. */
  accessOf(principal: string, signal?: AbortSignal): Promise<AccessOfView> {
    return this.#json('GET', '/api/v1/access/of', { query: { principal }, signal });
  }

  // ---- just-in-time elevation -------------------------------------------------------------------------------

  /** Ask for a role at a scope for a while, with a reason; someone else approves. */
  requestElevation(body: RequestElevationBody, signal?: AbortSignal): Promise<ElevationView> {
    return this.#json('POST', '/api/v1/elevations', { json: body, signal });
  }

  /** The caller's own requests, and those the caller may decide. */
  listElevations(
    query: { readonly status?: ElevationStatus } = {},
    signal?: AbortSignal,
  ): Promise<ElevationList> {
    return this.#json('GET', '/api/v1/elevations', { query: { status: query.status }, signal });
  }

  getElevation(id: string, signal?: AbortSignal): Promise<ElevationView> {
    return this.#json('GET', this.#elevationPath(id), { signal });
  }

  /** Approve a pending request: the requester holds the role until its duration ends (needs a recent MFA). */
  approveElevation(id: string, reason?: string, signal?: AbortSignal): Promise<ElevationView> {
    return this.#decideElevation(id, 'approve', reason, signal);
  }

  denyElevation(id: string, reason?: string, signal?: AbortSignal): Promise<ElevationView> {
    return this.#decideElevation(id, 'deny', reason, signal);
  }

  /** Withdraw one's own pending request. */
  cancelElevation(id: string, signal?: AbortSignal): Promise<ElevationView> {
    return this.#json('POST', `${this.#elevationPath(id)}/cancel`, { signal });
  }

  #decideElevation(
    id: string,
    verdict: 'approve' | 'deny',
    reason: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<ElevationView> {
    const json: Static<typeof DecideElevationBody> = reason === undefined ? {} : { reason };
    return this.#json('POST', `${this.#elevationPath(id)}/${verdict}`, { json, signal });
  }

  // ---- plumbing -------------------------------------------------------------------------------------------

  #projectPath(project: string): string {
    return `/api/v1/projects/${segment(parseProjectName(project))}`;
  }

  #artifactPath(ref: ArtifactRef): string {
    const { project, artifact } = checkArtifactRef(ref);
    return `/api/v1/projects/${segment(project)}/artifacts/${segment(artifact)}`;
  }

  #versionPath(ref: VersionRef): string {
    const { project, artifact, version } = checkVersionRef(ref);
    return `/api/v1/projects/${segment(project)}/artifacts/${segment(artifact)}/versions/${segment(version)}`;
  }

  #userPath(username: string): string {
    return `/api/v1/users/${nameSegment('user', username)}`;
  }

  #groupPath(group: string): string {
    return `/api/v1/groups/${nameSegment('group', group)}`;
  }

  #serviceAccountPath(name: string): string {
    return `/api/v1/service-accounts/${nameSegment('service account', name)}`;
  }

  #policyPath(id: string): string {
    return `/api/v1/policy/policies/${segment(checkRecordId('policy', id))}`;
  }

  #bindingPath(id: string): string {
    return `/api/v1/policy/bindings/${segment(checkRecordId('role binding', id))}`;
  }

  #elevationPath(id: string): string {
    return `/api/v1/elevations/${segment(checkElevationId(id))}`;
  }

  async *#paginate<T>(
    fetchPage: (page: PageQuery) => Promise<{ items: T[]; nextCursor: string | null }>,
    pageSize: number | undefined,
  ): AsyncGenerator<T> {
    let cursor: string | undefined;
    for (;;) {
      const page = await fetchPage({
        ...(pageSize === undefined ? {} : { limit: pageSize }),
        ...(cursor === undefined ? {} : { cursor }),
      });
      yield* page.items;
      if (page.nextCursor === null) return;
      // A cursor that does not move would loop for ever; the server is wrong, so stop loudly.
      if (page.nextCursor === cursor) {
        throw new StrongroomError('internal_error', 'the server returned the same page cursor twice');
      }
      cursor = page.nextCursor;
    }
  }

  // ---- session recovery (SessionKeeper) ------------------------------------------------------------------

  /** Send, recovering at most once from each of an expired token and a stale second factor. */
  async #withSession<T>(send: () => Promise<T>): Promise<T> {
    if (this.#session === undefined) return send();
    await this.#refreshIfDue();
    const recovered = new Set<RecoverableCode>();
    for (;;) {
      const sentAt = this.#generation;
      try {
        return await send();
      } catch (err) {
        const code = recoverableCode(err);
        if (code === undefined || recovered.has(code)) throw err;
        recovered.add(code);
        if (!(await this.#recover(code, err as ApiError, sentAt))) throw err;
      }
    }
  }

  async #refreshIfDue(): Promise<void> {
    if (this.#session?.refreshDue?.() === true)
      await this.#recover('unauthenticated', undefined, this.#generation);
  }

  /**
   * One recovery at a time: a request that fails while another recovers waits for it, and only resends when
   * it succeeded. Two refreshes with one single-use refresh token would look like theft to the server.
   */
  async #recover(code: RecoverableCode, error: ApiError | undefined, sentAt: number): Promise<boolean> {
    while (this.#recovering !== undefined) await this.#recovering.catch(() => false);
    if (this.#generation !== sentAt) return true;
    const run = this.#runRecovery(code, error);
    this.#recovering = run;
    try {
      const recovered = await run;
      if (recovered) this.#generation += 1;
      return recovered;
    } finally {
      this.#recovering = undefined;
    }
  }

  async #runRecovery(code: RecoverableCode, error: ApiError | undefined): Promise<boolean> {
    const session = this.#session;
    if (code === 'unauthenticated') {
      const token = await session?.refresh?.();
      if (token === undefined) return false;
      this.#token = checkToken(token);
      return true;
    }
    if (session?.stepUpCode === undefined || error === undefined) return false;
    await this.#stepUpOnce(await session.stepUpCode(error));
    return true;
  }

  // ---- transport ------------------------------------------------------------------------------------------

  #json<T>(method: string, path: string, options: RequestOptions): Promise<T> {
    const send = (): Promise<T> => this.#jsonOnce(method, path, options);
    return options.recover === false ? send() : this.#withSession(send);
  }

  async #jsonOnce<T>(method: string, path: string, options: RequestOptions): Promise<T> {
    const response = await this.#send(method, path, options);
    if (!response.ok) throw await apiErrorFromResponse(response);
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    if (text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError({
        status: response.status,
        code: 'internal_error',
        serverCode: undefined,
        requestId: optionalHeader(response, 'x-request-id'),
        details: undefined,
        message: `the server answered ${method} ${path} with a body that is not JSON`,
      });
    }
  }

  #prepare(path: string, options: RequestOptions): { url: URL; headers: Record<string, string> } {
    const url = new URL(this.#base.href);
    url.pathname = `${this.#basePath}${path}`;
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = {
      accept: 'application/json, application/problem+json',
      'user-agent': this.#userAgent,
    };
    if (this.#token !== undefined && options.anonymous !== true)
      headers['authorization'] = `Bearer ${this.#token}`;
    for (const [key, value] of Object.entries(options.headers ?? {})) headers[key.toLowerCase()] = value;
    return { url, headers };
  }

  /** Bulk transfers: node:http(s) when no fetch was injected, else the injected fetch. */
  async #sendBulk(method: string, path: string, options: RequestOptions): Promise<NodeResponse | Response> {
    if (!this.#native) return this.#send(method, path, options);
    const { url, headers } = this.#prepare(path, options);
    try {
      return await nodeRequest(url, { method, headers, body: options.body, signal: options.signal });
    } catch (err) {
      if (options.signal?.aborted === true) throw options.signal.reason;
      throw new ConnectionError(`cannot reach ${this.#base.origin}: ${describeNetworkCause(err)}`, {
        cause: err,
      });
    }
  }

  async #send(method: string, path: string, options: RequestOptions): Promise<Response> {
    const prepared = this.#prepare(path, options);
    const url = prepared.url;
    const headers = new Headers(prepared.headers);
    let body: RequestInit['body'];
    if (options.json !== undefined) {
      headers.set('content-type', 'application/json');
      body = JSON.stringify(options.json);
    } else if (options.body !== undefined) {
      body = options.body as RequestInit['body'];
    }
    const streaming = body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array);
    let response: Response;
    try {
      response = await this.#fetch(url, {
        method,
        headers,
        // Never follow a redirect: it would carry the Authorization header to wherever the server points.
        redirect: 'manual',
        ...(body === undefined ? {} : { body }),
        ...(streaming ? { duplex: 'half' as const } : {}),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
    } catch (err) {
      if (options.signal?.aborted === true) throw options.signal.reason;
      throw new ConnectionError(`cannot reach ${this.#base.origin}: ${describeNetworkCause(err)}`, {
        cause: err instanceof Error && err.cause !== undefined ? err.cause : err,
      });
    }
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel();
      throw new ApiError({
        status: response.status,
        code: 'internal_error',
        serverCode: undefined,
        requestId: optionalHeader(response, 'x-request-id'),
        details: undefined,
        message: `the server answered ${method} ${path} with a redirect (${response.status}); redirects are not followed`,
      });
    }
    return response;
  }
}
