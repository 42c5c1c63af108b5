import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { StrongroomError } from '../../src/core/errors.js';
import type { ErrorCode } from '../../src/core/errors.js';
import { fetchJsonObject, isPublicAddress, outboundFetch } from '../../src/identity/outbound-fetch.js';
import type { OutboundPolicy } from '../../src/identity/outbound-fetch.js';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

interface TestServer {
  readonly origin: string;
  readonly port: number;
  /** Every request received, as `METHOD path`. */
  readonly requests: string[];
  close(): Promise<void>;
}

async function startServer(routes: Record<string, Handler>): Promise<TestServer> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push(`${req.method} ${req.url}`);
      const handler = routes[new URL(req.url ?? '/', 'http://x').pathname];
      if (handler === undefined) res.writeHead(404).end();
      else handler(req, res, Buffer.concat(chunks).toString('utf8'));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const redirect =
  (status: number, location: string): Handler =>
  (_req, res) => {
    res.writeHead(status, { location }).end();
  };

async function rejection(promise: Promise<unknown>, code: ErrorCode = 'invalid_request'): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected a rejection').toBeInstanceOf(StrongroomError);
  expect((err as StrongroomError).code, (err as Error).message).toBe(code);
  return (err as StrongroomError).message;
}

/** Host names the tests resolve themselves: no real DNS, and answers that change on demand. */
const dns: Record<string, string[]> = {
  'localhost.test': ['127.0.0.1'],
  'metadata.evil.test': ['169.254.169.254'],
  'mixed.evil.test': ['93.184.216.34', '10.0.0.5'],
  'mapped.evil.test': ['::ffff:10.0.0.1'],
  'idp.internal': ['127.0.0.1'],
  'nothing.test': [],
};
const lookups: string[] = [];
const resolve = async (host: string): Promise<readonly string[]> => {
  lookups.push(host);
  const answer = dns[host];
  if (answer === undefined) throw new Error(`no test answer for ${host}`);
  return answer;
};

const closed: OutboundPolicy = { allowHosts: [], timeoutMs: 2000, maxBytes: 1024, maxRedirects: 3, resolve };
const loopback: OutboundPolicy = { ...closed, allowHosts: ['127.0.0.1'] };

