import { lookup } from 'node:dns/promises';
import { request as httpRequest } from 'node:http';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, isIPv4 } from 'node:net';
import type { LookupFunction } from 'node:net';

import { StrongroomError, quote } from '../core/errors.js';

/**
 * What Strongroom may reach when it fetches on its own initiative (OIDC discovery, JWKS, token endpoints).
 * Everything not public is refused unless an operator lists it in `allowHosts`.
 */
export interface OutboundPolicy {
  /**
   * Host names (exact, case-insensitive), IP addresses or CIDRs an operator explicitly allows even when they
   * are private or loopback. A destination allowed this way may also be reached over plain `http:`.
   */
  readonly allowHosts: readonly string[];
  /** Budget for the whole exchange: name resolution, every redirect hop and the response body. */
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly maxRedirects: number;
  /** Resolves a host name to every address it has; defaults to the system resolver. Injectable for tests. */
  readonly resolve?: (host: string) => Promise<readonly string[]>;
}

export interface OutboundRequest {
  readonly method?: 'GET' | 'POST';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface OutboundResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
}

const MAX_URL_LENGTH = 8192;
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
// Credentials meant for one origin never follow a redirect to another (what browsers' fetch does too).
const ORIGIN_BOUND_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];

// IANA IPv4 Special-Purpose Address Registry (RFC 6890 and successors): nothing here is a public web server.
const NON_PUBLIC_IPV4: readonly (readonly [string, number])[] = [
  ['0.0.0.0', 8], // "this network", including the unspecified address
  ['10.0.0.0', 8], // RFC 1918
  ['100.64.0.0', 10], // RFC 6598 carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, home of cloud metadata endpoints (169.254.169.254)
  ['172.16.0.0', 12], // RFC 1918
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // deprecated 6to4 relay anycast
  ['192.168.0.0', 16], // RFC 1918
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, including the limited broadcast address 255.255.255.255
];

// IPv6 is default-deny: only global unicast (2000::/3) is public, minus the special blocks carved out of it.
// Loopback, unspecified, link-local fe80::/10, unique-local fc00::/7, multicast ff00::/8 all fall outside it.
const NON_PUBLIC_GLOBAL_IPV6: readonly (readonly [string, number])[] = [
  ['2001::', 23], // IETF protocol assignments, including Teredo 2001::/32
  ['2001:db8::', 32], // documentation
  ['3fff::', 20], // documentation (RFC 9637)
];

function blockList(entries: readonly (readonly [string, number])[], family: 'ipv4' | 'ipv6'): BlockList {
  const list = new BlockList();
  for (const [network, prefix] of entries) list.addSubnet(network, prefix, family);
  return list;
}

const NON_PUBLIC_V4 = blockList(NON_PUBLIC_IPV4, 'ipv4');
const GLOBAL_UNICAST_V6 = blockList([['2000::', 3]], 'ipv6');
const NON_PUBLIC_V6 = blockList(NON_PUBLIC_GLOBAL_IPV6, 'ipv6');

/** The 16 bytes of an IPv6 address, via the WHATWG serializer so every spelling comes out the same. */
function ipv6Bytes(address: string): Uint8Array {
  const canonical = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const [head = '', tail] = canonical.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  const bytes = new Uint8Array(16);
  [...headGroups, ...zeros, ...tailGroups].forEach((group, i) => {
    const value = Number.parseInt(group, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 0xff;
  });
  return bytes;
}

function startsWith(bytes: Uint8Array, prefix: readonly number[]): boolean {
  return prefix.every((b, i) => bytes[i] === b);
}

const IPV4_MAPPED = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]; // ::ffff:0:0/96
const NAT64 = [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0]; // 64:ff9b::/96 (RFC 6052)
const SIX_TO_FOUR = [0x20, 0x02]; // 2002::/16 (RFC 3056)

/** The IPv4 address an IPv6 address stands for (mapped, NAT64 or 6to4), judged by the IPv4 rules instead. */
function embeddedIPv4(bytes: Uint8Array): string | undefined {
  const v4 = (offset: number) => Array.from(bytes.subarray(offset, offset + 4)).join('.');
  if (startsWith(bytes, IPV4_MAPPED) || startsWith(bytes, NAT64)) return v4(12);
  if (startsWith(bytes, SIX_TO_FOUR)) return v4(2);
  return undefined;
}

/**
 * Whether an IP address is on the public internet (threat D1): refuses loopback, private, link-local, CGNAT,
 * unspecified, multicast, broadcast and documentation ranges, and IPv6 forms that embed such an IPv4 address.
 */