describe('outboundFetch', () => {
  let server: TestServer;
  let other: TestServer;

  beforeAll(async () => {
    other = await startServer({
      '/echo': (req, res, body) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, headers: req.headers, body }));
      },
    });
    server = await startServer({
      '/ok': (_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('hello'),
      '/json': (_req, res) => res.writeHead(200).end('{"issuer":"x"}'),
      '/array': (_req, res) => res.writeHead(200).end('[1]'),
      '/echo': (req, res, body) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, headers: req.headers, body }));
      },
      '/big': (_req, res) => res.writeHead(200, { 'content-length': '4096' }).end(Buffer.alloc(4096)),
      '/big-chunked': (_req, res) => {
        res.writeHead(200);
        for (let i = 0; i < 8; i += 1) res.write(Buffer.alloc(512));
        res.end();
      },
      '/hang': () => {},
      '/to-ok': redirect(302, '/ok'),
      '/to-private': redirect(302, 'http://10.0.0.1/'),
      '/to-metadata': redirect(301, 'http://169.254.169.254/latest/meta-data/'),
      '/to-metadata-name': redirect(307, 'https://metadata.evil.test/'),
      '/to-decimal': redirect(302, 'http://2130706433/ok'),
      '/to-file': redirect(302, 'file:///etc/passwd'),
      '/to-scheme-relative-trick': redirect(302, 'http:evil.test'),
      '/to-backslash': redirect(302, '/\\evil.test/'),
      '/loop': redirect(302, '/loop'),
      '/to-other-echo': (_req, res) => res.writeHead(307, { location: `${other.origin}/echo` }).end(),
      '/to-same-echo': redirect(307, '/echo'),
      '/see-other': redirect(303, '/echo'),
    });
  });

  afterAll(async () => {
    await server.close();
    await other.close();
  });

  describe('D1: destinations that are refused unless allow-listed', () => {
    const refused = [
      // loopback, in every spelling
      'https://127.0.0.1/',
      'https://127.8.9.10/',
      'https://localhost.test/',
      'https://[::1]/',
      'https://[0:0:0:0:0:0:0:1]/',
      // decimal, octal, hex and shortened IPv4 literals
      'http://2130706433/',
      'https://2130706433/',
      'http://0177.0.0.1/',
      'http://0x7f.0.0.1/',
      'http://0x7f000001/',
      'http://127.1/',
      'http://127.0.1/',
      'https://127.0.0.1./',
      'https://%31%32%37.0.0.1/',
      // link-local and cloud metadata
      'http://169.254.169.254/latest/meta-data/',
      'https://169.254.169.254/',
      'https://metadata.evil.test/',
      'https://[fe80::1]/',
      'https://[fd00:ec2::254]/',
      // private, CGNAT, unspecified, multicast, broadcast, reserved
      'https://10.0.0.1/',
      'https://172.16.0.1/',
      'https://172.31.255.255/',
      'https://192.168.1.1/',
      'https://100.64.0.1/',
      'https://0.0.0.0/',
      'https://[::]/',
      'https://224.0.0.1/',
      'https://255.255.255.255/',
      'https://240.0.0.1/',
      'https://[fc00::1]/',
      'https://[ff02::1]/',
      // IPv6 forms that embed a private IPv4 address
      'https://[::ffff:127.0.0.1]/',
      'https://[::ffff:169.254.169.254]/',
      'https://[::ffff:a00:1]/',
      'https://[::127.0.0.1]/',
      'https://[64:ff9b::a9fe:a9fe]/',
      'https://[2002:a9fe:a9fe::1]/',
      'https://mapped.evil.test/',
      // one private answer among public ones is enough
      'https://mixed.evil.test/',
    ];
    for (const url of refused) {
      it(`refuses ${url}`, async () => {
        await rejection(outboundFetch(url, closed));
      });
    }

    it('refuses schemes other than https, and http for hosts that are not allow-listed', async () => {
      for (const url of [
        'http://example.com/',
        'ftp://example.com/',
        'file:///etc/passwd',
        'gopher://example.com/',
        'data:text/plain,hi',
        '//example.com/',
        'http:example.com',
      ]) {
        await rejection(outboundFetch(url, closed));
      }
    });

    it('refuses credentials, backslashes, whitespace and non-ASCII in the URL', async () => {
      for (const url of [
        'https://user:pass@example.com/',
        'https://example.com\\@127.0.0.1/',
        'https:\\\\example.com/',
        'https://exa mple.com/',
        'https://exämple.com/',
        'https://example.com/\n',
      ]) {
        await rejection(outboundFetch(url, closed));
      }
    });

    it('refuses a public address spelled in decimal too: only the canonical form is accepted', async () => {
      expect(await rejection(outboundFetch('https://134744072/', closed))).toContain('canonical');
    });

    it('nothing reaches the loopback server while it is not allow-listed', async () => {
      const before = server.requests.length;
      await rejection(outboundFetch(`${server.origin}/ok`, closed));
      await rejection(outboundFetch(`https://127.0.0.1:${server.port}/ok`, closed));
      await rejection(outboundFetch(`http://localhost.test:${server.port}/ok`, closed));
      await rejection(outboundFetch(`http://2130706433:${server.port}/ok`, loopback));
      expect(server.requests.length).toBe(before);
    });

    it('classifies addresses: public ones pass, special-purpose ones do not', () => {
      for (const address of [
        '8.8.8.8',
        '1.1.1.1',
        '93.184.216.34',
        '2606:4700:4700::1111',
        '::ffff:8.8.8.8',
        '64:ff9b::808:808',
      ]) {
        expect(isPublicAddress(address), address).toBe(true);
      }
      for (const address of [
        '127.0.0.1',
        '10.1.2.3',
        '172.20.0.1',
        '192.168.0.1',
        '169.254.169.254',
        '100.100.100.200',
        '0.0.0.0',
        '255.255.255.255',
        '192.0.2.1',
        '198.18.0.1',
        '::1',
        '::',
        'fe80::1',
        'fd12:3456::1',
        'ff05::2',
        '::ffff:127.0.0.1',
        '::ffff:10.0.0.1',
        '64:ff9b::7f00:1',
        '2002:7f00:1::',
        '2001:db8::1',
        '2001::1',
        'fe80::1%eth0',
        'not-an-ip',
      ]) {
        expect(isPublicAddress(address), address).toBe(false);
      }
    });
  });

  describe('allow-listed destinations', () => {
    it('an allow-listed loopback address is reached, over http too', async () => {
      const res = await outboundFetch(`${server.origin}/ok`, loopback);
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe('hello');
      expect(res.headers.get('content-type')).toBe('text/plain');
    });

    it('a CIDR entry allows the addresses inside it', async () => {
      const res = await outboundFetch(`${server.origin}/ok`, { ...closed, allowHosts: ['127.0.0.0/8'] });
      expect(res.status).toBe(200);
    });

    it('an allow-listed name connects to the address checked, keeping the name in the Host header', async () => {
      const res = await outboundFetch(`http://idp.internal:${server.port}/echo`, {
        ...closed,
        allowHosts: ['IDP.internal.'],
      });
      const echoed = JSON.parse(res.body.toString()) as { headers: Record<string, string> };
      expect(echoed.headers.host).toBe(`idp.internal:${server.port}`);
    });

    it('allowing a name does not allow other names that resolve to the same address', async () => {
      await rejection(
        outboundFetch(`http://localhost.test:${server.port}/ok`, { ...closed, allowHosts: ['idp.internal'] }),
      );
    });

    it('a malformed allow-list entry is a configuration error', async () => {
      for (const entry of [
        '10.0.0.0/33',
        '::1/129',
        'exa mple.com',
        '10.0.0.0/',
        'http://x',
        '*.example.com',
      ]) {
        await rejection(
          outboundFetch('https://example.com/', { ...closed, allowHosts: [entry] }),
          'config_invalid',
        );
      }
    });

    it('limits that are not positive integers are a configuration error', async () => {
      for (const bad of [{ timeoutMs: 0 }, { maxBytes: -1 }, { maxRedirects: 1.5 }]) {
        await rejection(outboundFetch(`${server.origin}/ok`, { ...loopback, ...bad }), 'config_invalid');
      }
    });
  });

  describe('D2: every hop and every DNS answer is checked', () => {
    it('a redirect within the limit is followed', async () => {
      const res = await outboundFetch(`${server.origin}/to-ok`, loopback);
      expect(res.body.toString()).toBe('hello');
    });

    for (const [path, what] of [
      ['/to-private', 'a private address'],
      ['/to-metadata', 'the metadata address'],
      ['/to-metadata-name', 'a name resolving to the metadata address'],
      ['/to-decimal', 'a decimal IPv4 literal, even of an allow-listed address'],
      ['/to-file', 'a file: URL'],
      ['/to-scheme-relative-trick', 'a scheme-relative trick'],
      ['/to-backslash', 'a backslash path'],
    ] as const) {
      it(`a redirect from an allowed host to ${what} is refused at the hop`, async () => {
        await rejection(outboundFetch(`${server.origin}${path}`, loopback));
      });
    }

    it('redirects beyond the limit are refused', async () => {
      expect(await rejection(outboundFetch(`${server.origin}/loop`, loopback))).toContain(
        'redirected more than 3',
      );
      await rejection(outboundFetch(`${server.origin}/to-ok`, { ...loopback, maxRedirects: 0 }));
    });

    it('the DNS answer is taken afresh and checked on every request (rebinding)', async () => {
      const policy = { ...closed, allowHosts: ['127.0.0.1'] };
      dns['rebind.test'] = ['127.0.0.1'];
      await expect(outboundFetch(`http://rebind.test:${server.port}/ok`, policy)).resolves.toMatchObject({
        status: 200,
      });
      dns['rebind.test'] = ['10.0.0.1'];
      await rejection(outboundFetch(`http://rebind.test:${server.port}/ok`, policy));
      dns['rebind.test'] = ['127.0.0.1', '169.254.169.254'];
      await rejection(outboundFetch(`http://rebind.test:${server.port}/ok`, policy));
    });

    it('each hop resolves its own host again', async () => {
      lookups.length = 0;
      const res = await outboundFetch(`http://idp.internal:${server.port}/to-metadata-name`, {
        ...closed,
        allowHosts: ['idp.internal'],
      }).catch((e: unknown) => e);
      expect(res).toBeInstanceOf(StrongroomError);
      expect(lookups).toEqual(['idp.internal', 'metadata.evil.test']);
    });

    it('a name without addresses, or whose lookup fails, is refused', async () => {
      await rejection(outboundFetch('https://nothing.test/', closed));
      await rejection(outboundFetch('https://unknown.test/', closed), 'internal_error');
    });
  });

  describe('redirect semantics', () => {
    it('credentials are dropped when a redirect changes origin', async () => {
      const res = await outboundFetch(`${server.origin}/to-other-echo`, loopback, {
        headers: { authorization: 'Bearer secret', 'x-trace': '1' },
      });
      const echoed = JSON.parse(res.body.toString()) as { headers: Record<string, string> };
      expect(echoed.headers.authorization).toBeUndefined();
      expect(echoed.headers['x-trace']).toBe('1');
    });

    it('credentials are kept on a same-origin redirect', async () => {
      const res = await outboundFetch(`${server.origin}/to-same-echo`, loopback, {
        method: 'POST',
        headers: { authorization: 'Bearer secret' },
        body: 'a=1',
      });
      expect(JSON.parse(res.body.toString())).toMatchObject({
        method: 'POST',
        body: 'a=1',
        headers: { authorization: 'Bearer secret' },
      });
    });

    it('303 after a POST continues as a GET without a body', async () => {
      const res = await outboundFetch(`${server.origin}/see-other`, loopback, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'code=abc',
      });
      const echoed = JSON.parse(res.body.toString()) as {
        method: string;
        body: string;
        headers: Record<string, string>;
      };
      expect(echoed).toMatchObject({ method: 'GET', body: '' });
      expect(echoed.headers['content-type']).toBeUndefined();
    });
  });

  describe('resource bounds', () => {
    it('a response larger than the limit is refused, by its declared length or while streaming', async () => {
      expect(await rejection(outboundFetch(`${server.origin}/big`, loopback), 'internal_error')).toContain(
        'exceeds',
      );
      expect(
        await rejection(outboundFetch(`${server.origin}/big-chunked`, loopback), 'internal_error'),
      ).toContain('exceeds');
    });

    it('a server that never answers is abandoned when the time budget runs out', async () => {
      const message = await rejection(
        outboundFetch(`${server.origin}/hang`, { ...loopback, timeoutMs: 200 }),
        'internal_error',
      );
      expect(message).toContain('timed out');
    });
  });

  describe('fetchJsonObject', () => {
    it('returns a JSON object and refuses anything else', async () => {
      await expect(fetchJsonObject(`${server.origin}/json`, loopback)).resolves.toEqual({ issuer: 'x' });
      await rejection(fetchJsonObject(`${server.origin}/array`, loopback), 'internal_error');
      await rejection(fetchJsonObject(`${server.origin}/ok`, loopback), 'internal_error');
      await rejection(fetchJsonObject(`${server.origin}/missing`, loopback), 'internal_error');
    });
  });
});