export function isPublicAddress(address: string): boolean {
  if (isIPv4(address)) return !NON_PUBLIC_V4.check(address, 'ipv4');
  // A zone index (`fe80::1%eth0`) only ever qualifies a link-local address.
  if (isIP(address) !== 6 || address.includes('%')) return false;
  const embedded = embeddedIPv4(ipv6Bytes(address));
  if (embedded !== undefined) return isPublicAddress(embedded);
  return GLOBAL_UNICAST_V6.check(address, 'ipv6') && !NON_PUBLIC_V6.check(address, 'ipv6');
}

interface AllowList {
  readonly names: ReadonlySet<string>;
  readonly addresses: BlockList;
  readonly hasAddresses: boolean;
}

function normalizeHostName(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

const HOST_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

function compileAllowList(entries: readonly string[]): AllowList {
  const names = new Set<string>();
  const addresses = new BlockList();
  let hasAddresses = false;
  for (const entry of entries) {
    const [rawNetwork = '', prefixText, ...rest] = entry.trim().split('/');
    const network = stripBrackets(rawNetwork);
    const family = isIP(network);
    if (family !== 0 && rest.length === 0) {
      const prefix = prefixText === undefined ? (family === 4 ? 32 : 128) : Number(prefixText);
      if (
        !Number.isInteger(prefix) ||
        prefix < 0 ||
        prefix > (family === 4 ? 32 : 128) ||
        prefixText === ''
      ) {
        throw new StrongroomError(
          'config_invalid',
          `outbound allow-list entry ${quote(entry)} is not a valid cidr`,
        );
      }
      addresses.addSubnet(network, prefix, family === 4 ? 'ipv4' : 'ipv6');
      hasAddresses = true;
      continue;
    }
    const name = normalizeHostName(entry.trim());
    if (prefixText !== undefined || !HOST_NAME.test(name)) {
      throw new StrongroomError(
        'config_invalid',
        `outbound allow-list entry ${quote(entry)} is not a host name, ip or cidr`,
      );
    }
    names.add(name);
  }
  return { names, addresses, hasAddresses };
}

function addressAllowed(allow: AllowList, address: string): boolean {
  if (!allow.hasAddresses) return false;
  if (isIPv4(address)) return allow.addresses.check(address, 'ipv4');
  const embedded = embeddedIPv4(ipv6Bytes(address));
  return (
    allow.addresses.check(address, 'ipv6') ||
    (embedded !== undefined && allow.addresses.check(embedded, 'ipv4'))
  );
}

function checkPolicy(policy: OutboundPolicy): void {
  const positive = (n: number) => Number.isSafeInteger(n) && n > 0;
  if (!positive(policy.timeoutMs) || !positive(policy.maxBytes)) {
    throw new StrongroomError('config_invalid', 'outbound timeout and size limit must be positive integers');
  }
  if (!Number.isSafeInteger(policy.maxRedirects) || policy.maxRedirects < 0) {
    throw new StrongroomError('config_invalid', 'outbound redirect limit must be a non-negative integer');
  }
}

function refuse(message: string): StrongroomError {
  return new StrongroomError('invalid_request', message);
}

const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;
const HTTP_URL = /^https?:\/\//i;
// The authority's host exactly as written, to spot IPv4 literals the WHATWG parser would rewrite.
const RAW_HOST = /^https?:\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)/i;

/**
 * Parses an absolute `http(s)://` URL strictly: one parser (WHATWG) decides the host that is both checked and
 * connected to, and spellings where parsers disagree are refused up front: backslashes, whitespace, non-ASCII,
 * credentials, and IPv4 literals in decimal, octal, hex or shortened form (`2130706433`, `0177.0.0.1`, `127.1`).
 */
function parseOutboundUrl(input: string): URL {
  if (input.length > MAX_URL_LENGTH || !PRINTABLE_ASCII.test(input) || input.includes('\\')) {
    throw refuse(`outbound url ${quote(input)} contains characters that are not allowed`);
  }
  if (!HTTP_URL.test(input)) throw refuse(`outbound url ${quote(input)} must use https`);
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw refuse(`outbound url ${quote(input)} is not a valid url`);
  }
  if (url.username !== '' || url.password !== '') {
    throw refuse(`outbound url ${quote(url.host)} must not carry credentials`);
  }
  const rawHost = RAW_HOST.exec(input)?.[1] ?? '';
  if (isIPv4(url.hostname) && rawHost.toLowerCase() !== url.hostname) {
    throw refuse(`outbound host ${quote(rawHost)} is not a canonical ip address`);
  }
  url.hash = '';
  return url;
}

/** Resolves a Location header against the URL it came from, refusing scheme tricks such as `http:evil`. */
function redirectTarget(from: URL, location: string): URL {
  if (!PRINTABLE_ASCII.test(location) || location.includes('\\')) {
    throw refuse(`redirect from ${quote(from.host)} has a location that is not allowed`);
  }
  if (HTTP_URL.test(location)) return parseOutboundUrl(location);
  if (location.startsWith('//')) return parseOutboundUrl(`${from.protocol}${location}`);
  if (/^[a-z][a-z0-9+.-]*:/i.test(location)) {
    throw refuse(`redirect from ${quote(from.host)} leaves http(s)`);
  }
  return parseOutboundUrl(new URL(location, from).href);
}

interface Deadline {
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
}

function timeoutError(url: URL, deadline: Deadline): StrongroomError {
  return new StrongroomError(
    'internal_error',
    `outbound request to ${quote(url.host)} timed out after ${deadline.timeoutMs} ms`,
  );
}

async function resolveAll(
  host: string,
  policy: OutboundPolicy,
  deadline: Deadline,
): Promise<readonly string[]> {
  const resolver =
    policy.resolve ??
    (async (name: string) => (await lookup(name, { all: true, verbatim: true })).map((a) => a.address));
  if (deadline.signal.aborted) throw deadline.signal.reason;
  // A lookup cannot be cancelled, so the deadline races it instead.
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(deadline.signal.reason);
    deadline.signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([resolver(host), aborted]);
  } catch (cause) {
    if (deadline.signal.aborted) throw cause;
    throw new StrongroomError('internal_error', `outbound host ${quote(host)} could not be resolved`, {
      cause,
    });
  } finally {
    deadline.signal.removeEventListener('abort', onAbort);
  }
}

interface Destination {
  readonly address: string;
  readonly family: 4 | 6;
}

/**
 * Decides whether `url` may be fetched and which address to connect to (threats D1, D2). Every address the
 * name resolves to must be public or allow-listed, so an attacker's DNS cannot mix a private answer in; the
 * caller then connects to exactly the address checked here, never resolving again.
 */
async function checkDestination(
  url: URL,
  allow: AllowList,
  policy: OutboundPolicy,
  deadline: Deadline,
): Promise<Destination> {
  const host = stripBrackets(url.hostname);
  const literal = isIP(host) !== 0;
  const nameAllowed = !literal && allow.names.has(normalizeHostName(host));
  if (
    url.protocol === 'http:' &&
    !nameAllowed &&
    (literal ? !addressAllowed(allow, host) : !allow.hasAddresses)
  ) {
    throw refuse(`outbound url for ${quote(url.host)} must use https`);
  }
  const addresses = literal ? [host] : await resolveAll(host, policy, deadline);
  if (addresses.length === 0) throw refuse(`outbound host ${quote(host)} has no address`);
  for (const address of addresses) {
    if (isIP(address) === 0 || address.includes('%')) {
      throw refuse(`outbound host ${quote(host)} resolved to an invalid or scoped address`);
    }
    if (!nameAllowed && !isPublicAddress(address) && !addressAllowed(allow, address)) {
      throw refuse(
        `outbound host ${quote(host)} ${literal ? 'is' : 'resolves to'} a non-public address that is not allow-listed`,
      );
    }
  }
  if (url.protocol === 'http:' && !nameAllowed && !addresses.every((a) => addressAllowed(allow, a))) {
    throw refuse(`outbound url for ${quote(url.host)} must use https`);
  }
  const address = addresses[0] as string;
  return { address, family: isIPv4(address) ? 4 : 6 };
}

/** A `lookup` that answers every query with the one address already checked: the connection is pinned. */
function pinnedLookup(destination: Destination): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all === true) {
      (callback as (err: null, addresses: { address: string; family: number }[]) => void)(null, [
        { address: destination.address, family: destination.family },
      ]);
    } else {
      callback(null, destination.address, destination.family);
    }
  };
}

interface Hop {
  readonly method: 'GET' | 'POST';
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | undefined;
}

function send(url: URL, destination: Destination, hop: Hop, deadline: Deadline): Promise<IncomingMessage> {
  const headers: OutgoingHttpHeaders = { 'accept-encoding': 'identity', ...hop.headers };
  if (hop.body !== undefined) headers['content-length'] = Buffer.byteLength(hop.body);
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request({
      protocol: url.protocol,
      hostname: stripBrackets(url.hostname),
      port: url.port === '' ? undefined : Number(url.port),
      path: `${url.pathname}${url.search}`,
      method: hop.method,
      headers,
      agent: false,
      lookup: pinnedLookup(destination),
      signal: deadline.signal,
    });
    req.once('response', resolve);
    // `on`, not `once`: an abort after the response can still emit an error, which must not go unhandled.
    req.on('error', (cause) => {
      if (deadline.signal.aborted) reject(timeoutError(url, deadline));
      else
        reject(
          new StrongroomError('internal_error', `outbound request to ${quote(url.host)} failed`, { cause }),
        );
    });
    req.end(hop.body);
  });
}

function readBody(
  url: URL,
  res: IncomingMessage,
  policy: OutboundPolicy,
  deadline: Deadline,
): Promise<Buffer> {
  const tooLarge = () =>
    new StrongroomError(
      'internal_error',
      `outbound response from ${quote(url.host)} exceeds ${policy.maxBytes} bytes`,
    );
  const declared = Number(res.headers['content-length'] ?? '0');
  if (declared > policy.maxBytes) {
    res.destroy();
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    res.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > policy.maxBytes) {
        res.destroy();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    const fail = (cause?: unknown) => {
      if (deadline.signal.aborted) reject(timeoutError(url, deadline));
      else
        reject(
          new StrongroomError('internal_error', `outbound response from ${quote(url.host)} failed`, {
            cause,
          }),
        );
    };
    res.once('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', fail);
    // A connection cut mid-body closes the response without `end`; settling twice is a no-op.
    res.once('close', () => fail());
  });
}

function toHeaders(res: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(res.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  return headers;
}

function nextHop(hop: Hop, status: number, from: URL, to: URL): Hop {
  // Fetch standard, HTTP-redirect fetch step 12: 303, and 301/302 after POST, continue as a bodiless GET.
  const asGet = status === 303 || (hop.method === 'POST' && (status === 301 || status === 302));
  const headers = Object.fromEntries(
    Object.entries(hop.headers).filter(([name]) => {
      const lower = name.toLowerCase();
      if (from.origin !== to.origin && ORIGIN_BOUND_HEADERS.includes(lower)) return false;
      return !(asGet && lower === 'content-type');
    }),
  );
  return asGet ? { method: 'GET', headers, body: undefined } : { ...hop, headers };
}

/**
 * Fetches a URL for Strongroom itself without letting the URL reach inside the network (threat group D,
 * CVE-2023-6974 class SSRF): https only, every resolved address public or allow-listed, the connection pinned
 * to the checked address, redirects followed by hand with every hop re-checked, size and time bounded.
 */
export async function outboundFetch(
  url: string,
  policy: OutboundPolicy,
  init: OutboundRequest = {},
): Promise<OutboundResponse> {
  checkPolicy(policy);
  const allow = compileAllowList(policy.allowHosts);
  const controller = new AbortController();
  const deadline: Deadline = { signal: controller.signal, timeoutMs: policy.timeoutMs };
  const timer = setTimeout(() => controller.abort(), policy.timeoutMs);
  let current = parseOutboundUrl(url);
  try {
    let hop: Hop = { method: init.method ?? 'GET', headers: init.headers ?? {}, body: init.body };
    for (let redirects = 0; ; redirects += 1) {
      const destination = await checkDestination(current, allow, policy, deadline);
      const res = await send(current, destination, hop, deadline);
      const location = res.headers.location;
      if (!REDIRECT_STATUSES.has(res.statusCode ?? 0) || location === undefined) {
        const body = await readBody(current, res, policy, deadline);
        return { status: res.statusCode ?? 0, headers: toHeaders(res), body };
      }
      res.destroy();
      if (redirects >= policy.maxRedirects) {
        throw refuse(
          `outbound request to ${quote(current.host)} redirected more than ${policy.maxRedirects} times`,
        );
      }
      const next = redirectTarget(current, location);
      hop = nextHop(hop, res.statusCode ?? 0, current, next);
      current = next;
    }
  } catch (err) {
    if (controller.signal.aborted && !(err instanceof StrongroomError)) throw timeoutError(current, deadline);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** `outboundFetch` for JSON documents (discovery, JWKS, userinfo): status 200 and a top-level object. */
export async function fetchJsonObject(
  url: string,
  policy: OutboundPolicy,
  init: OutboundRequest = {},
): Promise<Readonly<Record<string, unknown>>> {
  const res = await outboundFetch(url, policy, {
    ...init,
    headers: { accept: 'application/json', ...init.headers },
  });
  const host = new URL(url).host;
  if (res.status !== 200) {
    throw new StrongroomError('internal_error', `${quote(host)} answered with http status ${res.status}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(res.body.toString('utf8'));
  } catch (cause) {
    throw new StrongroomError('internal_error', `${quote(host)} did not answer with json`, { cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new StrongroomError('internal_error', `${quote(host)} did not answer with a json object`);
  }
  return value as Record<string, unknown>;
}
